//go:build cgo

package opus

import (
	"fmt"

	hopus "gopkg.in/hraban/opus.v2"

	"github.com/edge-sfu/sfu/media/audio"
)

// EncoderAvailable reports whether this build can encode Opus.
const EncoderAvailable = true

// Encoder encodes 48 kHz mono PCM with libopus, tuned for speech: 32 kbit/s VBR, in-band FEC.
type Encoder struct {
	e *hopus.Encoder
}

// NewEncoder returns an encoder for one stream.
func NewEncoder() (audio.Encoder, error) {
	e, err := hopus.NewEncoder(audio.SampleRate, 1, hopus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("libopus encoder: %w", err)
	}
	for _, set := range []func() error{
		func() error { return e.SetBitrate(32000) },
		func() error { return e.SetComplexity(5) },
		func() error { return e.SetInBandFEC(true) },
		func() error { return e.SetPacketLossPerc(5) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("libopus encoder setting: %w", err)
		}
	}
	return &Encoder{e: e}, nil
}

// Encode encodes pcm (2.5 to 60 ms) as one packet into out.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	n, err := e.e.Encode(pcm, out)
	if err != nil {
		return 0, fmt.Errorf("libopus encode: %w", err)
	}
	return n, nil
}
