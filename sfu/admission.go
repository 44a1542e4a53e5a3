package sfu

import (
	"errors"
	"fmt"

	"github.com/pion/sdp/v3"
)

// Admission: who may join a room, how many joins the node sets up at once, and what a publish offer may ask for.

// Errors of the room's rules and the node's limits, each mapped to its own protocol error code.
var (
	ErrRoomFull   = errors.New("the room is full")
	ErrRoomLocked = errors.New("the room is locked")
	ErrLimit      = errors.New("limit exceeded")
	ErrBusy       = errors.New("the server is busy")
)

// takeJoinSlot reserves one of the node's concurrent join slots; the returned function frees it.
func (s *SFU) takeJoinSlot() (func(), error) {
	if s.joinSlots == nil {
		return func() {}, nil
	}
	select {
	case s.joinSlots <- struct{}{}:
		return func() { <-s.joinSlots }, nil
	default:
		err := fmt.Errorf("%w: %d joins are being set up; try again shortly", ErrBusy, cap(s.joinSlots))
		s.notify(Notice{Kind: NoticeLimit, Limit: LimitJoinBusy, Detail: err.Error()})
		return nil, err
	}
}

// admitLocked checks a room's rules for a newcomer; rm.mu is held.
func (rm *Room) admitLocked(p *Participant) error {
	if rm.locked && !p.info.Admin {
		return ErrRoomLocked
	}
	if max := rm.maxParticipants(); max > 0 && len(rm.participants) >= max {
		if rm.replacedByLocked(p) != nil {
			return nil // a rejoin replaces the old session (Room.join)
		}
		return fmt.Errorf("%w: %d participants is the limit", ErrRoomFull, max)
	}
	return nil
}

// maxParticipants is the room's size limit (0: none): its settings', else the node's.
func (rm *Room) maxParticipants() int {
	if n := rm.settings.MaxParticipants; n != nil {
		return *n
	}
	return rm.sfu.maxParticipants
}

// maxMediaSections bounds an offer's m-lines of any kind and direction: each costs a transceiver.
const maxMediaSections = 32

// checkOffer refuses an offer (a publish, WHIP or WHEP one) that asks for more than the participant may: data
// channels without the right (publishData), more media sections than maxMediaSections, or more tracks sent than
// may be published.
func checkOffer(parsed *sdp.SessionDescription, publishData bool) error {
	if n := len(parsed.MediaDescriptions); n > maxMediaSections {
		return fmt.Errorf("the offer has %d media sections; at most %d are taken: %w", n, maxMediaSections, ErrLimit)
	}
	sending := 0
	for _, m := range parsed.MediaDescriptions {
		switch m.MediaName.Media {
		case "application":
			if !publishData {
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
