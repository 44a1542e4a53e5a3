package sfu

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// Room is a set of participants who receive each other's tracks. It exists from its first join until its last
// participant leaves. Events to participants are queued while the room's lock is held, so each participant sees
// them in the order they happened.
type Room struct {
	name     string
	sfu      *SFU
	settings RoomSettings // from the node's configuration, fixed for the room's life
	caps     roomCaptions

	mu           sync.Mutex
	participants map[string]*Participant
	locked       bool               // only administrators may join
	speakers     []Speaker          // loudest first
	smoothed     map[string]float64 // smoothed loudness by participant id
}

func newRoom(name string, s *SFU) *Room {
	rm := &Room{name: name, sfu: s, participants: map[string]*Participant{}}
	rm.caps.origin = time.Now()
	if s.roomSettings != nil {
		rm.settings = s.roomSettings(name)
	}
	return rm
}

// published pairs a track with its publisher's id.
type published struct {
	r           *Receiver
	publisherID string
}

// join adds p, tells it who is there and tells the others it came. It returns the tracks p should receive and
// the participant with the same identity that p replaces, if any.
func (rm *Room) join(p *Participant) ([]published, *Participant, error) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if err := rm.canJoinLocked(p); err != nil {
		return nil, nil, err
	}
	var replaced *Participant
	others := make([]ParticipantInfo, 0, len(rm.participants))
	var tracks []published
	for _, q := range rm.participants {
		if q.info.Identity == p.info.Identity {
			replaced = q
			continue
		}
		q.mu.Lock()
		others = append(others, q.infoLocked())
		for _, r := range q.published {
			tracks = append(tracks, published{r, q.info.ID})
		}
		q.mu.Unlock()
	}
	if replaced != nil {
		rm.removeLocked(replaced)
	}
	rm.participants[p.info.ID] = p
	p.peer.SendEvent(Event{Kind: EventJoined, Room: rm.name, Participant: p.info, Participants: others})
	rm.broadcastLocked(p, Event{Kind: EventParticipantJoined, Participant: p.info})
	if !p.info.CanSubscribe {
		tracks = nil
	}
	if rm.locked {
		p.peer.SendEvent(Event{Kind: EventRoomState, Locked: true})
	}
	return tracks, replaced, nil
}

// removeLocked takes q out of the membership and tells the others; its tracks are ended by the caller.
func (rm *Room) removeLocked(q *Participant) {
	delete(rm.participants, q.info.ID)
	rm.broadcastLocked(q, Event{Kind: EventParticipantLeft, Participant: q.info})
}

// leave takes p out of the room and ends its tracks at every subscriber. The room closes when it empties.
func (rm *Room) leave(p *Participant) {
	rm.mu.Lock()
	if rm.participants[p.info.ID] == p {
		rm.removeLocked(p)
	}
	p.mu.Lock()
	tracks := p.published
	p.published = nil
	p.mu.Unlock()
	empty := len(rm.participants) == 0
	rm.mu.Unlock()

	for _, r := range tracks {
		rm.endTrack(r)
	}
	rm.syncCaptions() // p may have been the last to read them
	if empty {
		rm.sfu.removeRoom(rm)
	}
}

// publish adds r to p's tracks and subscribes everyone else who may subscribe. It reports false when p has left.
func (rm *Room) publish(p *Participant, r *Receiver) bool {
	rm.mu.Lock()
	if rm.participants[p.info.ID] != p || rm.trackIDTaken(p, r.id) {
		rm.mu.Unlock()
		return false
	}
	p.mu.Lock()
	p.published = append(p.published, r)
	p.mu.Unlock()
	rm.broadcastLocked(p, Event{Kind: EventTrackPublished, ParticipantID: p.info.ID, Track: r.Info()})
	subs := make([]*Participant, 0, len(rm.participants))
	for _, q := range rm.participants {
		if q != p && q.info.CanSubscribe {
			subs = append(subs, q)
		}
	}
	rm.mu.Unlock()
	rm.sfu.tracksPublished.Add(1)

	for _, q := range subs {
		q.subscribe(r, p.info.ID)
	}
	return true
}

// trackIDTaken reports whether another participant publishes a track with this id: subscribers name tracks by
// id (tile sizes), so ids must be unique in a room.
func (rm *Room) trackIDTaken(p *Participant, id string) bool {
	for _, q := range rm.participants {
		if q == p {
			continue
		}
		q.mu.Lock()
		for _, r := range q.published {
			if r.id == id {
				q.mu.Unlock()
				p.log.Warn("track refused: its id is taken in the room", zap.String("track", id))
				return true
			}
		}
		q.mu.Unlock()
	}
	return false
}

// unpublish ends one of p's tracks.
func (rm *Room) unpublish(p *Participant, r *Receiver) {
	rm.mu.Lock()
	p.mu.Lock()
	found := false
	for i, x := range p.published {
		if x == r {
			p.published = append(p.published[:i:i], p.published[i+1:]...)
			found = true
			break
		}
	}
	p.mu.Unlock()
	if found && rm.participants[p.info.ID] == p {
		rm.broadcastLocked(p, Event{Kind: EventTrackUnpublished, ParticipantID: p.info.ID, Track: r.Info()})
	}
	rm.mu.Unlock()
	rm.endTrack(r)
}

// endTrack removes r from every subscriber, once.
func (rm *Room) endTrack(r *Receiver) {
	downs, first := r.end()
	if !first {
		return
	}
	r.close()
	rm.sfu.retire(r)
	for _, d := range downs {
		d.owner.unsubscribe(r)
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

// snapshot returns the room's participants.
func (rm *Room) snapshot() []*Participant {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	ps := make([]*Participant, 0, len(rm.participants))
	for _, p := range rm.participants {
		ps = append(ps, p)
	}
	return ps
}
