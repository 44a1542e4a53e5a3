// Package alloc decides, for one subscriber, which simulcast layer of each video it receives: pure functions
// over a snapshot of the subscriber's videos (their layers, rates, tile sizes, what they forward now) and its
// bandwidth estimate, with the little state the decision keeps between rounds. It also decides which layers a
// publisher is asked to keep encoding (dynacast). It does no I/O, takes no locks and starts no goroutines: the
// room layer takes the snapshot, calls Plan and applies the decisions.
package alloc

import (
	"cmp"
	"slices"
	"time"
)

// MaxLayers is the number of simulcast layers a track can have.
const MaxLayers = 3

// The allocator shares a subscriber's bandwidth estimate across the videos it receives. It runs every Interval
// and when poked (a subscription, a tile size change).
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
	Interval        = 250 * time.Millisecond
	upHold          = 3 * time.Second
	dropRatio       = 0.85
	provenHeadroom  = 1.2
	minProbeBackoff = 3 * time.Second
	maxProbeBackoff = 60 * time.Second
	// AudioDefaultBps is what an audio track is assumed to cost before it has been measured.
	AudioDefaultBps = 50_000
	// TileGrace is how long a new subscriber may take to say its tile size before it counts as wanting the
	// largest layer (a client that never says, like a WHEP player, gets it then).
	TileGrace = 2 * time.Second
)

// TileUnknown marks a video whose tile size the subscriber has not said: it gets the largest layer.
const TileUnknown = -1

// nominalBps is what a layer is assumed to cost before it has been measured: the browser client's encodings.
var nominalBps = [MaxLayers]float64{150_000, 500_000, 2_500_000}

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

// videoOptions lists the choices for a video whose tile asks for at most layer top: best first, dropping
// temporal layers before a spatial layer, over the layers being received.
func videoOptions(rates [MaxLayers][3]float64, top int32, active [MaxLayers]bool) ([]option, []float64) {
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

// ChooseLayer picks the simulcast layer for a tile of w x h pixels: the smallest layer that covers the tile, or
// the largest there is when none does. Hidden tiles (0 x 0) get -1: nothing. Layers whose size is unknown count
// as halving from the top: layer 2 full size, 1 half, 0 a quarter.
func ChooseLayer(active [MaxLayers]bool, sizes [MaxLayers][2]int, w, h int) int32 {
	if w == 0 && h == 0 {
		return -1
	}
	top := int32(-1)
	for l := MaxLayers - 1; l >= 0; l-- {
		if active[l] {
			top = int32(l)
			break
		}
	}
	if top < 0 || w == TileUnknown {
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
func guessSize(sizes [MaxLayers][2]int, l int32) (int, int) {
	for k := int32(MaxLayers - 1); k >= 0; k-- {
		if sizes[k][0] > 0 && sizes[k][1] > 0 {
			shift := k - l
			if shift < 0 {
				return sizes[k][0] << -shift, sizes[k][1] << -shift
			}
			return sizes[k][0] >> shift, sizes[k][1] >> shift
		}
	}
	return 1920 >> (MaxLayers - 1 - l), 1080 >> (MaxLayers - 1 - l) // nothing known: assume 1080p at the top
}
