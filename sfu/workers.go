package sfu

import (
	"encoding/json"
	"fmt"
)

// Worker is something attached to the rooms of a node from outside them: noise suppression, live captions, a
// recorder. The room layer tells it what happens in each room; the worker acts through what it is handed: a
// Track's audio pipeline (Track.Audio: processors in the packet path, taps off it), and Room.Send to send a
// participant a message.
type Worker interface {
	// Name is what a participant's control requests and the audit log call it ("denoise", "captions").
	Name() string
	// OpenRoom is called, under the node's lock, when a room opens: it must not block. nil: the worker does
	// nothing in that room.
	OpenRoom(rm *Room) RoomWorker
}

// RoomWorker is a Worker in one room. Its methods are called with no lock of the SFU held, one at a time per
// track for a track's events; they may call the Room's, Participant's and Track's exported methods.
type RoomWorker interface {
	// TrackPublished says a participant's track started: its first packet arrived.
	TrackPublished(t *Track)
	// TrackUnpublished says a track ended.
	TrackUnpublished(t *Track)
	// ParticipantJoined says a participant joined the room (after it was told who is there), so that the worker
	// can tell it its own state (e.g. who is being transcribed).
	ParticipantJoined(p *Participant)
	// ParticipantLeft says a participant left the room (its tracks were unpublished before).
	ParticipantLeft(p *Participant)
	// Control carries out a participant's request to the worker: a decoded signaling message, whose type the
	// worker knows. The error goes back to the participant.
	Control(p *Participant, req any) error
	// Close ends the worker's work in the room, which has closed, and waits for it.
	Close()
}

// RoomSettings are a room's settings from the node's configuration, as a JSON object: those the room layer
// enforces itself (e2ee, max_participants, max_audio_streams), and each worker's own keys, which the worker reads
// with Decode.
type RoomSettings struct {
	// E2EE says the room's media is end-to-end encrypted: the server cannot decode it, so workers refuse to
	// process it (ErrE2EE).
	E2EE bool
	// MaxParticipants is the room's size limit instead of the node's (0: no limit); nil: the node's.
	MaxParticipants *int
	// MaxAudioStreams is how many microphones the room forwards at once, the loudest (0: every one); nil: the
	// node's.
	MaxAudioStreams *int
	raw             json.RawMessage
}

// UnmarshalJSON keeps the object for the workers and reads the room layer's keys.
func (s *RoomSettings) UnmarshalJSON(b []byte) error {
	var known struct {
		E2EE            bool `json:"e2ee"`
		MaxParticipants *int `json:"max_participants"`
		MaxAudioStreams *int `json:"max_audio_streams"`
	}
	if err := json.Unmarshal(b, &known); err != nil {
		return fmt.Errorf("room settings: %w", err)
	}
	if n := known.MaxParticipants; n != nil && *n < 0 {
		return fmt.Errorf("room settings: max_participants %d: want 0 (no limit) or more", *n)
	}
	if n := known.MaxAudioStreams; n != nil && *n < 0 {
		return fmt.Errorf("room settings: max_audio_streams %d: want 0 (every one) or more", *n)
	}
	s.E2EE, s.MaxParticipants, s.MaxAudioStreams = known.E2EE, known.MaxParticipants, known.MaxAudioStreams
	s.raw = append(json.RawMessage(nil), b...)
	return nil
}

// JSON is the settings as a JSON object ("{}" for none).
func (s RoomSettings) JSON() json.RawMessage {
	if len(s.raw) == 0 {
		return json.RawMessage("{}")
	}
	return s.raw
}

// Decode reads the settings into v, a worker's struct of the keys it knows; no settings leave v as it is.
func (s RoomSettings) Decode(v any) error {
	if len(s.raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(s.raw, v); err != nil {
		return fmt.Errorf("room settings: %w", err)
	}
	return nil
}

// openWorkers starts each worker in a new room; s.mu is held.
func (rm *Room) openWorkers() {
	for _, w := range rm.sfu.workers {
		if rw := w.OpenRoom(rm); rw != nil {
			rm.workers = append(rm.workers, namedWorker{w.Name(), rw})
		}
	}
}

type namedWorker struct {
	name string
	RoomWorker
}

// worker is the room's worker of that name, or nil.
func (rm *Room) worker(name string) RoomWorker {
	for _, w := range rm.workers {
		if w.name == name {
			return w.RoomWorker
		}
	}
	return nil
}

// closeWorkers ends the workers of a room that has closed.
func (rm *Room) closeWorkers() {
	for _, w := range rm.workers {
		w.Close()
	}
}

// Control passes a participant's request to the room's worker of that name (a signaling message type such as
// "denoise" or "captions"). A node without that worker refuses with ErrUnavailable.
func (p *Participant) Control(worker string, req any) error {
	w := p.room.worker(worker)
	if w == nil {
		return fmt.Errorf("this node runs no %.20s worker: %w", worker, ErrUnavailable)
	}
	return w.Control(p, req)
}

// Name is the room's name.
func (rm *Room) Name() string { return rm.name }

// Settings are the room's settings, fixed for its life.
func (rm *Room) Settings() RoomSettings { return rm.settings }

// Regions is the room's residency policy: the regions whose nodes (and engines) may have any of its media; nil: no
// policy (a single node).
func (rm *Room) Regions() []string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.regions
}

// Send sends a worker's message to one participant of the room, if it is still there.
func (rm *Room) Send(participantID string, msg any) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if p := rm.participants[participantID]; p != nil {
		p.peer.SendEvent(Event{Kind: EventWorker, Message: msg})
	}
}

// Participants returns the room's participants now.
func (rm *Room) Participants() []*Participant { return rm.snapshot() }

// WorkerStarted records that a worker started on a track (for the audit log).
func (rm *Room) WorkerStarted(participantID, trackID, worker string) {
	if rm.sfu.onWorkerStart != nil {
		rm.sfu.onWorkerStart(rm.name, participantID, trackID, worker)
	}
}

// CanSubscribe says whether the participant's token lets it receive the room's media, and what workers derive
// from it (captions).
func (p *Participant) CanSubscribe() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info.CanSubscribe
}

// IsAdmin says whether the participant is an administrator of its room.
func (p *Participant) IsAdmin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info.Admin
}
