//go:build !cgo

package opencc

import (
	"context"
	"fmt"
	"github.com/edge-sfu/sfu/captions"
)

// Available reports whether this build has the OpenCC translator.
const Available = false

// OpenCC needs cgo; in this build it converts nothing.
type Translator struct{}

// New returns a translator that supports nothing.
func New() *Translator { return &Translator{} }

// Supports reports false: there is no OpenCC in this build.
func (*Translator) Supports(string, string) bool { return false }

// Translate fails.
func (*Translator) Translate(context.Context, string, string, string) (string, error) {
	return "", fmt.Errorf("opencc is a C library, and this server was built without cgo: %w", captions.ErrUnavailable)
}

// Close does nothing.
func (*Translator) Close() error { return nil }
