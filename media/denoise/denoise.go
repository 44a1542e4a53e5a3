// Package denoise provides the pipeline's noise suppressors: RNNoise, run from its WebAssembly build in
// wazero (pure Go), and speexdsp's preprocessor (cgo). Register puts them in a node's processor registry.
package denoise

import (
	"context"
	"fmt"
	"sync"

	"github.com/edge-sfu/sfu/media/audio"
)

// Processor names in the registry.
const (
	NameRNNoise = "rnnoise"
	NameSpeex   = "speex"
)

// SpeexSuppressDB is how far speexdsp may pull noise down.
const SpeexSuppressDB = -30

// Options says where the denoisers' files are.
type Options struct {
	RNNoiseDir string // the folder of the npm package @echogarden/rnnoise-wasm
}

// Register adds both denoisers to reg. A denoiser that cannot run here (no cgo, files not installed) is still
// registered, so that asking for it gives the reason. RNNoise is compiled when first asked for. The returned
// function releases its engine.
func Register(ctx context.Context, reg *audio.Registry, opt Options) (release func(context.Context) error) {
	var (
		mu     sync.Mutex
		engine *RNNoise
		err    error
		tried  bool
	)
	load := func() (*RNNoise, error) {
		mu.Lock()
		defer mu.Unlock()
		if !tried {
			tried = true
			if engine, err = LoadRNNoise(ctx, opt.RNNoiseDir); err != nil {
				err = fmt.Errorf("%w: %w", err, audio.ErrUnavailable)
			}
		}
		return engine, err
	}
	reg.Register(NameRNNoise, "RNNoise noise suppression (WebAssembly in wazero)", func() (audio.Processor, error) {
		e, err := load()
		if err != nil {
			return nil, err
		}
		return e.New()
	})
	about := "speexdsp preprocessor noise suppression (cgo)"
	if !SpeexAvailable {
		about = "speexdsp preprocessor: needs a build with cgo"
	}
	reg.Register(NameSpeex, about, func() (audio.Processor, error) { return NewSpeex(SpeexSuppressDB) })
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		tried = true // nothing is loaded after release
		if engine == nil {
			return nil
		}
		e := engine
		engine, err = nil, fmt.Errorf("rnnoise: released: %w", audio.ErrUnavailable)
		return e.Close(ctx)
	}
}
