package sfu

import "time"

// Dynacast: a publisher encodes and sends every simulcast layer, whether anyone receives it or not. Each
// allocation round the publisher's own loop looks at what its subscribers' DownTracks forward or are switching
// to, and tells the publisher which layers are wanted, so that it stops encoding the others; the lowest layer
// always stays on, so that a new subscriber starts at once. A layer is turned off only once it has been unwanted
// for layerOffDelay, and on again at once.
const layerOffDelay = 3 * time.Second

// dynacastState is what the loop remembers per published track; only the allocator goroutine touches it.
type dynacastState struct {
	told       [maxLayers]bool // what the publisher was last told
	toldOnce   bool
	wantedLast [maxLayers]time.Time
}

// wantedLayers reports which layers some DownTrack of r forwards, is switching to, or would take if its
// bandwidth allowed, with every layer below that (what its tile asks for: the publisher keeps those layers going
// so that the subscriber can move up through them as soon as its estimate allows, without waiting for the
// publisher's encoder to start again).
func (r *Receiver) wantedLayers() (want [maxLayers]bool) {
	want[0] = true
	for _, d := range r.DownTracks() {
		if d.bound.Load() == nil {
			continue
		}
		cur, tgt := d.Layers()
		for _, l := range []int32{cur, tgt} {
			if l >= 0 && l < maxLayers {
				want[l] = true
			}
		}
		// Every layer up to the desired one: a subscriber held back by bandwidth climbs through them.
		for l := int32(0); l <= d.desired.Load() && l < maxLayers; l++ {
			want[l] = true
		}
	}
	return want
}

// DownTracks returns the current subscribers.
func (r *Receiver) DownTracks() []*DownTrack { return *r.downs.Load() }

// dynacast tells this participant which layers of its simulcast tracks are wanted, when that changes.
func (p *Participant) dynacast(now time.Time) {
	p.mu.Lock()
	published := append([]*Receiver(nil), p.published...)
	p.mu.Unlock()
	if p.layerState == nil {
		p.layerState = map[*Receiver]*dynacastState{}
	}
	seen := make(map[*Receiver]bool, len(published))
	for _, r := range published {
		seen[r] = true
		active := r.ActiveLayers()
		if !active[1] && !active[2] {
			continue // not simulcast
		}
		st := p.layerState[r]
		if st == nil {
			st = &dynacastState{}
			p.layerState[r] = st
		}
		want := r.wantedLayers()
		var next [maxLayers]bool
		for l := range want {
			if want[l] {
				st.wantedLast[l] = now
			}
			next[l] = active[l] && (want[l] || now.Sub(st.wantedLast[l]) < layerOffDelay)
		}
		for l := range next {
			if active[l] {
				r.layers[l].paused.Store(!next[l])
			}
		}
		if st.toldOnce && next == st.told {
			continue
		}
		st.told, st.toldOnce = next, true
		var rids, paused []string
		for l, on := range next {
			rid := r.rids[l].Load()
			switch {
			case rid == nil || !active[l]:
				// Never received: the publisher may not have started it yet; say nothing about it.
			case on:
				rids = append(rids, *rid)
			default:
				paused = append(paused, *rid)
			}
		}
		p.peer.SendEvent(Event{Kind: EventLayers, ParticipantID: p.info.ID, Track: r.Info(), Layers: rids, Paused: paused})
	}
	for r := range p.layerState {
		if !seen[r] {
			delete(p.layerState, r)
		}
	}
}
