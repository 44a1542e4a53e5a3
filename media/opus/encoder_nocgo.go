//go:build !cgo

package opus

import (
	"fmt"

	"github.com/edge-sfu/sfu/media/audio"
)

// EncoderAvailable reports whether this build can encode Opus.
const EncoderAvailable = false

// NewEncoder fails: libopus needs cgo.
func NewEncoder() (audio.Encoder, error) {
	return nil, fmt.Errorf("the Opus encoder is libopus, and this server was built without cgo: %w", audio.ErrUnavailable)
}
