package sfu

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The server's view of its rooms, for the server API (signaling/api.go): what is open on this node, and the
// administrator's kick and end carried out without an administrator in the room.

// RoomInfo describes an open room.
type RoomInfo struct {
	Name         string
	Participants int
	CreatedAt    time.Time
}

// Rooms describes the rooms open on this node, by name.
func (s *SFU) Rooms() []RoomInfo {
	rooms := s.openRooms()
	out := make([]RoomInfo, 0, len(rooms))
	for _, rm := range rooms {
		rm.mu.Lock()
		out = append(out, RoomInfo{Name: rm.name, Participants: len(rm.participants), CreatedAt: rm.created})
		rm.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Participants describes the participants of a room and their tracks, in the order they joined; ErrNotFound if
// this node does not host the room.
func (s *SFU) Participants(room string) ([]ParticipantInfo, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return nil, err
	}
	ps := rm.snapshot()
	out := make([]ParticipantInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Info())
	}
	slices.SortFunc(out, func(a, b ParticipantInfo) int {
		return cmp.Or(a.JoinedAt.Compare(b.JoinedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RemoveParticipant removes the participant with this identity from the room as an administrator's kick does:
// each of its sessions ends with "kicked" and the identity is banned from the room until its token expires. It describes
// what it did; ErrNotFound if the room or the participant is not here.
func (s *SFU) RemoveParticipant(room, identity string) (string, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return "", err
	}
	rm.mu.Lock()
	var targets []*Participant // every session of the identity: WebSocket, WHIP and WHEP ones coexist
	for _, q := range rm.participants {
		if q.info.Identity == identity {
			targets = append(targets, q)
		}
	}
	rm.mu.Unlock()
	if len(targets) == 0 {
		return "", fmt.Errorf("no participant %.40q in room %.40q: %w", identity, room, ErrNotFound)
	}
	done := make([]string, 0, len(targets))
	for _, q := range targets {
		done = append(done, rm.kick(q, nil))
	}
	return strings.Join(done, "; "), nil
}

// EndRoom ends the room for everyone as an administrator's end does: each session ends with "room_ended". It
// returns how many participants there were; ErrNotFound if this node does not host the room.
func (s *SFU) EndRoom(room string) (int, error) {
	rm, err := s.openRoom(room)
	if err != nil {
		return 0, err
	}
	return rm.end(nil), nil
}

// Hosts reports whether this node has the room open (someone is in it): the cluster gives back the lease of a
// room that is not.
func (s *SFU) Hosts(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[room] != nil
}

// openRoom finds an open room by name.
func (s *SFU) openRoom(name string) (*Room, error) {
	s.mu.Lock()
	rm := s.rooms[name]
	s.mu.Unlock()
	if rm == nil {
		return nil, fmt.Errorf("no room %.40q on this node: %w", name, ErrNotFound)
	}
	return rm, nil
}
