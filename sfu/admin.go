package sfu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Errors of the room's rules and the node's limits, each mapped to its own protocol error code.
var (
	ErrRoomFull   = errors.New("the room is full")
	ErrRoomLocked = errors.New("the room is locked")
	ErrLimit      = errors.New("limit exceeded")
	ErrBusy       = errors.New("the server is busy")
)

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
		target.mu.Lock()
		tracks := append([]*Receiver(nil), target.published...)
		target.mu.Unlock()
		for _, r := range tracks {
			if req.Track != "" && r.id != req.Track || req.Track == "" && r.kind != webrtc.RTPCodecTypeAudio {
				continue
			}
			n++
			r.adminMuted.Store(muted)
			if r.muted.Swap(muted) != muted {
				rm.broadcast(target, Event{Kind: EventTrackMuted, ParticipantID: target.info.ID, Track: r.Info()})
			}
			target.peer.SendEvent(Event{Kind: EventModerated, Action: req.Action, Track: r.Info(), By: p.info.ID})
		}
		if n == 0 {
			return "", fmt.Errorf("participant %s has no such track: %w", target.info.ID, ErrBadRequest)
		}
		return fmt.Sprintf("%sd %d tracks of %s", req.Action, n, target.info.Identity), nil
	case ActionSetRole:
		target.mu.Lock()
		target.info.CanPublish = req.Publish
		tracks := target.published
		target.mu.Unlock()
		target.peer.SendEvent(Event{Kind: EventModerated, Action: req.Action, Publish: req.Publish, By: p.info.ID})
		if !req.Publish { // what it publishes stops
			for _, r := range tracks {
				r.adminMuted.Store(true)
			}
		}
		return fmt.Sprintf("%s may publish: %v", target.info.Identity, req.Publish), nil
	}
	return "", fmt.Errorf("unknown admin action %.20q: %w", req.Action, ErrBadRequest)
}

// participant finds a participant of the room by id.
func (rm *Room) participant(id string) *Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.participants[id]
}

// maxMediaSections bounds an offer's m-lines of any kind and direction: each costs a transceiver.
const maxMediaSections = 32

// checkOffer refuses a publish offer that asks for more than the participant may: data channels without the
// right, or more tracks than the limit.
func (p *Participant) checkOffer(offer string) error {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return fmt.Errorf("publish offer: %w: %w", ErrBadSDP, err)
	}
	if n := len(parsed.MediaDescriptions); n > maxMediaSections {
		return fmt.Errorf("the offer has %d media sections; at most %d are taken: %w", n, maxMediaSections, ErrLimit)
	}
	sending := 0
	for _, m := range parsed.MediaDescriptions {
		switch m.MediaName.Media {
		case "application":
			if !p.info.CanPublishData {
				return fmt.Errorf("token does not allow publishing data: %w", ErrForbidden)
			}
		case "audio", "video":
			// Count as Pion answers: the first direction attribute decides (sendrecv when there is none), and a
			// port of 0 does not make a line go away.
			dir := "sendrecv"
			for _, a := range m.Attributes {
				if a.Key == "sendrecv" || a.Key == "sendonly" || a.Key == "recvonly" || a.Key == "inactive" {
					dir = a.Key
					break
				}
			}
			if dir != "recvonly" && dir != "inactive" {
				sending++
			}
		}
	}
	if sending > maxPublishedTracks {
		return fmt.Errorf("the offer sends %d tracks; at most %d may be published: %w", sending, maxPublishedTracks, ErrLimit)
	}
	return nil
}

// limitLog notes a limit that was hit.
func (p *Participant) limitLog(what string, fields ...zap.Field) {
	p.log.Info("limit", append(fields, zap.String("limit", what))...)
}

// canJoin checks a room's rules for a newcomer; rm.mu is held.
func (rm *Room) canJoinLocked(p *Participant) error {
	if rm.locked && !p.info.Admin {
		return ErrRoomLocked
	}
	if max := rm.sfu.maxParticipants; max > 0 && len(rm.participants) >= max {
		for _, q := range rm.participants {
			if strings.EqualFold(q.info.Identity, p.info.Identity) {
				return nil // a rejoin replaces the old session
			}
		}
		return fmt.Errorf("%w: %d participants is the limit", ErrRoomFull, max)
	}
	return nil
}
