package sfu

import (
	"errors"
	"strings"
	"testing"
)

// A budget of 2 gives two slots, refuses a third with ErrUnavailable naming the limit, and takes one again once
// a slot is given back (a second release of the same slot gives nothing more back). No budget has no limit.
func TestWorkerBudget(t *testing.T) {
	b := NewWorkerBudget(2, "-max-worker-streams")
	r1, err1 := b.Take("denoise")
	_, err2 := b.Take("captions")
	if err1 != nil || err2 != nil || b.InUse() != 2 {
		t.Fatalf("two slots of 2: %v %v, in use %d", err1, err2, b.InUse())
	}
	if _, err := b.Take("denoise"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "-max-worker-streams") {
		t.Fatalf("a third slot of 2: %v, want ErrUnavailable naming the limit", err)
	}
	r1()
	r1()
	if b.InUse() != 1 {
		t.Fatalf("after one release (twice): %d in use, want 1", b.InUse())
	}
	if _, err := b.Take("denoise"); err != nil {
		t.Fatalf("a slot after a release: %v", err)
	}
	var none *WorkerBudget
	for range 100 {
		if _, err := none.Take("x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewWorkerBudget(0, "x").Take("x"); err != nil {
		t.Fatal(err)
	}
}
