package alloc

import (
	"testing"
	"time"
)

func TestWanted(t *testing.T) {
	sub := func(cur, target, desired int32) Subscriber {
		return Subscriber{Bound: true, Current: cur, Target: target, Desired: desired}
	}
	for _, c := range []struct {
		name string
		subs []Subscriber
		want [MaxLayers]bool
	}{
		{"no subscriber: layer 0", nil, [MaxLayers]bool{true, false, false}},
		{"unbound subscriber ignored", []Subscriber{{Bound: false, Current: 2, Target: 2, Desired: 2}},
			[MaxLayers]bool{true, false, false}},
		{"paused subscriber: layer 0", []Subscriber{sub(-1, -1, -1)}, [MaxLayers]bool{true, false, false}},
		{"forwarding", []Subscriber{sub(1, 1, -1)}, [MaxLayers]bool{true, true, false}},
		{"switching: current and target, not between", []Subscriber{sub(0, 2, -1)}, [MaxLayers]bool{true, false, true}},
		{"switching down", []Subscriber{sub(2, 1, -1)}, [MaxLayers]bool{true, true, true}},
		{"desired: every layer up to it", []Subscriber{sub(-1, -1, 2)}, [MaxLayers]bool{true, true, true}},
		{"desired 1", []Subscriber{sub(0, 0, 1)}, [MaxLayers]bool{true, true, false}},
		{"union of subscribers", []Subscriber{sub(0, 0, 0), sub(-1, 2, -1), {Bound: false, Desired: 1}},
			[MaxLayers]bool{true, false, true}},
		{"out of range ignored", []Subscriber{sub(5, 7, 9)}, [MaxLayers]bool{true, true, true}},
		{"out of range current and target only", []Subscriber{sub(5, 3, -1)}, [MaxLayers]bool{true, false, false}},
	} {
		if got := Wanted(c.subs); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDynacastNext(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	all := [MaxLayers]bool{true, true, true}
	low := [MaxLayers]bool{true, false, false}
	lowMid := [MaxLayers]bool{true, true, false}
	type step struct {
		at     time.Duration
		active [MaxLayers]bool
		want   [MaxLayers]bool
		next   [MaxLayers]bool
		tell   bool
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{
			// Layers 1 and 2 stop being wanted at 2 s, last wanted at 1 s: on until 1 s + layerOffDelay, then off.
			// Layer 1 wanted again: on at once. Told only on a change, and the first time.
			name: "off after layerOffDelay, on at once",
			steps: []step{
				{0, all, all, all, true},
				{time.Second, all, all, all, false},
				{2 * time.Second, all, low, all, false},
				{time.Second + layerOffDelay - 1, all, low, all, false},
				{time.Second + layerOffDelay, all, low, low, true},
				{5 * time.Second, all, low, low, false},
				{5*time.Second + 1, all, lowMid, lowMid, true},
				{5*time.Second + 2, all, lowMid, lowMid, false},
			},
		},
		{
			// A layer the publisher does not send is never on, wanted or not; it comes on once active.
			name: "inactive layers never on",
			steps: []step{
				{0, lowMid, all, lowMid, true},
				{time.Second, lowMid, all, lowMid, false},
				{2 * time.Second, all, all, all, true},
				{3 * time.Second, low, all, low, true},
			},
		},
		{
			// Never wanted: off from the first call, which is told even though it turns nothing on.
			name: "never wanted",
			steps: []step{
				{0, all, low, low, true},
				{time.Minute, all, low, low, false},
			},
		},
		{
			// Nothing active: all off, told the first time (the publisher has not been told anything).
			name: "nothing active, first call",
			steps: []step{
				{0, [MaxLayers]bool{}, all, [MaxLayers]bool{}, true},
				{time.Second, [MaxLayers]bool{}, all, [MaxLayers]bool{}, false},
			},
		},
		{
			// A layer wanted again within layerOffDelay never goes off, and its delay starts again.
			name: "wanted again before it goes off",
			steps: []step{
				{0, all, all, all, true},
				{2 * time.Second, all, lowMid, all, false},
				{layerOffDelay - 1, all, all, all, false},
				{layerOffDelay + 2*time.Second, all, lowMid, all, false},
				{2*layerOffDelay - 2, all, lowMid, all, false}, // last wanted at layerOffDelay - 1
				{2*layerOffDelay - 1, all, lowMid, lowMid, true},
			},
		},
	} {
		var d Dynacast
		for i, s := range c.steps {
			next, tell := d.Next(t0.Add(s.at), s.active, s.want)
			if next != s.next || tell != s.tell {
				t.Errorf("%s, step %d (at %v, active %v, wanted %v): %v, tell %v; want %v, tell %v",
					c.name, i, s.at, s.active, s.want, next, tell, s.next, s.tell)
				break
			}
		}
	}
}
