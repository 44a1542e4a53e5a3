package sfu

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"
)

// The allocator shares a subscriber's bandwidth estimate across the videos it receives. It runs every
// allocInterval and when poked (a subscription, a tile size change).
//
// The estimate of a sender cannot rise much above what it sends (gcc caps it at 1.5 times the rate received),
// and rises slowly when it does, so the allocator keeps a second figure: the rate it has sent for upHold without
// the estimate falling (proven). Its budget is the larger of the two. It lowers layers as soon as the budget no
// longer covers them, and a fall of the estimate (below dropRatio of its recent peak) forgets the proven rate, so
// the layers come down within the next run. It raises layers only within what the estimate has held for upHold
// (or the proven rate), and probes: when nothing has fallen for upHold, one video goes one step above what the
// budget allows and keeps it for upHold unless the estimate falls, in which case the next probe waits twice as
// long (up to maxProbeBackoff).
const (
	allocInterval   = 250 * time.Millisecond
	upHold          = 3 * time.Second
	dropRatio       = 0.85
	provenHeadroom  = 1.2
	minProbeBackoff = 3 * time.Second
	maxProbeBackoff = 60 * time.Second
	audioDefaultBps = 50_000
	// tileGrace is how long a new subscriber may take to say its tile size before it counts as wanting the
	// largest layer (a client that never says, like a WHEP player, gets it then).
	tileGrace = 2 * time.Second
)

// tileUnknown marks a track whose tile size the subscriber has not said: it gets the largest layer.
const tileUnknown = -1

// nominalBps is what a layer is assumed to cost before it has been measured: the browser client's encodings.
var nominalBps = [maxLayers]float64{150_000, 500_000, 2_500_000}

// temporalShare is the part of a layer's bitrate carried by temporal layers up to 0, 1 and 2 (VP8 L1T3), used
// until measured.
var temporalShare = [3]float64{0.5, 0.75, 1}

// option is a layer with a temporal-layer limit.
type option struct{ layer, temporal int32 }

// above reports whether o is a better picture than p: a higher layer, or more temporal layers of the same one.
func (o option) above(p option) bool {
	return o.layer > p.layer || o.layer == p.layer && o.temporal > p.temporal
}

// demand is one video of a subscriber as the allocator sees it.
type demand struct {
	priority int      // 0 screen share, 1 active speaker, 2 others
	area     int      // tile area in pixels; larger first within a priority
	options  []option // best first; the last is the cheapest
	costs    []float64
	current  option // what it has now; layer -1 if nothing yet
	boost    bool   // its tile just grew: probe straight to the best option, whatever the budget says
}

// allocate picks one option per demand, in priority order. An option at or below a video's current one must fit
// budgetDown (the budget now); one above it must fit budgetUp (what the budget has held). probe lets the first
// video that could go higher take one step above what the budget allows; hold (an index, or -1) is a video whose
// probe is under way: it keeps its option. A video that cannot fit even its cheapest option gets that option
// anyway: a slow picture beats none. It returns the picks (indexes into options) and the probing demand, or -1.
func allocate(ds []demand, budgetDown, budgetUp float64, probe bool, hold int) ([]int, int) {
	order := make([]int, len(ds))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(ds[a].priority, ds[b].priority); c != 0 {
			return c
		}
		return cmp.Compare(ds[b].area, ds[a].area)
	})
	picks := make([]int, len(ds))
	probed := -1
	for _, i := range order {
		d := ds[i]
		pick := len(d.options) - 1
		for k, o := range d.options {
			budget := budgetDown
			if o.above(d.current) {
				budget = budgetUp
			}
			if d.costs[k] <= budget {
				pick = k
				break
			}
		}
		cur := slices.Index(d.options, d.current)
		switch {
		case d.boost && pick > 0 && probed < 0:
			pick, probed = 0, i // the person made the tile bigger: try what it asks for now
		case i == hold && cur >= 0 && pick > cur:
			pick = cur
		case probe && probed < 0 && cur > 0 && pick == cur:
			pick, probed = cur-1, i // fits no better than now: one step up
		}
		picks[i] = pick
		budgetDown -= d.costs[pick]
		budgetUp -= d.costs[pick]
	}
	return picks, probed
}

// options lists the choices for a video whose tile asks for at most layer top: best first, dropping temporal
// layers before a spatial layer, over the layers being received.
func videoOptions(r *Receiver, top int32, active [maxLayers]bool) ([]option, []float64) {
	rates := r.layerRates()
	var opts []option
	var costs []float64
	for l := top; l >= 0; l-- {
		if !active[l] {
			continue
		}
		for t := int32(2); t >= 0; t-- {
			cost := rates[l][t]
			if cost <= 0 {
				cost = nominalBps[l] * temporalShare[t]
			}
			opts = append(opts, option{l, t})
			costs = append(costs, cost)
		}
	}
	return opts, costs
}

// chooseLayer picks the simulcast layer for a tile of w x h pixels: the smallest layer that covers the tile, or
// the largest there is when none does. Hidden tiles (0 x 0) get -1: nothing. Layers whose size is unknown count
// as halving from the top: layer 2 full size, 1 half, 0 a quarter.
func chooseLayer(active [maxLayers]bool, sizes [maxLayers][2]int, w, h int) int32 {
	if w == 0 && h == 0 {
		return -1
	}
	top := int32(-1)
	for l := maxLayers - 1; l >= 0; l-- {
		if active[l] {
			top = int32(l)
			break
		}
	}
	if top < 0 || w == tileUnknown {
		return top
	}
	for l := int32(0); l <= top; l++ {
		if !active[l] {
			continue
		}
		lw, lh := sizes[l][0], sizes[l][1]
		if lw == 0 || lh == 0 { // unknown: compare by index against the largest known
			lw, lh = guessSize(sizes, l)
		}
		// Covers the tile: allow a little upscaling (a 960x540 layer for a 1000x562 tile).
		if lw*10 >= w*9 && lh*10 >= h*9 {
			return l
		}
	}
	return top
}

// guessSize estimates a layer's size from the largest layer whose size is known, at half per step.
func guessSize(sizes [maxLayers][2]int, l int32) (int, int) {
	for k := int32(maxLayers - 1); k >= 0; k-- {
		if sizes[k][0] > 0 && sizes[k][1] > 0 {
			shift := k - l
			if shift < 0 {
				return sizes[k][0] << -shift, sizes[k][1] << -shift
			}
			return sizes[k][0] >> shift, sizes[k][1] >> shift
		}
	}
	return 1920 >> (maxLayers - 1 - l), 1080 >> (maxLayers - 1 - l) // nothing known: assume 1080p at the top
}

// allocState is what the allocator remembers between runs; only the allocator goroutine touches it.
type allocState struct {
	history      []estSample // estimates of the last upHold
	lastDrop     time.Time   // when the estimate last fell
	proven       float64     // a rate sent for upHold without the estimate falling
	provenFrom   time.Time   // since when the current rate has been sent
	sending      float64     // the rate of the last allocation
	picks        map[*DownTrack]option
	lateSeen     map[*DownTrack]uint64 // late drops already acted on
	nextProbe    time.Time
	probeBackoff time.Duration
	probe        *DownTrack // the video probing now, or nil
	probeAt      time.Time
}

type estSample struct {
	at  time.Time
	bps float64
}

// observe records an estimate and returns the lowest of the last upHold; a fall below dropRatio of the highest
// of the last upHold is a drop, which forgets the proven rate.
func (s *allocState) observe(now time.Time, bps float64) float64 {
	s.history = append(s.history, estSample{now, bps})
	i := 0
	for i < len(s.history)-1 && now.Sub(s.history[i].at) > upHold {
		i++
	}
	s.history = s.history[i:]
	low, high := bps, bps
	for _, e := range s.history {
		low, high = min(low, e.bps), max(high, e.bps)
	}
	if bps < dropRatio*high && now.Sub(s.lastDrop) > time.Second {
		s.lastDrop = now
		s.proven = 0
		s.history = s.history[len(s.history)-1:] // measure the next drop from here
		low = bps
	}
	return low
}

// estimate is the subscriber's bandwidth estimate in bits per second; 0 before the connection has one.
func (p *Participant) estimate() float64 {
	if e := p.bwe.Load(); e != nil {
		return float64((*e).GetTargetBitrate())
	}
	return 0
}

// allocate chooses the layer of each video this participant receives.
func (p *Participant) allocate(now time.Time) {
	p.mu.Lock()
	downs := make([]*DownTrack, 0, len(p.downs))
	for _, s := range p.downs {
		downs = append(downs, s.down)
	}
	p.mu.Unlock()

	est := p.estimate()
	if est <= 0 {
		est = bweInitial
	}
	held := p.alloc.observe(now, est)
	speaker := p.room.loudest()

	audio := 0.0
	var ds []demand
	var videos []*DownTrack
	for _, d := range downs {
		r := d.receiver
		if r.kind != webrtc.RTPCodecTypeVideo {
			if rate := r.layerRates()[0][2]; rate > 0 {
				audio += rate
			} else {
				audio += audioDefaultBps
			}
			continue
		}
		var sizes [maxLayers][2]int
		for l := 0; l < maxLayers; l++ {
			sizes[l][0], sizes[l][1] = r.LayerSize(l)
		}
		// Layers the publisher was told to pause are not chosen: nothing would come. They count as desired, so
		// dynacast turns them back on and a later round moves up to them.
		active, live := r.ActiveLayers(), r.liveLayers()
		w, h := int(d.tileW.Load()), int(d.tileH.Load())
		top, liveTop := chooseLayer(active, sizes, w, h), chooseLayer(live, sizes, w, h)
		if top >= 0 && r.Source() == SourceScreen { // text must stay readable: at least the middle layer
			top = max(top, min(chooseLayer(active, sizes, tileUnknown, tileUnknown), 1))
			liveTop = max(liveTop, min(chooseLayer(live, sizes, tileUnknown, tileUnknown), 1))
		}
		if c := r.layerCap.Load() - 1; top > c { // over the publisher's bitrate limit: not even desired
			top = c
		}
		if w == tileUnknown && now.Sub(d.boundAt()) < tileGrace {
			top = liveTop // it will say its tile size soon: do not wake paused layers for it yet
		}
		d.desired.Store(top)
		if liveTop < 0 || top < 0 {
			d.SetTargetLayer(-1)
			continue
		}
		opts, costs := videoOptions(r, liveTop, live)
		if len(opts) == 0 {
			continue
		}
		cur, _ := d.Layers()
		dm := demand{priority: 2, area: max(w, 0) * max(h, 0), options: opts, costs: costs,
			current: option{cur, d.maxTemporal.Load()}, boost: d.tileGrew.Swap(false)}
		if d.target.Load() != cur { // a switch is pending: count what was asked for
			dm.current.layer = d.target.Load()
		}
		if dm.current.temporal > 2 {
			dm.current.temporal = 2
		}
		if late := d.lateDrops.Load(); late != p.alloc.lateSeen[d] {
			// Packets missed the SFU's latency budget: step this video down, and count it as a drop.
			if p.alloc.lateSeen == nil {
				p.alloc.lateSeen = map[*DownTrack]uint64{}
			}
			p.alloc.lateSeen[d] = late
			p.alloc.lastDrop, p.alloc.proven = now, 0
			if k := slices.Index(dm.options, dm.current); k >= 0 && k+1 < len(dm.options) {
				dm.options, dm.costs = dm.options[k+1:], dm.costs[k+1:]
			}
		}
		switch {
		case r.Source() == SourceScreen:
			dm.priority = 0
		case speaker != "" && d.streamID == speaker:
			dm.priority = 1
		}
		ds = append(ds, dm)
		videos = append(videos, d)
	}

	st := &p.alloc
	// The rate sent since the last change has held for upHold without a drop: it is proven.
	if now.Sub(st.provenFrom) >= upHold && st.lastDrop.Before(st.provenFrom) {
		// With headroom: measured layer rates wander (keyframes), and what was sent must keep fitting.
		st.proven = max(st.proven, st.sending*provenHeadroom)
	}
	hold := -1
	if st.probe != nil {
		switch {
		case st.lastDrop.After(st.probeAt): // the estimate fell: back off
			st.probe = nil
			st.probeBackoff = min(max(st.probeBackoff*2, minProbeBackoff), maxProbeBackoff)
			st.nextProbe = now.Add(st.probeBackoff)
		case now.Sub(st.probeAt) > upHold: // it held
			st.probe = nil
			st.probeBackoff = minProbeBackoff
		default:
			hold = slices.Index(videos, st.probe)
		}
	}
	canProbe := st.probe == nil && !now.Before(st.nextProbe) && now.Sub(st.lastDrop) > upHold
	budgetDown, budgetUp := max(est, st.proven)-audio, max(held, st.proven)-audio
	picks, probed := allocate(ds, budgetDown, budgetUp, canProbe, hold)
	if probed >= 0 {
		st.probe, st.probeAt = videos[probed], now
		st.nextProbe = now.Add(max(st.probeBackoff, minProbeBackoff))
	}
	sending, changed := audio, len(videos) != len(st.picks)
	next := make(map[*DownTrack]option, len(videos))
	for i, d := range videos {
		o := ds[i].options[picks[i]]
		sending += ds[i].costs[picks[i]]
		next[d] = o
		if prev, ok := st.picks[d]; !ok || prev != o {
			changed = true
		}
	}
	if changed {
		st.provenFrom = now
	}
	for d := range st.lateSeen {
		if _, ok := next[d]; !ok {
			delete(st.lateSeen, d)
		}
	}
	st.sending, st.picks = sending, next
	p.allocated.Store(uint64(sending))
	for i, d := range videos {
		o := ds[i].options[picks[i]]
		d.SetMaxTemporalLayer(o.temporal)
		d.SetTargetLayer(o.layer)
	}
}

// allocLoop chooses layers every allocInterval and whenever poked, until ctx ends.
func (p *Participant) allocLoop(ctx context.Context) {
	t := time.NewTicker(allocInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.allocPoke:
		}
		now := time.Now()
		p.allocate(now)
		p.dynacast(now)
	}
}

// pokeAllocator asks for the layers to be chosen again soon.
func (p *Participant) pokeAllocator() {
	select {
	case p.allocPoke <- struct{}{}:
	default:
	}
}
