package sfu

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/alloc"
	"github.com/edge-sfu/sfu/sfu/forward"
)

// The room ticker: every alloc.AudioInterval it chooses which microphones each room forwards (audio.go); every
// speakerInterval it reads each room's audio levels (RFC 6464, which publishers put in their packets), smooths
// them, lists the speakers loudest first and tells the room when that list changes; every second it enforces the
// publish bitrate limit.
const (
	speakerInterval = 300 * time.Millisecond
	minVoiced       = 0.3  // share of a window's packets that must be speech
	minSpeaking     = 0.15 // smoothed loudness above which a participant is speaking
	maxSpeakers     = 3
	bitrateInterval = time.Second
	// bitrateCapHold is how long a publisher over its bitrate limit keeps its highest layers unforwarded before
	// the cap is looked at again.
	bitrateCapHold = 30 * time.Second
)

// tickRooms runs the room ticker until ctx ends.
func (s *SFU) tickRooms(ctx context.Context) {
	t := time.NewTicker(alloc.AudioInterval)
	defer t.Stop()
	var lastBitrateCheck, lastSpeakers, lastIdleCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		rooms := s.openRooms()
		for _, rm := range rooms {
			rm.selectAudio(now)
		}
		if now.Sub(lastSpeakers) >= speakerInterval-alloc.AudioInterval/2 {
			lastSpeakers = now
			for _, rm := range rooms {
				rm.updateSpeakers()
			}
		}
		if now.Sub(lastIdleCheck) >= time.Second {
			lastIdleCheck = now
			s.closeIdleRooms(rooms)
		}
		if s.maxPublishBitrate > 0 && now.Sub(lastBitrateCheck) >= bitrateInterval {
			lastBitrateCheck = now
			for _, rm := range rooms {
				for _, p := range rm.snapshot() {
					p.checkBitrate(s.maxPublishBitrate, now)
				}
			}
		}
	}
}

// levelReader reads tracks' audio levels since its previous reading of each.
type levelReader map[*Track]forward.Levels

// read is t's mean loudness and voiced share since the last read (zero the first time).
func (lr levelReader) read(t *Track) (level, voiced float64) {
	now := t.r.Levels()
	prev, ok := lr[t]
	lr[t] = now
	if !ok {
		return 0, 0
	}
	return now.Since(prev)
}

// keep forgets the tracks not in live.
func (lr levelReader) keep(live map[*Track]bool) {
	for t := range lr {
		if !live[t] {
			delete(lr, t)
		}
	}
}

// updateSpeakers reads the levels since the last update and tells the room if its speakers changed.
func (rm *Room) updateSpeakers() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.smoothed == nil {
		rm.smoothed = map[string]float64{}
		rm.speakerLevels = levelReader{}
	}
	var list []Speaker
	live := map[*Track]bool{}
	scores := map[string]float64{} // by the id shown as the tracks' publisher: a relay's tracks are others'
	for id, p := range rm.participants {
		if !p.relay {
			scores[id] = max(scores[id], 0) // listed, so that its smoothed loudness decays
		}
		for _, t := range p.Tracks() {
			if !t.r.HasAudioLevel() || t.Source() != SourceMicrophone {
				continue
			}
			live[t] = true
			level, voiced := rm.speakerLevels.read(t)
			sid := t.shownID()
			score := scores[sid]
			if voiced >= minVoiced && !t.r.Muted() {
				score = max(score, level)
			}
			scores[sid] = score
		}
	}
	for id, score := range scores {
		sm := 0.5*rm.smoothed[id] + 0.5*score
		if sm < 0.01 {
			delete(rm.smoothed, id)
			continue
		}
		rm.smoothed[id] = sm
		if sm >= minSpeaking {
			list = append(list, Speaker{ParticipantID: id, Level: math.Round(sm*100) / 100})
		}
	}
	rm.speakerLevels.keep(live)
	for id := range rm.smoothed {
		if _, ok := scores[id]; !ok {
			delete(rm.smoothed, id)
		}
	}
	slices.SortFunc(list, func(a, b Speaker) int { return cmp.Compare(b.Level, a.Level) })
	if len(list) > maxSpeakers {
		list = list[:maxSpeakers]
	}
	if slices.EqualFunc(list, rm.speakers, func(x, y Speaker) bool { return x.ParticipantID == y.ParticipantID }) {
		return
	}
	rm.speakers = list
	rm.broadcastLocked(nil, Event{Kind: EventActiveSpeakers, Speakers: list})
}

// loudest is the participant speaking loudest now, or "".
func (rm *Room) loudest() string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.speakers) == 0 {
		return ""
	}
	return rm.speakers[0].ParticipantID
}

// publishRate is what a participant sends now, in bits per second over all its tracks and layers.
func publishRate(tracks []*Track) float64 {
	total := 0.0
	for _, t := range tracks {
		rates := t.r.LayerRates()
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
	tracks := p.Tracks()
	rate := publishRate(tracks)
	p.mu.Lock()
	capped := p.bitrateCappedAt
	p.mu.Unlock()
	if rate <= limit {
		if !capped.IsZero() && now.Sub(capped) > bitrateCapHold && rate < 0.7*limit {
			for _, t := range tracks {
				t.r.SetLayerCap(forward.MaxLayers)
			}
			p.mu.Lock()
			p.bitrateCappedAt = time.Time{}
			p.mu.Unlock()
		}
		return
	}
	// Cut the highest live layer of the video that sends most.
	var worst *Track
	worstRate := 0.0
	for _, t := range tracks {
		if sum := publishRate([]*Track{t}); sum > worstRate {
			if live := t.r.LiveLayers(); live[1] || live[2] {
				worst, worstRate = t, sum
			}
		}
	}
	if worst == nil {
		return // nothing left to cut: audio only, or one layer each
	}
	live := worst.r.LiveLayers()
	top := int32(0)
	for l := range live {
		if live[l] {
			top = int32(l)
		}
	}
	worst.r.SetLayerCap(top)
	p.mu.Lock()
	p.bitrateCappedAt = now
	p.mu.Unlock()
	p.log.Info("limit", zap.String("limit", "publish bitrate"), zap.Float64("bps", rate), zap.Float64("limit_bps", limit),
		zap.String("track", worst.ID()))
	p.peer.SendEvent(Event{Kind: EventLimit, Error: fmt.Sprintf("publishing %.1f Mbit/s; the limit is %.1f Mbit/s: layer %d of track %s is not forwarded",
		rate/1e6, limit/1e6, top, worst.ID())})
	for _, q := range p.room.snapshot() {
		q.pokeControl()
	}
}
