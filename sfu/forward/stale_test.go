package forward

import (
	"testing"
	"time"
)

// An upper simulcast layer that stops coming while a lower one still flows is not live: the publisher stopped
// encoding it (Chrome does when its bandwidth estimate falls), and a subscriber left on it would see a frozen
// picture. It is live again from its next packet. The lowest layer that flows, and a track's only layer, stay live
// however long they pause (a still screen).
func TestStaleUpperLayerNotLive(t *testing.T) {
	w := &nopRTCP{}
	r := simulcastReceiver(w, 3)
	clock := time.Unix(1_800_000_000, 0)
	r.now = func() time.Time { return clock }
	streams := []*vp8Stream{{layer: 0}, {layer: 1}, {layer: 2}}
	for _, s := range streams {
		forwardFrame(t, r, s, true)
	}
	if got := r.LiveLayers(); got != [MaxLayers]bool{true, true, true} {
		t.Fatalf("every layer flowing: live %v", got)
	}

	clock = clock.Add(2 * time.Second)
	forwardFrame(t, r, streams[0], false)
	if got := r.LiveLayers(); got != [MaxLayers]bool{true, false, false} {
		t.Fatalf("only the lowest layer flowing for 2 s: live %v, want the upper two stale", got)
	}
	forwardFrame(t, r, streams[2], true)
	if got := r.LiveLayers(); got != [MaxLayers]bool{true, false, true} {
		t.Fatalf("the top layer back: live %v", got)
	}
	if got := r.ActiveLayers(); got != [MaxLayers]bool{true, true, true} {
		t.Fatalf("active %v: a stale layer is still there to ask for", got)
	}

	clock = clock.Add(10 * time.Second) // nothing at all: a pause, not a stale layer
	if got := r.LiveLayers(); got != [MaxLayers]bool{true, true, true} {
		t.Fatalf("no layer flowing for 10 s: live %v, want all (nothing lower to fall back to)", got)
	}

	one := simulcastReceiver(w, 1)
	one.now = func() time.Time { return clock }
	forwardFrame(t, one, &vp8Stream{layer: 0}, true)
	clock = clock.Add(time.Minute)
	if got := one.LiveLayers(); !got[0] {
		t.Fatalf("a single layer quiet for a minute: live %v, want live", got)
	}
}
