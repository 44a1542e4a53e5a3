package captions

import (
	"context"
	"errors"
	"io"
	"testing"
)

// TestUnavailable: unavailable marks a network engine's failure as ErrUnavailable, but not when the caller's
// context has ended, and an error marked already is wrapped once more, not handed back to unavailable: the
// states in which a version that called itself would recurse until the stack overflowed (security finding 5;
// whisper.go's unavailable does not).
func TestUnavailable(t *testing.T) {
	live := context.Background()
	err := unavailable(live, "whisper: POST", io.ErrUnexpectedEOF)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a failure under a live context: %v, want ErrUnavailable and the failure", err)
	}
	if again := unavailable(live, "retry", err); !errors.Is(again, ErrUnavailable) || !errors.Is(again, err) {
		t.Fatalf("a failure marked already: %v", again)
	}

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := unavailable(ended, "whisper: POST", context.Canceled); errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller's own cancellation: %v, want context.Canceled without ErrUnavailable", err)
	}
	if err := unavailable(ended, "whisper: POST", io.ErrUnexpectedEOF); errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a failure after the caller's cancellation: %v, want context.Canceled without ErrUnavailable", err)
	}
}
