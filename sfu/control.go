package sfu

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/sfu/alloc"
	"github.com/edge-sfu/sfu/sfu/transport"
)

// The control loop of a participant: every alloc.Interval, and when poked (a subscription, a tile size change),
// it takes a snapshot of the videos the participant receives, lets sfu/alloc choose their layers, and applies the
// choice to the DownTracks; then it tells the participant which layers of its own simulcast tracks anyone wants
// (dynacast).

// control is what the loop keeps; only the control goroutine touches it, except poke.
type control struct {
	poke     chan struct{} // wakes the loop
	alloc    alloc.State
	dynacast map[*Track]*alloc.Dynacast
}

// startControl starts the control loop; the participant must be in its room.
func (p *Participant) startControl() {
	p.spawn(func() {
		t := time.NewTicker(alloc.Interval)
		defer t.Stop()
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-t.C:
			case <-p.ctl.poke:
			}
			now := time.Now()
			p.allocate(now)
			p.dynacast(now)
		}
	})
}

// pokeControl asks for the layers to be chosen again soon.
func (p *Participant) pokeControl() {
	select {
	case p.ctl.poke <- struct{}{}:
	default:
	}
}

// allocate chooses the layer of each video this participant receives.
func (p *Participant) allocate(now time.Time) {
	est := p.estimate()
	if est <= 0 {
		est = transport.BWEInitial
	}
	speaker := p.room.loudest()
	audio := 0.0
	var videos []alloc.Video
	var subs []*subscription
	for _, s := range p.subscriptions() {
		r := s.track.r
		if r.Kind() != webrtc.RTPCodecTypeVideo {
			if !r.Silenced() {
				audio += alloc.AudioCost(r.LayerRates()[0][2])
			}
			continue
		}
		if s.upper != nil {
			continue // a relay's copy of each layer: the far node chooses
		}
		cur, tgt := s.down.Layers()
		videos = append(videos, alloc.Video{Key: s.down, Screen: r.Source() == SourceScreen,
			Speaker: speaker != "" && s.down.StreamID() == speaker, Active: r.ActiveLayers(), Live: r.LiveLayers(),
			LayerCap: r.LayerCap(), Sizes: r.LayerSizes(), Rates: r.LayerRates(),
			TileW: int(s.tileW.Load()), TileH: int(s.tileH.Load()), TileGrew: s.tileGrew.Load(), BoundAt: s.down.BoundAt(),
			Current: cur, Target: tgt, Temporal: s.down.MaxTemporalLayer(), LateDrops: s.down.LateDrops()})
		subs = append(subs, s)
	}
	decisions, sending := p.ctl.alloc.Plan(now, est, audio, videos)
	p.allocated.Store(uint64(sending))
	for i, dec := range decisions {
		d := subs[i].down
		d.SetDesired(dec.Desired)
		switch {
		case dec.Keep:
		case dec.Layer < 0:
			d.SetTargetLayer(-1)
		default:
			if videos[i].TileGrew {
				subs[i].tileGrew.CompareAndSwap(true, false) // the allocator has acted on it
			}
			d.SetMaxTemporalLayer(dec.Temporal)
			d.SetTargetLayer(dec.Layer)
		}
	}
}

// dynacast tells this participant which layers of its simulcast tracks are wanted, when that changes.
func (p *Participant) dynacast(now time.Time) {
	tracks := p.Tracks()
	if p.ctl.dynacast == nil {
		p.ctl.dynacast = map[*Track]*alloc.Dynacast{}
	}
	seen := make(map[*Track]bool, len(tracks))
	for _, t := range tracks {
		seen[t] = true
		r := t.r
		active := r.ActiveLayers()
		if !active[1] && !active[2] {
			continue // not simulcast
		}
		st := p.ctl.dynacast[t]
		if st == nil {
			st = &alloc.Dynacast{}
			p.ctl.dynacast[t] = st
		}
		downs := r.DownTracks()
		subs := make([]alloc.Subscriber, 0, len(downs))
		for _, d := range downs {
			cur, tgt := d.Layers()
			subs = append(subs, alloc.Subscriber{Bound: d.Bound(), Current: cur, Target: tgt, Desired: d.Desired()})
		}
		next, tell := st.Next(now, active, alloc.Wanted(subs))
		for l := range next {
			if active[l] {
				r.SetPaused(l, !next[l])
			}
		}
		if !tell {
			continue
		}
		var rids, paused []string
		for l, on := range next {
			rid, ok := r.RID(l)
			switch {
			case !ok || !active[l]:
				// Never received: the publisher may not have started it yet; say nothing about it.
			case on:
				rids = append(rids, rid)
			default:
				paused = append(paused, rid)
			}
		}
		p.peer.SendEvent(Event{Kind: EventLayers, ParticipantID: p.info.ID, Track: t.Info(), Layers: rids, Paused: paused})
	}
	for t := range p.ctl.dynacast {
		if !seen[t] {
			delete(p.ctl.dynacast, t)
		}
	}
}
