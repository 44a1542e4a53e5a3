//go:build !cgo

package denoise

import (
	"fmt"

	"github.com/edge-sfu/sfu/media/audio"
)

// SpeexAvailable reports whether this build has the speexdsp denoiser.
const SpeexAvailable = false

// NewSpeex fails: speexdsp is a C library, and this build has no cgo.
func NewSpeex(int) (audio.Processor, error) {
	return nil, fmt.Errorf("speexdsp is a C library, and this server was built without cgo: %w", audio.ErrUnavailable)
}
