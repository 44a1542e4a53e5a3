package sfu

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"
)

// allocInterval is how often a subscriber's layers are chosen again without a trigger.
const allocInterval = 250 * time.Millisecond

// tileUnknown marks a track whose tile size the subscriber has not said: it gets the largest layer.
const tileUnknown = -1

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

// allocate chooses the layer of each video this participant receives.
func (p *Participant) allocate() {
	p.mu.Lock()
	downs := make([]*DownTrack, 0, len(p.downs))
	for _, s := range p.downs {
		downs = append(downs, s.down)
	}
	p.mu.Unlock()
	for _, d := range downs {
		r := d.receiver
		if r.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		var sizes [maxLayers][2]int
		for l := 0; l < maxLayers; l++ {
			sizes[l][0], sizes[l][1] = r.LayerSize(l)
		}
		d.SetTargetLayer(chooseLayer(r.ActiveLayers(), sizes, int(d.tileW.Load()), int(d.tileH.Load())))
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
		p.allocate()
	}
}

// pokeAllocator asks for the layers to be chosen again soon.
func (p *Participant) pokeAllocator() {
	select {
	case p.allocPoke <- struct{}{}:
	default:
	}
}
