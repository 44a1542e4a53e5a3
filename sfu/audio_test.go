package sfu

import (
	"errors"
	"fmt"
	"testing"
)

// TestUnavailable: Unavailable marks an error as ErrUnavailable once, and returns nil and an error that says so
// already unchanged: the states in which a version that called itself, rather than fmt.Errorf, would recurse
// until the stack overflowed (security finding 5; sfu/audio.go's Unavailable does not).
func TestUnavailable(t *testing.T) {
	if err := Unavailable(nil); err != nil {
		t.Fatalf("Unavailable(nil) = %v", err)
	}
	plain := errors.New("decoder: no libopus")
	marked := Unavailable(plain)
	if !errors.Is(marked, ErrUnavailable) || !errors.Is(marked, plain) {
		t.Fatalf("Unavailable(%v) = %v, want it to wrap ErrUnavailable and the error", plain, marked)
	}
	for _, err := range []error{ErrUnavailable, marked, fmt.Errorf("processor: %w", marked)} {
		if got := Unavailable(err); got != err {
			t.Errorf("Unavailable(%v) = %v, want it unchanged", err, got)
		}
	}
}
