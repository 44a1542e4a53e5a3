// Package opus holds the pipeline's Opus codecs: Pion's pure-Go decoder, which handles SILK, CELT and hybrid
// packets, and libopus's encoder, which needs cgo (a build without cgo has no encoder and says so).
package opus

import (
	"fmt"

	pionopus "github.com/pion/opus"

	"github.com/edge-sfu/sfu/media/audio"
)

// Decoder decodes Opus packets to 48 kHz mono PCM.
type Decoder struct {
	d pionopus.Decoder
}

// NewDecoder returns a decoder for one stream.
func NewDecoder() (*Decoder, error) {
	d, err := pionopus.NewDecoderWithOutput(audio.SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	return &Decoder{d: d}, nil
}

// Decode decodes one packet into pcm and reports the samples written.
func (d *Decoder) Decode(payload []byte, pcm []int16) (int, error) {
	n, err := d.d.DecodeToInt16(payload, pcm)
	if err != nil {
		return 0, fmt.Errorf("opus decode: %w", err)
	}
	return n, nil
}
