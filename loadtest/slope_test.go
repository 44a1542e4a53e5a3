package loadtest

import (
	"math"
	"testing"
)

// TestRSSSlope: memory growing 2 MB a second after warm-up reads as 120 MB/min; the warm-up before the window
// does not count; flat memory reads as 0; too few samples give 0.
func TestRSSSlope(t *testing.T) {
	var tl []Sample
	for i := 0; i < 60; i++ {
		rss := 500.0 // warm-up: a jump the window must not see
		if i >= 20 {
			rss = 800 + 2*float64(i-20)
		}
		tl = append(tl, Sample{T: float64(i), SFURSSMB: rss})
	}
	if got := rssSlope(tl, 20); math.Abs(got-120) > 0.01 {
		t.Errorf("growing 2 MB/s: slope %.3f MB/min, want 120", got)
	}
	for i := range tl {
		tl[i].SFURSSMB = 700
	}
	if got := rssSlope(tl, 20); got != 0 {
		t.Errorf("flat: slope %v, want 0", got)
	}
	if got := rssSlope(tl[:5], 0); got != 0 {
		t.Errorf("5 samples: slope %v, want 0", got)
	}
}
