// Package denoise is the noise-suppression worker: it runs a chain of audio processors (media/denoise's
// RNNoise or speexdsp, by name from a media/audio.Registry) in the packet path of microphone tracks, so that
// subscribers get the denoised audio in place of the original. A room's settings turn it on for everyone
// ("denoise", and "processors" for the chain); each participant may turn it on or off for its own microphone
// with a denoise message, answered by audio_processing.
package denoise

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// Config configures the worker.
type Config struct {
	// Registry holds the processors this node can run, by name.
	Registry *audio.Registry
	// Chain is what turning denoise on runs, in order, unless the room or the participant names another.
	Chain []string
	// CanEncode says the node can encode Opus again after processing (libopus, a cgo build).
	CanEncode bool
	// Budget is the node's slots for worker streams: a chain running on a track holds one (nil: no limit).
	Budget *sfu.WorkerBudget
	Logger *zap.Logger
}

// Worker is the denoise worker of a node.
type Worker struct {
	cfg Config
	log *zap.Logger
}

// New makes the worker.
func New(cfg Config) *Worker {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Worker{cfg: cfg, log: log}
}

// Name implements sfu.Worker: participants' denoise messages come to it.
func (w *Worker) Name() string { return protocol.TypeDenoise }

// roomSettings are the worker's keys of a room's settings.
type roomSettings struct {
	// Denoise turns on the chain for every microphone track of the room; a participant may turn it off for its
	// own.
	Denoise bool `json:"denoise"`
	// Processors replaces the node's chain in this room.
	Processors []string `json:"processors,omitempty"`
}

// CheckSettings refuses room settings that cannot run here: denoise in an encrypted room, processors this node
// lacks.
func (w *Worker) CheckSettings(s sfu.RoomSettings) error {
	var rs roomSettings
	if err := s.Decode(&rs); err != nil {
		return err
	}
	if s.E2EE && rs.Denoise {
		return errors.New("the room is end-to-end encrypted, so its audio cannot be denoised")
	}
	if len(rs.Processors) > 0 {
		if err := w.cfg.Registry.Check(rs.Processors); err != nil {
			return err
		}
	}
	return nil
}

// OpenRoom implements sfu.Worker.
func (w *Worker) OpenRoom(rm *sfu.Room) sfu.RoomWorker {
	rw := &roomWorker{w: w, room: rm, choices: map[string]choice{}, running: map[*sfu.Track][]string{},
		slots: map[*sfu.Track]func(){}}
	if err := rm.Settings().Decode(&rw.settings); err != nil {
		w.log.Warn("room settings", zap.String("room", rm.Name()), zap.Error(err))
	}
	return rw
}

// roomWorker is the worker in one room.
type roomWorker struct {
	w        *Worker
	room     *sfu.Room
	settings roomSettings

	mu      sync.Mutex
	choices map[string]choice       // a participant's own choice, by participant id
	running map[*sfu.Track][]string // the chain running on each track
	slots   map[*sfu.Track]func()   // the budget slot each track with a chain (or one being set) holds: its release
}

// choice is what a participant asked for.
type choice struct {
	on     bool
	engine string // one processor by name instead of the chain; "": the chain
}

// wants says whether a participant's microphone is denoised, and with what chain; rw.mu is held.
func (rw *roomWorker) wants(participantID string) (bool, []string) {
	c, chose := rw.choices[participantID]
	on := rw.settings.Denoise && !rw.room.E2EE()
	if chose {
		on = c.on
	}
	switch {
	case chose && c.engine != "":
		return on, []string{c.engine}
	case len(rw.settings.Processors) > 0:
		return on, rw.settings.Processors
	}
	return on, rw.w.cfg.Chain
}

// TrackPublished implements sfu.RoomWorker: a microphone of someone who wants denoise is denoised from its
// start. A failure is told to the publisher; the track is forwarded as sent.
func (rw *roomWorker) TrackPublished(t *sfu.Track) {
	if !t.IsMicrophone() {
		return
	}
	rw.mu.Lock()
	on, _ := rw.wants(t.Publisher().ID())
	rw.mu.Unlock()
	if on {
		_ = rw.apply(t)
	}
}

// TrackUnpublished implements sfu.RoomWorker: the track's chain ended with it, and gives back its slot.
func (rw *roomWorker) TrackUnpublished(t *sfu.Track) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	delete(rw.running, t)
	rw.releaseLocked(t)
}

// releaseLocked gives back the track's budget slot, if it holds one; rw.mu is held.
func (rw *roomWorker) releaseLocked(t *sfu.Track) {
	if release := rw.slots[t]; release != nil {
		release()
		delete(rw.slots, t)
	}
}

// ParticipantJoined implements sfu.RoomWorker: a participant's denoise starts with its own request.
func (rw *roomWorker) ParticipantJoined(*sfu.Participant) {}

// ParticipantLeft implements sfu.RoomWorker.
func (rw *roomWorker) ParticipantLeft(p *sfu.Participant) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	delete(rw.choices, p.ID())
}

// Close implements sfu.RoomWorker: the pipelines end with their tracks; any slot still held is given back.
func (rw *roomWorker) Close() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for t := range rw.slots {
		rw.releaseLocked(t)
	}
}

// Control implements sfu.RoomWorker: a denoise message turns noise suppression on or off for the participant's
// microphone tracks, now and for those it publishes later. Its engine picks one processor by name instead of the
// room's chain.
func (rw *roomWorker) Control(p *sfu.Participant, req any) error {
	r, ok := req.(protocol.Request)
	if !ok || r.Enabled == nil {
		return fmt.Errorf("denoise needs enabled: %w", sfu.ErrBadRequest)
	}
	on, engine := *r.Enabled, r.Engine
	reg := rw.w.cfg.Registry
	if on {
		switch {
		case rw.room.E2EE():
			return sfu.ErrE2EE
		case engine != "" && !slices.Contains(reg.Names(), engine):
			return fmt.Errorf("unknown denoiser %.32q (known: %v): %w", engine, reg.Names(), sfu.ErrBadRequest)
		}
		chain := []string{engine}
		if engine == "" {
			rw.mu.Lock()
			rw.choices[p.ID()] = choice{on: rw.choices[p.ID()].on}
			_, chain = rw.wants(p.ID())
			rw.mu.Unlock()
		}
		if err := reg.Check(chain); err != nil { // say now, not at the next publish
			return sfu.Unavailable(err)
		}
		if !rw.w.cfg.CanEncode {
			return fmt.Errorf("denoise needs the Opus encoder (libopus), and this server was built without cgo: %w", sfu.ErrUnavailable)
		}
	}
	rw.mu.Lock()
	rw.choices[p.ID()] = choice{on: on, engine: engine}
	rw.mu.Unlock()
	var errs []error
	for _, t := range p.Tracks() {
		if t.IsMicrophone() {
			errs = append(errs, rw.apply(t))
		}
	}
	return errors.Join(errs...)
}

// apply sets a microphone track's processors from its publisher's and the room's choices, and tells the
// publisher what runs.
func (rw *roomWorker) apply(t *sfu.Track) error {
	rw.mu.Lock()
	on, chain := rw.wants(t.Publisher().ID())
	rw.mu.Unlock()
	var names []string
	if on {
		names = chain
	}
	err := rw.setChain(t, names)
	rw.mu.Lock()
	running := slices.Clone(rw.running[t])
	rw.mu.Unlock()
	if running == nil {
		running = []string{}
	}
	msg := protocol.AudioProcessing{Type: protocol.TypeAudioProcessing, TrackID: t.ID(), Processors: running}
	if err != nil {
		msg.Error = err.Error()
		rw.w.log.Info("audio processing refused", zap.String("room", rw.room.Name()), zap.String("track", t.ID()),
			zap.Strings("processors", names), zap.Error(err))
	} else if len(names) > 0 {
		rw.room.WorkerStarted(t.Publisher().ID(), t.ID(), "denoise:"+strings.Join(names, ","))
	}
	rw.room.Send(t.Publisher().ID(), msg)
	return err
}

// setChain runs the named processors in the track's path; none takes processing out.
func (rw *roomWorker) setChain(t *sfu.Track, names []string) error {
	rw.mu.Lock()
	_, wasRunning := rw.running[t]
	rw.mu.Unlock()
	if len(names) == 0 && !wasRunning {
		return nil // nothing runs: no pipeline to start
	}
	took, err := rw.takeSlot(t, len(names) > 0)
	if err != nil {
		return err
	}
	if err := rw.runChain(t, names); err != nil {
		if took { // the chain did not start: its slot goes back
			rw.mu.Lock()
			rw.releaseLocked(t)
			rw.mu.Unlock()
		}
		return err
	}
	rw.mu.Lock()
	if len(names) == 0 {
		delete(rw.running, t)
		rw.releaseLocked(t)
	} else {
		rw.running[t] = slices.Clone(names)
	}
	rw.mu.Unlock()
	return nil
}

// takeSlot takes a budget slot for a chain on the track, unless it holds one or none is wanted; it says whether
// it took one. A spent budget is ErrUnavailable, naming the limit.
func (rw *roomWorker) takeSlot(t *sfu.Track, want bool) (bool, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if !want || rw.slots[t] != nil {
		return false, nil
	}
	release, err := rw.w.cfg.Budget.TakeFor(rw.room, "denoise")
	if err != nil {
		return false, err
	}
	rw.slots[t] = release
	return true, nil
}

// runChain puts the named processors in the track's path; none takes processing out.
func (rw *roomWorker) runChain(t *sfu.Track, names []string) error {
	pipe, err := t.Audio()
	if err != nil {
		return err
	}
	var chain []audio.Processor
	if len(names) > 0 {
		if chain, err = rw.w.cfg.Registry.Chain(names); err != nil {
			return sfu.Unavailable(err)
		}
	}
	if err := pipe.SetChain(chain); err != nil {
		return sfu.Unavailable(err)
	}
	return nil
}
