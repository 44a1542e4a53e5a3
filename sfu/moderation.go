package sfu

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Moderation: what a room administrator may do to the room and its participants, checked on the server.

// Admin actions.
const (
	ActionMute      = "mute"       // stop forwarding a participant's track (or all its audio), until unmute
	ActionUnmute    = "unmute"     // undo mute
	ActionKick      = "kick"       // end a participant's session and refuse its identity in the room until its token expires
	ActionLock      = "lock"       // refuse new participants (admins still get in)
	ActionUnlock    = "unlock"     // undo lock
	ActionEnd       = "end"        // end everyone's session and close the room
	ActionSetRole   = "set_role"   // allow or forbid a participant to publish; make it an administrator or not
	ActionLowerHand = "lower_hand" // put a participant's raised hand down
)

// AdminRequest is an action a room administrator asks for.
type AdminRequest struct {
	Action      string
	Participant string // the target's id (mute, unmute, kick, set_role)
	Track       string // mute/unmute one track; "" means all of the target's audio, tracks it publishes later included
	Publish     *bool  // set_role: may publish; nil: unchanged
	Admin       *bool  // set_role: is an administrator; nil: unchanged
}

// relayAdmin asks p, a relay, to carry an administrator's request to the node that hosts its target.
func (p *Participant) relayAdmin(req AdminRequest) {
	p.peer.SendEvent(Event{Kind: EventRelayAdmin, Action: req.Action, ParticipantID: req.Participant,
		Track: TrackInfo{ID: req.Track}, Publish: req.Publish != nil && *req.Publish})
}

// AdminAction carries out an administrator's request, checking the right on the server. It returns a
// description of what was done, for the audit log.
func (p *Participant) AdminAction(req AdminRequest) (string, error) {
	if !p.IsAdmin() {
		return "", fmt.Errorf("only a room administrator may %s: %w", req.Action, ErrForbidden)
	}
	rm := p.room
	switch req.Action {
	case ActionLock, ActionUnlock:
		rm.mu.Lock()
		rm.locked = req.Action == ActionLock
		rm.broadcastLocked(nil, Event{Kind: EventRoomState, Locked: rm.locked})
		rm.mu.Unlock()
		return "room " + req.Action + "ed", nil
	case ActionEnd:
		return fmt.Sprintf("room ended for %d participants", rm.end(p)), nil
	}
	target := rm.participant(req.Participant)
	if target == nil {
		if relay := rm.remoteRelay(req.Participant); relay != nil { // hosted on another node: its relay carries it
			relay.relayAdmin(req)
			return fmt.Sprintf("asked the node hosting %s to %s", req.Participant, req.Action), nil
		}
		return "", fmt.Errorf("no participant %.40q in the room: %w", req.Participant, ErrBadRequest)
	}
	switch req.Action {
	case ActionKick:
		return rm.kick(target, p), nil
	case ActionMute, ActionUnmute:
		return rm.adminMute(target, req.Track, req.Action == ActionMute, p.info.ID)
	case ActionSetRole:
		if req.Publish == nil && req.Admin == nil {
			return "", fmt.Errorf("set_role needs publish or admin: %w", ErrBadRequest)
		}
		var did []string
		if req.Publish != nil {
			did = append(did, rm.setRole(target, *req.Publish, p.info.ID))
		}
		if req.Admin != nil {
			did = append(did, rm.setAdmin(target, *req.Admin, p.info.ID))
		}
		return strings.Join(did, "; "), nil
	case ActionLowerHand:
		rm.setHand(target.info.ID, false)
		return "lowered the hand of " + target.info.Identity, nil
	}
	return "", fmt.Errorf("unknown admin action %.20q: %w", req.Action, ErrBadRequest)
}

// adminMute mutes or unmutes one of target's tracks (trackID) or all its audio (trackID ""), tells the room the
// tracks' mute state and tells target; by is the administrator's participant id ("": the server API). It
// describes what it did.
func (rm *Room) adminMute(target *Participant, trackID string, muted bool, by string) (string, error) {
	action := ActionUnmute
	if muted {
		action = ActionMute
	}
	changes, err := target.setAdminMute(trackID, muted)
	if err != nil {
		return "", err
	}
	for _, c := range changes {
		if c.shown {
			rm.broadcast(target, Event{Kind: EventTrackMuted, ParticipantID: c.track.shownID(), Track: c.track.Info()})
		}
		target.peer.SendEvent(Event{Kind: EventModerated, Action: action, Track: c.track.Info(), By: by})
	}
	if len(changes) == 0 { // all its audio, of which it publishes none yet: the mute holds for what it will
		target.peer.SendEvent(Event{Kind: EventModerated, Action: action, By: by})
	}
	return fmt.Sprintf("%sd %d tracks of %s", action, len(changes), target.info.Identity), nil
}

// setRole grants or takes away target's right to publish and tells it; by is the administrator's participant id
// ("": the server API).
func (rm *Room) setRole(target *Participant, publish bool, by string) string {
	rm.mu.Lock() // the room reads info under rm.mu (its events), the participant under its own mu
	target.setCanPublish(publish)
	rm.mu.Unlock()
	target.peer.SendEvent(Event{Kind: EventModerated, Action: ActionSetRole, Publish: publish, By: by})
	return fmt.Sprintf("%s may publish: %v", target.info.Identity, publish)
}

// kick ends target's session with "kicked" and bans its identity from the room until its token expires; by, the
// participant who asked (nil: the server API), closes itself. It describes what it did. No lock may be held (see
// ban).
func (rm *Room) kick(target, by *Participant) string {
	// Banned before the session ends, so that a rejoin after the bye is refused; the ban ends with the latest token
	// it was given (a refreshed one included), and none is given after this.
	until := rm.sfu.ban(rm.name, target.info.Identity, target.markKicked())
	target.peer.End("kicked")
	if target != by {
		target.Close()
	}
	return fmt.Sprintf("kicked %s, banned from the room until %s", target.info.Identity, until.UTC().Format(time.RFC3339))
}

// end ends every participant's session with "room_ended" and closes them but by (the participant who asked, which
// closes itself; nil: the server API). It returns how many there were.
func (rm *Room) end(by *Participant) int {
	rm.mu.Lock()
	rm.keepEmpty = 0 // a created room closes too
	rm.mu.Unlock()
	ps := rm.snapshot()
	for _, q := range ps {
		q.peer.End("room_ended")
	}
	for _, q := range ps {
		if q != by {
			q.Close()
		}
	}
	return len(ps)
}

// ban refuses identity's joins of room until validUntil (its token's end), or for defaultBan from now when its
// token has no end, on this node and through the shared store if there is one (see bans.go); it returns when
// the ban ends. No lock may be held: the store's call is network I/O.
func (s *SFU) ban(room, identity string, validUntil time.Time) time.Time {
	now := time.Now()
	if validUntil.IsZero() {
		validUntil = now.Add(defaultBan)
	}
	s.bans.add(room, identity, validUntil, now)
	if s.banStore != nil { // no lock is held: AdminAction takes none across this
		ctx, cancel := context.WithTimeout(context.Background(), banStoreTimeout)
		err := s.banStore.Ban(ctx, room, identity, validUntil)
		cancel()
		if err != nil {
			s.log.Warn("shared bans: the kick bans on this node only", zap.String("room", room), zap.String("identity", identity),
				zap.Time("until", validUntil), zap.Error(err))
		}
	}
	return validUntil
}

// moderation is what administrators decided about a participant's tracks. It is kept on the participant, not
// on its tracks, so that it holds for every track it publishes, those that start later included (newTrack).
// Under Participant.mu; whether the participant may publish at all is its info.CanPublish.
type moderation struct {
	audioMuted bool                 // all its audio is muted
	tracks     map[string]trackMute // by track id, while the track is published: a mute or unmute of it alone
}

// trackMute is an administrator's mute or unmute of one track, which outranks moderation.audioMuted.
type trackMute struct {
	kind  webrtc.RTPCodecType
	muted bool
}

// mutes reports whether administrators muted a track of this id and kind.
func (m *moderation) mutes(id string, kind webrtc.RTPCodecType) bool {
	if tm, ok := m.tracks[id]; ok {
		return tm.muted
	}
	return m.audioMuted && kind == webrtc.RTPCodecTypeAudio
}

// blockedLocked reports whether nothing of a track may be forwarded: its publisher lost the right to publish, or
// an administrator muted it. p.mu is held.
func (p *Participant) blockedLocked(id string, kind webrtc.RTPCodecType) bool {
	return !p.info.CanPublish || p.mod.mutes(id, kind)
}

// mutedLocked is the mute state the room is told of for a track: muted by its publisher or by an
// administrator. p.mu is held.
func (p *Participant) mutedLocked(id string, kind webrtc.RTPCodecType) bool {
	return p.pubState.muteState[id] || p.mod.mutes(id, kind)
}

// applyModerationLocked blocks or unblocks each of the participant's tracks as its moderation says. p.mu is
// held.
func (p *Participant) applyModerationLocked() {
	for id, t := range p.pubState.receiving {
		t.r.SetBlocked(p.blockedLocked(id, t.r.Kind()))
	}
}

// setCanPublish grants or takes away the right to publish. Without it, nothing the participant publishes is
// forwarded, tracks that start later included; with it back, what no administrator muted is forwarded again.
func (p *Participant) setCanPublish(can bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.info.CanPublish = can
	p.applyModerationLocked()
}

// muteChange is a track an administrator's mute or unmute applied to, and whether the mute state the room is
// told of changed.
type muteChange struct {
	track *Track
	shown bool
}

// setAdminMute mutes or unmutes one of the participant's tracks (by id) or, with trackID "", all its audio,
// including audio tracks it publishes later. It returns the tracks it applied to, in id order; a track id
// that the participant does not publish is ErrBadRequest.
func (p *Participant) setAdminMute(trackID string, muted bool) ([]muteChange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var hit []*Track
	for id, t := range p.pubState.receiving {
		if trackID == id || (trackID == "" && t.r.Kind() == webrtc.RTPCodecTypeAudio) {
			hit = append(hit, t)
		}
	}
	switch {
	case trackID != "" && len(hit) == 0:
		return nil, fmt.Errorf("participant %s has no such track: %w", p.info.ID, ErrBadRequest)
	case trackID != "":
		if p.mod.tracks == nil {
			p.mod.tracks = map[string]trackMute{}
		}
		p.mod.tracks[trackID] = trackMute{kind: hit[0].r.Kind(), muted: muted}
	default:
		p.mod.audioMuted = muted
		maps.DeleteFunc(p.mod.tracks, func(_ string, tm trackMute) bool { return tm.kind == webrtc.RTPCodecTypeAudio })
	}
	p.applyModerationLocked()
	slices.SortFunc(hit, func(a, b *Track) int { return cmp.Compare(a.r.ID(), b.r.ID()) })
	changes := make([]muteChange, len(hit))
	for i, t := range hit {
		changes[i] = muteChange{track: t, shown: t.r.SetMuted(p.mutedLocked(t.r.ID(), t.r.Kind()))}
	}
	return changes, nil
}
