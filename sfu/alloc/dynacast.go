package alloc

import "time"

// Dynacast: a publisher encodes and sends every simulcast layer, whether anyone receives it or not. Each
// allocation round the publisher's own loop looks at what its subscribers forward or are switching to, and tells
// the publisher which layers are wanted, so that it stops encoding the others; the lowest layer always stays on,
// so that a new subscriber starts at once. A layer is turned off only once it has been unwanted for
// layerOffDelay, and on again at once.
const layerOffDelay = 3 * time.Second

// Subscriber is one subscriber's use of a published video's layers.
type Subscriber struct {
	Bound           bool  // its connection has taken the track
	Current, Target int32 // the layer it forwards and the one it is switching to (-1: none)
	Desired         int32 // the layer its tile asks for, bandwidth aside (-1: none)
}

// Wanted reports which layers some subscriber forwards, is switching to, or would take if its bandwidth allowed,
// with every layer below that (what its tile asks for: the publisher keeps those layers going so that the
// subscriber can move up through them as soon as its estimate allows, without waiting for the publisher's
// encoder to start again). Layer 0 is always wanted.
func Wanted(subs []Subscriber) (want [MaxLayers]bool) {
	want[0] = true
	for _, s := range subs {
		if !s.Bound {
			continue
		}
		for _, l := range []int32{s.Current, s.Target} {
			if l >= 0 && l < MaxLayers {
				want[l] = true
			}
		}
		for l := int32(0); l <= s.Desired && l < MaxLayers; l++ {
			want[l] = true
		}
	}
	return want
}

// Dynacast is what the publisher's loop remembers of one published track.
type Dynacast struct {
	told       [MaxLayers]bool // what the publisher was last told
	toldOnce   bool
	wantedLast [MaxLayers]time.Time
}

// Next decides which of the active layers the publisher should send, given the ones wanted now; tell reports
// whether that differs from what it was last told (and records that it now is).
func (st *Dynacast) Next(now time.Time, active, want [MaxLayers]bool) (next [MaxLayers]bool, tell bool) {
	for l := range want {
		if want[l] {
			st.wantedLast[l] = now
		}
		next[l] = active[l] && (want[l] || now.Sub(st.wantedLast[l]) < layerOffDelay)
	}
	if st.toldOnce && next == st.told {
		return next, false
	}
	st.told, st.toldOnce = next, true
	return next, true
}
