//go:build cgo

package denoise

/*
#cgo pkg-config: speexdsp
#include <speex/speex_preprocess.h>

static int speex_set_int(SpeexPreprocessState *st, int request, int value) {
	return speex_preprocess_ctl(st, request, &value);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/edge-sfu/sfu/media/audio"
)

// SpeexAvailable reports whether this build has the speexdsp denoiser.
const SpeexAvailable = true

// speex is speexdsp's preprocessor with only its noise suppression on.
type speex struct {
	st *C.SpeexPreprocessState
}

// NewSpeex makes a speexdsp denoiser for one stream that suppresses noise by up to suppressDB (negative).
func NewSpeex(suppressDB int) (audio.Processor, error) {
	st := C.speex_preprocess_state_init(C.int(audio.FrameSamples), C.int(audio.SampleRate))
	if st == nil {
		return nil, errors.New("speex_preprocess_state_init failed")
	}
	for _, s := range []struct{ req, v C.int }{
		{C.SPEEX_PREPROCESS_SET_DENOISE, 1},
		{C.SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, C.int(suppressDB)},
		{C.SPEEX_PREPROCESS_SET_AGC, 0},
		{C.SPEEX_PREPROCESS_SET_DEREVERB, 0},
	} {
		if C.speex_set_int(st, s.req, s.v) != 0 {
			C.speex_preprocess_state_destroy(st)
			return nil, fmt.Errorf("speex_preprocess_ctl %d failed", s.req)
		}
	}
	return &speex{st: st}, nil
}

// Process denoises 10 ms in place.
func (s *speex) Process(frame []int16) error {
	if len(frame) != audio.FrameSamples {
		return fmt.Errorf("speex: frame of %d samples, want %d", len(frame), audio.FrameSamples)
	}
	C.speex_preprocess_run(s.st, (*C.spx_int16_t)(unsafe.Pointer(&frame[0])))
	return nil
}

// Close frees the state.
func (s *speex) Close() error {
	if s.st != nil {
		C.speex_preprocess_state_destroy(s.st)
		s.st = nil
	}
	return nil
}
