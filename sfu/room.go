package sfu

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/alloc"
)

// Room is a set of participants who receive each other's tracks. It exists from its first join until its last
// participant leaves; one created through the server API (CreateRoom) exists from its creation and stays open
// while empty for its empty timeout. Events to participants are queued while the room's lock is held, so each participant sees
// them in the order they happened.
type Room struct {
	name     string
	id       string // new each time a room of this name opens here (RoomRef)
	sfu      *SFU
	settings RoomSettings // from the node's configuration (or CreateRoom's), fixed for the room's life
	// encryption: undecided, plain or E2EE (e2ee.go); set from the settings, else by the first participant that is
	// not a relay; written under mu, read anywhere.
	encryption atomic.Int32
	workers    []namedWorker // fixed when the room opens
	created    time.Time

	mu            sync.Mutex
	regions       []string // the residency policy: CreateRoom's, else its first participant's (JoinRequest.Regions); nil: none
	participants  map[string]*Participant
	remotes       map[string]*remoteParticipant // by id: other nodes' participants whose tracks relays publish here
	locked        bool                          // only administrators may join
	speakers      []Speaker                     // loudest first
	smoothed      map[string]float64            // smoothed loudness by participant id
	speakerLevels levelReader                   // the speaker list's readings of the microphones
	micLevels     levelReader                   // the audio selection's readings (selection.go)
	audioSel      alloc.AudioSelector
	metadata      string // set by the server API (SetRoomMetadata)
	// keepEmpty is how long the room stays open while empty: a room created through the API (CreateRoom) waits
	// for its participants; 0: it closes when its last participant leaves. emptySince is when it last became
	// empty (its creation, for a created room).
	keepEmpty    time.Duration
	emptySince   time.Time
	publications uint64   // tracks published so far: each track's order
	hands        []string // ids of the participants whose hand is up, first raised first (chat.go)
}

// newRoom opens a room with the node's settings for it, and its workers; s.mu is held.
func newRoom(name string, s *SFU) *Room {
	return newRoomWith(name, s, s.settingsFor(name))
}

// newRoomWith opens a room with these settings, and its workers; s.mu is held.
func newRoomWith(name string, s *SFU, settings RoomSettings) *Room {
	rm := &Room{name: name, id: newID("RM_"), sfu: s, participants: map[string]*Participant{}, remotes: map[string]*remoteParticipant{}, created: time.Now(), settings: settings}
	if settings.E2EE {
		rm.encryption.Store(encryptionE2EE)
	}
	rm.emptySince = rm.created
	rm.openWorkers()
	s.notify(Notice{Kind: NoticeRoomStarted, Room: rm.Ref()})
	return rm
}

// join adds p, tells it who is there and tells the others it came. It returns the tracks p should receive and
// the participant that p replaces, if any (replacedByLocked).
func (rm *Room) join(p *Participant) ([]*Track, *Participant, error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.regions == nil {
		rm.regions = p.regions
	}
	if p.lockedInCluster && !rm.locked {
		rm.locked = true
		rm.broadcastLocked(nil, Event{Kind: EventRoomState, Locked: true})
	}
	encryption, err := rm.encryptionFor(p)
	if err != nil {
		return nil, nil, err
	}
	if err := rm.admitLocked(p); err != nil {
		return nil, nil, err
	}
	rm.encryption.Store(encryption) // p is in: the room's kind is decided, if it was not
	replaced := rm.replacedByLocked(p)
	others := make([]ParticipantInfo, 0, len(rm.participants))
	var tracks []*Track
	for _, q := range rm.participants {
		if q == replaced {
			continue
		}
		if !q.relay {
			others = append(others, q.Info())
		}
		tracks = append(tracks, q.Tracks()...)
	}
	for _, rp := range rm.remotes {
		if rp.relay != replaced {
			others = append(others, rp.infoLocked())
		}
	}
	if replaced != nil {
		replaced.ended.set("replaced")
		rm.removeLocked(replaced)
	}
	rm.participants[p.info.ID] = p
	p.peer.SendEvent(Event{Kind: EventJoined, Room: rm.name, Participant: p.info, Participants: others, Metadata: rm.metadata,
		Hands: slices.Clone(rm.hands)})
	if !p.relay {
		rm.broadcastLocked(p, Event{Kind: EventParticipantJoined, Participant: p.info})
	}
	rm.notifyJoinedLocked(p)
	if !p.info.CanSubscribe {
		tracks = nil
	}
	if rm.locked {
		p.peer.SendEvent(Event{Kind: EventRoomState, Locked: true})
	}
	return tracks, replaced, nil
}

// replacedByLocked finds the participant that p replaces, or nil: one with the same identity and the same kind of
// session, a client reconnecting. A WebSocket session replaces a WebSocket session and a WHIP publisher a WHIP
// publisher (an encoder that restarts without its DELETE); sessions of different kinds coexist (a host publishes
// with WHIP and watches with WHEP, one token for both), and WHEP sessions never replace one another (many players
// may share one watch token). Identities are case-sensitive ids, compared exactly: admission's rejoin exemption
// and the replacement of the old session must agree. rm.mu is held.
func (rm *Room) replacedByLocked(p *Participant) *Participant {
	if p.session == SessionWHEP {
		return nil
	}
	for _, q := range rm.participants {
		if q.info.Identity == p.info.Identity && q.session == p.session {
			return q
		}
	}
	return nil
}

// removeLocked takes q out of the membership and tells the others; its tracks are ended by the caller. A relay's
// leaving is that of the other nodes' participants it showed here.
func (rm *Room) removeLocked(q *Participant) {
	delete(rm.participants, q.info.ID)
	if i := slices.Index(rm.hands, q.info.ID); i >= 0 {
		rm.hands = slices.Delete(rm.hands, i, i+1)
		rm.broadcastLocked(q, Event{Kind: EventHands, Hands: slices.Clone(rm.hands)})
	}
	if !q.relay {
		rm.broadcastLocked(q, Event{Kind: EventParticipantLeft, Participant: q.rights()})
	}
	for id, rp := range rm.remotes {
		if rp.relay == q {
			delete(rm.remotes, id)
			rm.broadcastLocked(q, Event{Kind: EventParticipantLeft, Participant: rp.info})
		}
	}
	rm.notifyLeftLocked(q)
}

// remoteParticipant is a participant of another node of the cluster, shown here while a relay publishes at least
// one of its tracks (Track.origin). It has no session here: it never replaces, nor is replaced by, a participant
// of this node with the same identity.
type remoteParticipant struct {
	info   ParticipantInfo // without its tracks
	relay  *Participant    // the relay that publishes its tracks
	tracks []*Track
}

// infoLocked describes the remote participant and its tracks; rm.mu is held.
func (rp *remoteParticipant) infoLocked() ParticipantInfo {
	info := rp.info
	info.Remote = true
	info.Tracks = make([]TrackInfo, 0, len(rp.tracks))
	for _, t := range rp.tracks {
		info.Tracks = append(info.Tracks, t.Info())
	}
	return info
}

// showRemoteLocked adds t, a relay's track of another node's participant, to that participant, which joins the
// room's view with its first track. It reports false when the id is a participant's of this node, or another
// relay's: such a track is not published. rm.mu is held.
func (rm *Room) showRemoteLocked(t *Track) bool {
	o := t.origin
	if rm.participants[o.ID] != nil {
		t.publisher.log.Warn("relayed track refused: its publisher's id is a participant's here", zap.String("track", t.r.ID()))
		return false
	}
	rp := rm.remotes[o.ID]
	if rp == nil {
		rp = &remoteParticipant{relay: t.publisher, info: ParticipantInfo{ID: o.ID, Identity: o.Identity, Name: o.Name, E2EE: o.E2EE,
			CanPublish: true, JoinedAt: time.Now()}}
		rm.remotes[o.ID] = rp
		rm.broadcastLocked(t.publisher, Event{Kind: EventParticipantJoined, Participant: rp.info})
	}
	if rp.relay != t.publisher {
		t.publisher.log.Warn("relayed track refused: another relay shows its publisher", zap.String("track", t.r.ID()))
		return false
	}
	rp.tracks = append(rp.tracks, t)
	return true
}

// hideRemoteLocked takes t, a relay's track that ended, from its participant, which leaves the room's view with
// its last track. rm.mu is held.
func (rm *Room) hideRemoteLocked(t *Track) {
	rp := rm.remotes[t.origin.ID]
	if rp == nil {
		return
	}
	i := slices.Index(rp.tracks, t)
	if i < 0 {
		return
	}
	rp.tracks = slices.Delete(rp.tracks, i, i+1)
	if len(rp.tracks) == 0 {
		delete(rm.remotes, t.origin.ID)
		rm.broadcastLocked(t.publisher, Event{Kind: EventParticipantLeft, Participant: rp.info})
	}
}

// leave takes p out of the room and ends its tracks at every subscriber. The room closes when it empties.
func (rm *Room) leave(p *Participant) {
	rm.mu.Lock()
	if rm.participants[p.info.ID] == p {
		rm.removeLocked(p)
	}
	tracks := p.takeTracks()
	empty := len(rm.participants) == 0
	if empty {
		rm.emptySince = time.Now()
	}
	rm.mu.Unlock()

	for _, t := range tracks {
		rm.endTrack(t)
	}
	for _, w := range rm.workers {
		w.ParticipantLeft(p)
	}
	if empty {
		rm.sfu.removeRoom(rm)
	}
}

// publish adds t to its publisher's tracks, subscribes everyone else who may subscribe and tells the workers. It
// reports false when the publisher has left.
func (rm *Room) publish(t *Track) bool {
	p := t.publisher
	rm.mu.Lock()
	if rm.participants[p.info.ID] != p || rm.trackIDTaken(p, t.r.ID()) || t.origin != nil && !rm.showRemoteLocked(t) {
		rm.mu.Unlock()
		return false
	}
	rm.publications++
	t.order = rm.publications
	p.addTrack(t)
	rm.broadcastLocked(p, Event{Kind: EventTrackPublished, ParticipantID: t.shownID(), Track: t.Info()})
	rm.notifyTrackLocked(NoticeTrackPublished, p, t.Info())
	subs := make([]*Participant, 0, len(rm.participants))
	for _, q := range rm.participants {
		if q != p && q.info.CanSubscribe {
			subs = append(subs, q)
		}
	}
	rm.mu.Unlock()
	rm.sfu.tracksPublished.Add(1)

	for _, q := range subs {
		q.subscribe(t)
	}
	for _, w := range rm.workers {
		w.TrackPublished(t)
	}
	return true
}

// tracks returns the tracks the room's participants but except publish.
func (rm *Room) tracks(except *Participant) []*Track {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var out []*Track
	for _, q := range rm.participants {
		if q != except {
			out = append(out, q.Tracks()...)
		}
	}
	return out
}

// trackIDTaken reports whether another participant publishes a track with this id: subscribers name tracks by
// id (tile sizes), so ids must be unique in a room. A WebSocket client's id in the form of another participant's
// WHIP ids ("<participant id>-...", Participant.publishedID) is refused too, so a WHIP track, answered with 201
// before it starts, is never the one refused. rm.mu is held.
func (rm *Room) trackIDTaken(p *Participant, id string) bool {
	for _, q := range rm.participants {
		if q == p {
			continue
		}
		if q.track(id) != nil || p.session != SessionWHIP && strings.HasPrefix(id, q.info.ID+"-") {
			p.log.Warn("track refused: its id is taken in the room", zap.String("track", id))
			return true
		}
	}
	return false
}

// unpublish ends one of p's tracks.
func (rm *Room) unpublish(t *Track) {
	p := t.publisher
	rm.mu.Lock()
	if p.removeTrack(t) && rm.participants[p.info.ID] == p {
		rm.broadcastLocked(p, Event{Kind: EventTrackUnpublished, ParticipantID: t.shownID(), Track: t.Info()})
		rm.notifyTrackLocked(NoticeTrackUnpublished, p, t.Info())
		if t.origin != nil {
			rm.hideRemoteLocked(t)
		}
	}
	rm.mu.Unlock()
	rm.endTrack(t)
}

// endTrack removes t from every subscriber and tells the workers, once.
func (rm *Room) endTrack(t *Track) {
	downs, first := t.r.End()
	if !first {
		return
	}
	for _, w := range rm.workers {
		w.TrackUnpublished(t)
	}
	t.close()
	rm.sfu.retire(t.r)
	if len(downs) == 0 {
		return
	}
	for _, q := range rm.snapshot() { // a subscriber that has left removed its copies itself
		q.unsubscribe(t)
	}
}

// broadcast sends ev to everyone in the room but from.
func (rm *Room) broadcast(from *Participant, ev Event) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.broadcastLocked(from, ev)
}

func (rm *Room) broadcastLocked(from *Participant, ev Event) {
	for _, q := range rm.participants {
		if q != from {
			q.peer.SendEvent(ev)
		}
	}
}

// members are the room's participants as its participants see them: those here but the relays, and the other
// nodes' participants the relays show (Remote).
func (rm *Room) members() []ParticipantInfo {
	ps := rm.snapshot()
	out := make([]ParticipantInfo, 0, len(ps))
	for _, p := range ps {
		if !p.relay {
			out = append(out, p.Info())
		}
	}
	rm.mu.Lock()
	for _, rp := range rm.remotes {
		out = append(out, rp.infoLocked())
	}
	rm.mu.Unlock()
	return out
}

// snapshot returns the room's participants.
func (rm *Room) snapshot() []*Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return slices.Collect(maps.Values(rm.participants))
}

// remoteRelays are the relays that show the other nodes' participants of identity here, by participant id.
func (rm *Room) remoteRelays(identity string) map[string]*Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	out := map[string]*Participant{}
	for id, rp := range rm.remotes {
		if rp.info.Identity == identity {
			out[id] = rp.relay
		}
	}
	return out
}

// remoteRelay is the relay that shows the other node's participant id here, or nil.
func (rm *Room) remoteRelay(id string) *Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rp := rm.remotes[id]; rp != nil {
		return rp.relay
	}
	return nil
}

// participant finds a participant of the room by id.
func (rm *Room) participant(id string) *Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.participants[id]
}
