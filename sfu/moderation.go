package sfu

import (
	"fmt"

	"github.com/pion/webrtc/v4"
)

// Moderation: what a room administrator may do to the room and its participants, checked on the server.

// Admin actions.
const (
	ActionMute    = "mute"     // stop forwarding a participant's track (or all its audio), until unmute
	ActionUnmute  = "unmute"   // undo mute
	ActionKick    = "kick"     // end a participant's session
	ActionLock    = "lock"     // refuse new participants (admins still get in)
	ActionUnlock  = "unlock"   // undo lock
	ActionEnd     = "end"      // end everyone's session and close the room
	ActionSetRole = "set_role" // allow or forbid a participant to publish
)

// AdminRequest is an action a room administrator asks for.
type AdminRequest struct {
	Action      string
	Participant string // the target's id (mute, unmute, kick, set_role)
	Track       string // mute/unmute one track; "" means all of the target's audio
	Publish     bool   // set_role: may publish
}

// AdminAction carries out an administrator's request, checking the right on the server. It returns a
// description of what was done, for the audit log.
func (p *Participant) AdminAction(req AdminRequest) (string, error) {
	if !p.info.Admin {
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
		ps := rm.snapshot()
		for _, q := range ps {
			q.peer.End("room_ended")
		}
		for _, q := range ps {
			if q != p {
				q.Close()
			}
		}
		return fmt.Sprintf("room ended for %d participants", len(ps)), nil
	}
	target := rm.participant(req.Participant)
	if target == nil {
		return "", fmt.Errorf("no participant %.40q in the room: %w", req.Participant, ErrBadRequest)
	}
	switch req.Action {
	case ActionKick:
		target.peer.End("kicked")
		if target != p {
			target.Close()
		}
		return "kicked " + target.info.Identity, nil
	case ActionMute, ActionUnmute:
		muted := req.Action == ActionMute
		n := 0
		for _, t := range target.Tracks() {
			if req.Track != "" && t.ID() != req.Track || req.Track == "" && t.Kind() != webrtc.RTPCodecTypeAudio {
				continue
			}
			n++
			t.r.SetBlocked(muted)
			if t.r.SetMuted(muted) {
				rm.broadcast(target, Event{Kind: EventTrackMuted, ParticipantID: target.info.ID, Track: t.Info()})
			}
			target.peer.SendEvent(Event{Kind: EventModerated, Action: req.Action, Track: t.Info(), By: p.info.ID})
		}
		if n == 0 {
			return "", fmt.Errorf("participant %s has no such track: %w", target.info.ID, ErrBadRequest)
		}
		return fmt.Sprintf("%sd %d tracks of %s", req.Action, n, target.info.Identity), nil
	case ActionSetRole:
		target.setCanPublish(req.Publish)
		tracks := target.Tracks()
		target.peer.SendEvent(Event{Kind: EventModerated, Action: req.Action, Publish: req.Publish, By: p.info.ID})
		if !req.Publish { // what it publishes stops
			for _, t := range tracks {
				t.r.SetBlocked(true)
			}
		}
		return fmt.Sprintf("%s may publish: %v", target.info.Identity, req.Publish), nil
	}
	return "", fmt.Errorf("unknown admin action %.20q: %w", req.Action, ErrBadRequest)
}
