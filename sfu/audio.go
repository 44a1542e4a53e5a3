package sfu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/media/audio"
)

// AudioConfig gives the codecs of the audio pipeline (media/audio) that workers attach to published Opus tracks.
type AudioConfig struct {
	NewDecoder func() (audio.Decoder, error)
	// NewEncoder makes the Opus encoder processing needs; nil when this server cannot encode (no cgo).
	NewEncoder func() (audio.Encoder, error)
}

// Errors of worker requests.
var (
	// ErrE2EE refuses processing in a room whose media is end-to-end encrypted.
	ErrE2EE = errors.New("the room is end-to-end encrypted: the server cannot process its audio")
	// ErrUnavailable refuses what this node cannot run (no audio pipeline, no encoder, a processor not loaded).
	ErrUnavailable = audio.ErrUnavailable
)

// Unavailable marks err as something this node cannot run (ErrUnavailable), unless it says so already.
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// audioStage is a track's pipeline in its packet path and the goroutine that runs it.
type audioStage struct {
	pipe   *audio.Pipeline
	cancel context.CancelFunc
	done   chan struct{}
}

// Audio returns the track's audio pipeline, starting it on first use: Opus decode, the processors a worker sets
// (SetChain: what subscribers then get instead of the original), encode, and taps of the decoded PCM
// (AddTap). It fails with ErrUnavailable on a node without an audio pipeline, and for a video track.
func (t *Track) Audio() (*audio.Pipeline, error) {
	cfg := t.sfu.audio
	t.audioMu.Lock()
	defer t.audioMu.Unlock()
	if t.audio != nil {
		return t.audio.pipe, nil
	}
	if cfg == nil || t.r.Kind() != webrtc.RTPCodecTypeAudio {
		return nil, fmt.Errorf("no audio pipeline on this node for track %s: %w", t.r.ID(), ErrUnavailable)
	}
	if t.ended {
		return nil, fmt.Errorf("track %s has ended: %w", t.r.ID(), ErrOutOfOrder)
	}
	dec, err := cfg.NewDecoder()
	if err != nil {
		return nil, Unavailable(fmt.Errorf("audio decoder: %w", err))
	}
	log := t.publisher.log.With(zap.String("track", t.r.ID()))
	latency := t.sfu.processing
	st := &audioStage{done: make(chan struct{})}
	st.pipe = audio.NewPipeline(audio.PipelineConfig{
		Decoder:    dec,
		NewEncoder: cfg.NewEncoder,
		Log:        log,
		Emit: func(pkt *rtp.Packet, arrival time.Time) {
			t.r.WriteProcessed(pkt, arrival)
			latency.Observe(time.Since(arrival).Seconds())
		},
		OnError: func(err error) { log.Warn("audio processing stopped", zap.Error(err)) },
	})
	st.pipe.SetMuted(t.r.Muted())
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	go func() {
		defer close(st.done)
		st.pipe.Run(ctx)
	}()
	t.audio = st
	t.r.SetInPath(st.pipe)
	return st.pipe, nil
}

// setAudioMuted tells the pipeline, if any, that the track is muted (it then forwards rather than processes).
func (t *Track) setAudioMuted(muted bool) {
	t.audioMu.Lock()
	defer t.audioMu.Unlock()
	if t.audio != nil {
		t.audio.pipe.SetMuted(muted)
	}
}

// stopAudio ends the pipeline, if any, and waits for its goroutine.
func (t *Track) stopAudio() {
	t.audioMu.Lock()
	st := t.audio
	t.ended = true
	t.audioMu.Unlock()
	if st == nil {
		return
	}
	t.r.SetInPath(nil)
	st.cancel()
	<-st.done
}
