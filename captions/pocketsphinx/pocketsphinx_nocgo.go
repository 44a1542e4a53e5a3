//go:build !cgo

package pocketsphinx

import (
	"fmt"

	"github.com/edge-sfu/sfu/captions"
)

// Available reports whether this build has the PocketSphinx engine.
const Available = false

// Engine needs cgo; this build has none.
type Engine struct{ captions.Recognizer }

// New fails: Engine is a C library.
func New(Config) (*Engine, error) {
	return nil, fmt.Errorf("pocketsphinx is a C library, and this server was built without cgo: %w", captions.ErrUnavailable)
}

// Close does nothing.
func (*Engine) Close() error { return nil }
