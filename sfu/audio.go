package sfu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/media/audio"
)

// AudioConfig attaches the media pipeline (media/audio) to published Opus tracks: decode, processors such as a
// denoiser, encode, and taps for consumers such as captions.
type AudioConfig struct {
	Registry   *audio.Registry
	NewDecoder func() (audio.Decoder, error)
	// NewEncoder makes the Opus encoder processing needs; nil when this server cannot encode (no cgo).
	NewEncoder func() (audio.Encoder, error)
	// Denoise is the processor chain that turning denoise on runs, in order (e.g. "rnnoise").
	Denoise []string
}

// RoomSettings are a room's defaults, from the node's configuration.
type RoomSettings struct {
	// Denoise turns on the denoise chain for every microphone track of the room; a participant may turn it off
	// for its own.
	Denoise bool `json:"denoise"`
	// Processors replaces the node's denoise chain in this room.
	Processors []string `json:"processors,omitempty"`
	// E2EE says the room's media is end-to-end encrypted: the server cannot decode it, so nothing is processed.
	E2EE bool `json:"e2ee"`
	// Language is what the room's participants speak, for captions, unless they say otherwise ("en", "yue", ...).
	Language string `json:"language,omitempty"`
}

// Errors of audio processing requests.
var (
	// ErrE2EE refuses processing in a room whose media is end-to-end encrypted.
	ErrE2EE = errors.New("the room is end-to-end encrypted: the server cannot process its audio")
	// ErrUnavailable refuses what this node cannot run (no audio pipeline, no encoder, a processor not loaded).
	ErrUnavailable = audio.ErrUnavailable
)

// unavailable marks err as something this node cannot run, once.
func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return unavailable(err)
}

// processingSlack is how much longer than the SFU's budget a processed packet may take: one 20 ms frame.
const processingSlack = 20 * time.Millisecond

// audioStage is a Receiver's pipeline and the goroutine that runs it.
type audioStage struct {
	pipe   *audio.Pipeline
	cancel context.CancelFunc
	done   chan struct{}
	chain  []string // the processors running, by name
}

// pipeline returns the receiver's pipeline, starting it if needed; nil when the node has none or the track
// has ended.
func (r *Receiver) pipeline(cfg *AudioConfig, log *zap.Logger, latency prometheus.Observer) (*audioStage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.audio != nil {
		return r.audio, nil
	}
	if cfg == nil || r.kind != webrtc.RTPCodecTypeAudio {
		return nil, fmt.Errorf("no audio pipeline on this node: %w", ErrUnavailable)
	}
	if r.ended || r.closed.Load() {
		return nil, fmt.Errorf("track %s has ended: %w", r.id, ErrOutOfOrder)
	}
	dec, err := cfg.NewDecoder()
	if err != nil {
		return nil, unavailable(err)
	}
	var newEnc func() (audio.Encoder, error)
	if cfg.NewEncoder != nil {
		newEnc = cfg.NewEncoder
	}
	st := &audioStage{done: make(chan struct{})}
	st.pipe = audio.NewPipeline(audio.PipelineConfig{
		Decoder:    dec,
		NewEncoder: newEnc,
		Log:        log,
		Emit: func(pkt *rtp.Packet, arrival time.Time) {
			pi := packetInfo{pkt: pkt, key: true, arrival: arrival, slack: processingSlack}
			r.audioMu.Lock()
			r.writePacket(&pi, pkt.MarshalSize())
			r.audioMu.Unlock()
			if latency != nil {
				latency.Observe(time.Since(arrival).Seconds())
			}
		},
		OnError: func(err error) { log.Warn("audio processing stopped", zap.String("track", r.id), zap.Error(err)) },
	})
	st.pipe.SetMuted(r.muted.Load())
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	go func() {
		defer close(st.done)
		st.pipe.Run(ctx)
	}()
	r.audio = st
	r.pipe.Store(st.pipe)
	return st, nil
}

// setProcessors runs the named processors on the track; none turns processing off.
func (r *Receiver) setProcessors(cfg *AudioConfig, names []string, log *zap.Logger, latency prometheus.Observer) error {
	if len(names) == 0 {
		r.mu.Lock()
		st := r.audio
		r.mu.Unlock()
		if st == nil {
			return nil
		}
		if err := st.pipe.SetChain(nil); err != nil {
			return err
		}
		r.mu.Lock()
		st.chain = nil
		r.mu.Unlock()
		return nil
	}
	st, err := r.pipeline(cfg, log, latency)
	if err != nil {
		return err
	}
	chain, err := cfg.Registry.Chain(names)
	if err != nil {
		return unavailable(err)
	}
	if err := st.pipe.SetChain(chain); err != nil {
		return unavailable(err)
	}
	r.mu.Lock()
	st.chain = slices.Clone(names)
	r.mu.Unlock()
	return nil
}

// Processors lists the processors running on the track.
func (r *Receiver) Processors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.audio == nil {
		return nil
	}
	return slices.Clone(r.audio.chain)
}

// AudioTap hands copies of the track's PCM to a consumer (captions); nil when the track cannot be tapped.
func (r *Receiver) AudioTap(cfg *AudioConfig, size int, log *zap.Logger) (*audio.Tap, error) {
	st, err := r.pipeline(cfg, log, nil)
	if err != nil {
		return nil, err
	}
	return st.pipe.AddTap(size), nil
}

// stopAudio ends the pipeline, if any, and waits for its goroutine.
func (r *Receiver) stopAudio() {
	r.mu.Lock()
	st := r.audio
	r.mu.Unlock()
	if st == nil {
		return
	}
	st.cancel()
	<-st.done
}

// denoiseChain is what denoise runs for p's tracks: the engine it asked for, else the room's chain, else the
// node's.
func (p *Participant) denoiseChain() []string {
	if p.denoiseEngine != "" {
		return []string{p.denoiseEngine}
	}
	if s := p.room.settings; len(s.Processors) > 0 {
		return s.Processors
	}
	return p.room.sfu.audio.Denoise
}

// wantsDenoise says whether p's microphone tracks are denoised: its own choice, else the room's default.
func (p *Participant) wantsDenoise() bool {
	if p.denoise != nil {
		return *p.denoise
	}
	return p.room.settings.Denoise && !p.room.settings.E2EE
}

// SetDenoise turns noise suppression on or off for the participant's microphone tracks, now and for those it
// publishes later. engine picks one processor by name instead of the room's chain; "" keeps the chain.
func (p *Participant) SetDenoise(on bool, engine string) error {
	s := p.room.sfu
	if on {
		switch {
		case p.room.settings.E2EE:
			return ErrE2EE
		case s.audio == nil:
			return fmt.Errorf("this node has no audio pipeline: %w", ErrUnavailable)
		case engine != "" && !slices.Contains(s.audio.Registry.Names(), engine):
			return fmt.Errorf("unknown denoiser %.32q (known: %v): %w", engine, s.audio.Registry.Names(), ErrBadRequest)
		}
		chain := []string{engine}
		if engine == "" {
			p.mu.Lock()
			p.denoiseEngine = ""
			chain = p.denoiseChain()
			p.mu.Unlock()
		}
		if err := s.audio.Registry.Check(chain); err != nil { // say now, not at the next publish
			return unavailable(err)
		}
		if s.audio.NewEncoder == nil {
			return fmt.Errorf("denoise needs the Opus encoder (libopus), and this server was built without cgo: %w", ErrUnavailable)
		}
	}
	p.mu.Lock()
	p.denoise, p.denoiseEngine = &on, engine
	tracks := slices.Clone(p.published)
	p.mu.Unlock()
	var errs []error
	for _, r := range tracks {
		if r.kind == webrtc.RTPCodecTypeAudio && r.source == SourceMicrophone {
			errs = append(errs, p.applyDenoise(r))
		}
	}
	return errors.Join(errs...)
}

// applyDenoise sets a microphone track's processors from the participant's and the room's choices, and tells
// the publisher what runs.
func (p *Participant) applyDenoise(r *Receiver) error {
	s := p.room.sfu
	if s.audio == nil || r.kind != webrtc.RTPCodecTypeAudio || r.source != SourceMicrophone {
		return nil
	}
	p.mu.Lock()
	want := p.wantsDenoise()
	chain := p.denoiseChain()
	p.mu.Unlock()
	var names []string
	if want {
		names = chain
	}
	err := r.setProcessors(s.audio, names, p.log, s.processing)
	ev := Event{Kind: EventAudioProcessing, ParticipantID: p.info.ID, Track: r.Info(), Processors: r.Processors()}
	if err != nil {
		ev.Error = err.Error()
		p.log.Info("audio processing refused", zap.String("track", r.id), zap.Strings("processors", names), zap.Error(err))
	} else if len(names) > 0 {
		s.workerStarted(p.room.name, p.info.ID, r.id, "denoise:"+strings.Join(names, ","))
	}
	p.peer.SendEvent(ev)
	return err
}
