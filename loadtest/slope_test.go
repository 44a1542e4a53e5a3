package loadtest

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestRSSSlope: memory growing 2 MB a second after warm-up reads as 120 MB/min; the warm-up before the window
// does not count; flat memory reads as 0; too few samples give 0.
func TestRSSSlope(t *testing.T) {
	rss := func(s Sample) float64 { return s.SFURSSMB }
	var tl []Sample
	for i := 0; i < 60; i++ {
		rss := 500.0 // warm-up: a jump the window must not see
		if i >= 20 {
			rss = 800 + 2*float64(i-20)
		}
		tl = append(tl, Sample{T: float64(i), SFURSSMB: rss})
	}
	if got := slope(tl, 20, rss); math.Abs(got-120) > 0.01 {
		t.Errorf("growing 2 MB/s: slope %.3f MB/min, want 120", got)
	}
	for i := range tl {
		tl[i].SFURSSMB = 700
	}
	if got := slope(tl, 20, rss); got != 0 {
		t.Errorf("flat: slope %v, want 0", got)
	}
	if got := slope(tl[:5], 0, rss); got != 0 {
		t.Errorf("5 samples: slope %v, want 0", got)
	}
}

// TestAudioPlaces: without a speech schedule, a second is good when audio came from as many microphones as the
// server forwards (every one if fewer; one fewer for a user with its own microphone), and every video came.
func TestAudioPlaces(t *testing.T) {
	now := time.Now()
	mk := func(publisher bool, audioWith, audioWithout, video int) *user {
		u := &user{publisher: publisher, streams: map[string]*stream{}}
		add := func(kind string, n int64) {
			s := &stream{kind: kind, published: now.Add(-time.Minute)}
			s.perSecond.Store(n)
			u.streams[fmt.Sprintf("%s-%d", kind, len(u.streams))] = s
		}
		for i := 0; i < audioWith; i++ {
			add("audio", 50)
		}
		for i := 0; i < audioWithout; i++ {
			add("audio", 0)
		}
		for i := 0; i < video; i++ {
			add("video", 30)
		}
		return u
	}
	for _, tc := range []struct {
		name     string
		u        *user
		maxAudio int
		want     bool
	}{
		{"3 of 4 heard, 3 places", mk(false, 3, 1, 2), 3, true},
		{"2 of 4 heard, 3 places", mk(false, 2, 2, 2), 3, false},
		{"publisher: 2 of 3 heard, 3 places", mk(true, 2, 1, 2), 3, true},
		{"2 of 2 heard", mk(false, 2, 0, 2), 3, true},
		{"every one wanted, one silent", mk(false, 3, 1, 2), 0, false},
		{"every one wanted and heard", mk(false, 4, 0, 2), 0, true},
		{"a video silent", mk(false, 3, 0, 1), 3, true},
	} {
		if tc.name == "a video silent" {
			for _, s := range tc.u.streams {
				if s.kind == "video" {
					s.perSecond.Store(0)
				}
			}
			tc.want = false
		}
		if got := tc.u.second(nil, tc.maxAudio, 0, time.Second, now).good; got != tc.want {
			t.Errorf("%s: good %v, want %v", tc.name, got, tc.want)
		}
	}
}
