package sfu

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// bitrateCapHold is how long a publisher over its bitrate limit keeps its highest layers unforwarded before
// the cap is looked at again.
const bitrateCapHold = 30 * time.Second

// publishRate is what a participant sends now, in bits per second over all its tracks and layers.
func (p *Participant) publishRate() float64 {
	p.mu.Lock()
	tracks := append([]*Receiver(nil), p.published...)
	p.mu.Unlock()
	total := 0.0
	for _, r := range tracks {
		rates := r.layerRates()
		for l := range rates {
			total += rates[l][2] // the rate of a layer with all its temporal layers
		}
	}
	return total
}

// checkBitrate enforces the node's per-publisher bitrate limit: a participant over it gets its highest
// simulcast layer (of its largest video) cut from forwarding, one layer per check, and is told; the cut holds
// for bitrateCapHold, then the layers come back if the participant is under the limit.
func (p *Participant) checkBitrate(limit float64, now time.Time) {
	if limit <= 0 {
		return
	}
	rate := p.publishRate()
	p.mu.Lock()
	capped := p.bitrateCappedAt
	tracks := append([]*Receiver(nil), p.published...)
	p.mu.Unlock()
	if rate <= limit {
		if !capped.IsZero() && now.Sub(capped) > bitrateCapHold && rate < 0.7*limit {
			for _, r := range tracks {
				r.layerCap.Store(maxLayers)
			}
			p.mu.Lock()
			p.bitrateCappedAt = time.Time{}
			p.mu.Unlock()
		}
		return
	}
	// Cut the highest live layer of the video that sends most.
	var worst *Receiver
	worstRate := 0.0
	for _, r := range tracks {
		rates := r.layerRates()
		sum := 0.0
		for l := range rates {
			sum += rates[l][2]
		}
		if live := r.liveLayers(); (live[1] || live[2]) && sum > worstRate {
			worst, worstRate = r, sum
		}
	}
	if worst == nil {
		return // nothing left to cut: audio only, or one layer each
	}
	live := worst.liveLayers()
	top := int32(0)
	for l := range live {
		if live[l] {
			top = int32(l)
		}
	}
	worst.layerCap.Store(top)
	p.mu.Lock()
	p.bitrateCappedAt = now
	p.mu.Unlock()
	p.limitLog("publish bitrate", zap.Float64("bps", rate), zap.Float64("limit", limit), zap.String("track", worst.id))
	p.peer.SendEvent(Event{Kind: EventLimit, Error: fmt.Sprintf("publishing %.1f Mbit/s; the limit is %.1f Mbit/s: layer %d of track %s is not forwarded",
		rate/1e6, limit/1e6, top, worst.id)})
	p.pokeAllocator()
	for _, q := range p.room.snapshot() {
		q.pokeAllocator()
	}
}

// checkBitrates runs checkBitrate for everyone on the node.
func (s *SFU) checkBitrates(rooms []*Room, now time.Time) {
	if s.maxPublishBitrate <= 0 {
		return
	}
	for _, rm := range rooms {
		for _, p := range rm.snapshot() {
			p.checkBitrate(s.maxPublishBitrate, now)
		}
	}
}
