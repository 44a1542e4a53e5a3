package sfu

import (
	"errors"
	"sync/atomic"
	"time"
)

// Observer is told what happens in the node's rooms (Config.Observer): the node's webhooks. Observe is called
// under the SFU's locks, so that each room's notices come in the order things happened there; it must return at
// once (queue what it is told, no I/O) and must not call the SFU.
type Observer interface {
	Observe(Notice)
}

// NoticeKind says what a Notice is about.
type NoticeKind uint8

const (
	// NoticeRoomStarted: a room opened on this node (its first participant is joining).
	NoticeRoomStarted NoticeKind = iota + 1
	// NoticeRoomFinished: a room closed, its last participant gone.
	NoticeRoomFinished
	// NoticeParticipantJoined: a participant joined (after the one it replaces left).
	NoticeParticipantJoined
	// NoticeParticipantLeft: a participant left, Reason says why; its tracks' NoticeTrackUnpublished come first.
	NoticeParticipantLeft
	// NoticeTrackPublished: a participant's track started.
	NoticeTrackPublished
	// NoticeTrackUnpublished: a track ended, or its publisher left.
	NoticeTrackUnpublished
	// NoticeLimit: a limit refused something; Limit says which, Detail the refusal.
	NoticeLimit
)

// Limits a NoticeLimit names.
const (
	LimitRoomFull      = "room_full"      // the room's max_participants
	LimitJoinBusy      = "join_busy"      // Config.MaxConcurrentJoins
	LimitWorkerStreams = "worker_streams" // a WorkerBudget's slots
)

// Notice is one thing that happened in a room, for an Observer.
type Notice struct {
	Kind NoticeKind
	// Room is the room; zero for a limit of the node that no room's join hit (LimitJoinBusy).
	Room RoomRef
	// Participant is who joined or left, whose track it is, or whom a room's limit refused; Session how it
	// connects.
	Participant ParticipantInfo
	Session     Session
	Track       TrackInfo
	// Reason is why a participant left: the reason its session was ended with ("kicked", "room_ended",
	// "replaced", "failed", "shutdown"), else the one the signaling layer gave Participant.Leave ("left",
	// "timeout", ...), else "disconnected".
	Reason string
	Limit  string
	Detail string
}

// RoomRef identifies a room: ID is new each time a room of that name opens on the node.
type RoomRef struct {
	Name      string
	ID        string
	CreatedAt time.Time
}

// String names the kind of session: "websocket", "whip" or "whep".
func (s Session) String() string {
	switch s {
	case SessionWHIP:
		return "whip"
	case SessionWHEP:
		return "whep"
	}
	return "websocket"
}

// Ref identifies the room.
func (rm *Room) Ref() RoomRef { return RoomRef{Name: rm.name, ID: rm.id, CreatedAt: rm.created} }

// notify tells the observer, if there is one.
func (s *SFU) notify(n Notice) {
	if s.observer != nil {
		s.observer.Observe(n)
	}
}

// notifyParticipant tells the observer of a participant's join; rm.mu is held.
func (rm *Room) notifyJoinedLocked(p *Participant) {
	if p.relay { // its tracks are the other node's participants', which that node reports
		return
	}
	rm.sfu.notify(Notice{Kind: NoticeParticipantJoined, Room: rm.Ref(), Participant: p.Info(), Session: p.session})
}

// notifyLeftLocked tells the observer that q left, after each of its tracks; rm.mu is held.
func (rm *Room) notifyLeftLocked(q *Participant) {
	if rm.sfu.observer == nil || q.relay {
		return
	}
	info := q.Info()
	for _, t := range info.Tracks {
		rm.notifyTrackLocked(NoticeTrackUnpublished, q, t)
	}
	info.Tracks = nil
	rm.sfu.notify(Notice{Kind: NoticeParticipantLeft, Room: rm.Ref(), Participant: info, Session: q.session, Reason: q.ended.why()})
}

// notifyTrackLocked tells the observer of one of p's tracks; rm.mu is held.
func (rm *Room) notifyTrackLocked(kind NoticeKind, p *Participant, t TrackInfo) {
	if rm.sfu.observer == nil || p.relay {
		return
	}
	info := p.Info()
	info.Tracks = nil
	rm.sfu.notify(Notice{Kind: kind, Room: rm.Ref(), Participant: info, Session: p.session, Track: t})
}

// noteRefusal tells the observer when a room's limit refused p's join.
func (s *SFU) noteRefusal(rm *Room, p *Participant, err error) {
	if errors.Is(err, ErrRoomFull) {
		s.notify(Notice{Kind: NoticeLimit, Room: rm.Ref(), Participant: p.info, Session: p.session, Limit: LimitRoomFull, Detail: err.Error()})
	}
}

// endingPeer is a participant's Peer that keeps the first reason the participant was ended with: why it left.
type endingPeer struct {
	Peer
	reason atomic.Pointer[string]
}

// wrap makes e the participant's Peer, in front of peer.
func (e *endingPeer) wrap(peer Peer) Peer {
	e.Peer = peer
	return e
}

// End implements Peer.
func (e *endingPeer) End(reason string) {
	e.set(reason)
	e.Peer.End(reason)
}

func (e *endingPeer) set(reason string) {
	if reason != "" {
		e.reason.CompareAndSwap(nil, &reason)
	}
}

// why is the first reason given, else "disconnected".
func (e *endingPeer) why() string {
	if r := e.reason.Load(); r != nil {
		return *r
	}
	return "disconnected"
}

// Leave takes the participant out of its room as Close does, telling the observer why it left (e.g. "left",
// "timeout") unless its session was ended with a reason before (kicked, replaced, ...).
func (p *Participant) Leave(reason string) {
	p.ended.set(reason)
	p.Close()
}

// TakeFor is Take for work in a room: a refusal is also told to the SFU's observer (LimitWorkerStreams).
func (b *WorkerBudget) TakeFor(rm *Room, what string) (release func(), err error) {
	release, err = b.Take(what)
	if err != nil && rm != nil {
		rm.sfu.notify(Notice{Kind: NoticeLimit, Room: rm.Ref(), Limit: LimitWorkerStreams, Detail: err.Error()})
	}
	return release, err
}
