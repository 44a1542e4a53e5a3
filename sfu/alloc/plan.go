package alloc

import (
	"slices"
	"time"
)

// Video is one video a subscriber receives, as it stands when the allocator runs.
type Video struct {
	Key      any  // identifies the video from one round to the next (its DownTrack)
	Screen   bool // a screen share: first, and at least the middle layer so that text stays readable
	Speaker  bool // its publisher is the loudest speaker now: next
	Active   [MaxLayers]bool
	Live     [MaxLayers]bool // received, not paused at the publisher, under the publisher's layer cap
	LayerCap int32           // layers from this index up are not forwarded
	Sizes    [MaxLayers][2]int
	Rates    [MaxLayers][3]float64 // measured bitrates by temporal layer; zero until measured
	// TileW and TileH are the size the subscriber shows it at (TileUnknown until said; 0 x 0: hidden).
	TileW, TileH int
	TileGrew     bool      // the tile got bigger since the last round
	BoundAt      time.Time // when the subscriber's connection took it
	Current      int32     // the layer forwarded (-1: none)
	Target       int32     // the layer asked for
	Temporal     int32     // the highest temporal layer forwarded
	LateDrops    uint64    // frames past the SFU's latency budget, ever (its upper temporal layers were dropped)
}

// Decision is what one video gets.
type Decision struct {
	// Desired is the layer its tile asks for, bandwidth aside (-1: none): dynacast keeps it coming.
	Desired int32
	// Keep: leave its layers as they are (nothing to choose from yet).
	Keep bool
	// Layer is the layer to forward (-1: pause); Temporal the highest temporal layer.
	Layer, Temporal int32
}

// State is what the allocator of one subscriber remembers between rounds.
type State struct {
	history      []estSample // estimates of the last upHold
	lastDrop     time.Time   // when the estimate last fell
	proven       float64     // a rate sent for upHold without the estimate falling
	provenFrom   time.Time   // since when the current rate has been sent
	sending      float64     // the rate of the last allocation
	picks        map[any]option
	lateSeen     map[any]uint64   // late drops already acted on
	lateHold     map[any]lateHold // videos held down after late drops
	nextProbe    time.Time
	probeBackoff time.Duration
	probe        any // the video probing now, or nil
	probeAt      time.Time
}

// lateHold keeps a video at or below top until a time: it missed the latency budget there.
type lateHold struct {
	top   option
	until time.Time
}

type estSample struct {
	at  time.Time
	bps float64
}

// observe records an estimate and returns the lowest of the last upHold; a fall below dropRatio of the highest
// of the last upHold is a drop, which forgets the proven rate.
func (s *State) observe(now time.Time, bps float64) float64 {
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

// AudioCost is what an audio track is counted at: its measured rate, or AudioDefaultBps before it is measured.
func AudioCost(rate float64) float64 {
	if rate > 0 {
		return rate
	}
	return AudioDefaultBps
}

// Plan chooses the layer of each video for a subscriber whose bandwidth estimate is estimate (bits per second)
// and whose audio costs audio. It returns a decision per video, in order, and the rate it plans to send.
func (s *State) Plan(now time.Time, estimate, audio float64, videos []Video) ([]Decision, float64) {
	held := s.observe(now, estimate)
	out := make([]Decision, len(videos))
	var ds []demand
	var planned []int // index in videos of each demand
	for i := range videos {
		v := &videos[i]
		w, h := v.TileW, v.TileH
		// Layers the publisher was told to pause are not chosen: nothing would come. They count as desired, so
		// dynacast turns them back on and a later round moves up to them.
		top, liveTop := ChooseLayer(v.Active, v.Sizes, w, h), ChooseLayer(v.Live, v.Sizes, w, h)
		if top >= 0 && v.Screen { // text must stay readable: at least the middle layer
			top = max(top, min(ChooseLayer(v.Active, v.Sizes, TileUnknown, TileUnknown), 1))
			liveTop = max(liveTop, min(ChooseLayer(v.Live, v.Sizes, TileUnknown, TileUnknown), 1))
		}
		if c := v.LayerCap - 1; top > c { // over the publisher's bitrate limit: not even desired
			top = c
		}
		if w == TileUnknown && now.Sub(v.BoundAt) < TileGrace {
			top = liveTop // it will say its tile size soon: do not wake paused layers for it yet
		}
		out[i].Desired = top
		if liveTop < 0 || top < 0 {
			out[i].Layer = -1
			continue
		}
		opts, costs := videoOptions(v.Rates, liveTop, v.Live)
		if len(opts) == 0 {
			out[i].Keep = true
			continue
		}
		dm := demand{priority: 2, area: max(w, 0) * max(h, 0), options: opts, costs: costs,
			current: option{v.Current, v.Temporal}, boost: v.TileGrew}
		if v.Target != v.Current { // a switch is pending: count what was asked for
			dm.current.layer = v.Target
		}
		if dm.current.temporal > 2 {
			dm.current.temporal = 2
		}
		if seen := s.lateSeen[v.Key]; v.LateDrops != seen {
			// Packets missed the SFU's latency budget: step this video down, count it as a drop, and hold it
			// there for upHold (the CPU was short, which the bandwidth estimate does not show).
			if s.lateSeen == nil {
				s.lateSeen, s.lateHold = map[any]uint64{}, map[any]lateHold{}
			}
			s.lateSeen[v.Key] = v.LateDrops
			s.lastDrop, s.proven = now, 0
			// One step below what the allocator chose last (the DownTrack has turned its upper temporal layers
			// off already, which is not a choice to step down from).
			from := dm.current
			if prev, ok := s.picks[v.Key]; ok {
				from = prev
			}
			if k := slices.Index(dm.options, from); k >= 0 && k+1 < len(dm.options) {
				dm.options, dm.costs = dm.options[k+1:], dm.costs[k+1:]
			}
			s.lateHold[v.Key] = lateHold{top: dm.options[0], until: now.Add(upHold)}
		} else if h, ok := s.lateHold[v.Key]; ok && now.Before(h.until) {
			if k := slices.IndexFunc(dm.options, func(o option) bool { return !o.above(h.top) }); k > 0 {
				dm.options, dm.costs = dm.options[k:], dm.costs[k:]
			}
		}
		switch {
		case v.Screen:
			dm.priority = 0
		case v.Speaker:
			dm.priority = 1
		}
		ds = append(ds, dm)
		planned = append(planned, i)
	}

	// The rate sent since the last change has held for upHold without a drop: it is proven.
	if now.Sub(s.provenFrom) >= upHold && s.lastDrop.Before(s.provenFrom) {
		// With headroom: measured layer rates wander (keyframes), and what was sent must keep fitting.
		s.proven = max(s.proven, s.sending*provenHeadroom)
	}
	hold := -1
	if s.probe != nil {
		switch {
		case s.lastDrop.After(s.probeAt): // the estimate fell: back off
			s.probe = nil
			s.probeBackoff = min(max(s.probeBackoff*2, minProbeBackoff), maxProbeBackoff)
			s.nextProbe = now.Add(s.probeBackoff)
		case now.Sub(s.probeAt) > upHold: // it held
			s.probe = nil
			s.probeBackoff = minProbeBackoff
		default:
			hold = slices.IndexFunc(planned, func(i int) bool { return videos[i].Key == s.probe })
		}
	}
	canProbe := s.probe == nil && !now.Before(s.nextProbe) && now.Sub(s.lastDrop) > upHold
	budgetDown, budgetUp := max(estimate, s.proven)-audio, max(held, s.proven)-audio
	picks, probed := allocate(ds, budgetDown, budgetUp, canProbe, hold)
	if probed >= 0 {
		s.probe, s.probeAt = videos[planned[probed]].Key, now
		s.nextProbe = now.Add(max(s.probeBackoff, minProbeBackoff))
	}
	sending, changed := audio, len(planned) != len(s.picks)
	next := make(map[any]option, len(planned))
	for k, i := range planned {
		o := ds[k].options[picks[k]]
		sending += ds[k].costs[picks[k]]
		next[videos[i].Key] = o
		if prev, ok := s.picks[videos[i].Key]; !ok || prev != o {
			changed = true
		}
		out[i].Layer, out[i].Temporal = o.layer, o.temporal
	}
	if changed {
		s.provenFrom = now
	}
	// Forget the late drops of videos no longer received; a hidden one keeps its count for when it is shown.
	received := make(map[any]bool, len(videos))
	for i := range videos {
		received[videos[i].Key] = true
	}
	for key := range s.lateSeen {
		if !received[key] {
			delete(s.lateSeen, key)
		}
	}
	for key, h := range s.lateHold {
		if !received[key] || !now.Before(h.until) {
			delete(s.lateHold, key)
		}
	}
	s.sending, s.picks = sending, next
	return out, sending
}
