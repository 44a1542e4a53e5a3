package sfu

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"
)

// The active speaker comes from the audio level publishers put in their packets (RFC 6464). Every
// speakerInterval each room's levels are read, smoothed, and the speakers listed loudest first; the room is
// told when that list changes.
const (
	speakerInterval = 300 * time.Millisecond
	minVoiced       = 0.3  // share of a window's packets that must be speech
	minSpeaking     = 0.15 // smoothed loudness above which a participant is speaking
	maxSpeakers     = 3
)

// speakerLoop updates every room's speakers until ctx ends.
func (s *SFU) speakerLoop(ctx context.Context) {
	t := time.NewTicker(speakerInterval)
	defer t.Stop()
	var lastBitrateCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		rooms := make([]*Room, 0, len(s.rooms))
		for _, rm := range s.rooms {
			rooms = append(rooms, rm)
		}
		s.mu.Unlock()
		for _, rm := range rooms {
			rm.updateSpeakers()
		}
		if now := time.Now(); now.Sub(lastBitrateCheck) >= time.Second {
			lastBitrateCheck = now
			s.checkBitrates(rooms, now)
		}
	}
}

// updateSpeakers reads the levels since the last update and tells the room if its speakers changed.
func (rm *Room) updateSpeakers() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.smoothed == nil {
		rm.smoothed = map[string]float64{}
	}
	var list []Speaker
	for id, p := range rm.participants {
		score := 0.0
		p.mu.Lock()
		for _, r := range p.published {
			if r.audioLevelID == 0 || r.source != SourceMicrophone {
				continue
			}
			level, voiced := r.level.take()
			if voiced >= minVoiced && !r.muted.Load() {
				score = max(score, level)
			}
		}
		p.mu.Unlock()
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
	for id := range rm.smoothed {
		if rm.participants[id] == nil {
			delete(rm.smoothed, id)
		}
	}
	slices.SortFunc(list, func(a, b Speaker) int { return cmp.Compare(b.Level, a.Level) })
	if len(list) > maxSpeakers {
		list = list[:maxSpeakers]
	}
	if sameSpeakers(list, rm.speakers) {
		return
	}
	rm.speakers = list
	rm.broadcastLocked(nil, Event{Kind: EventActiveSpeakers, Speakers: list})
}

func sameSpeakers(a, b []Speaker) bool {
	return slices.EqualFunc(a, b, func(x, y Speaker) bool { return x.ParticipantID == y.ParticipantID })
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
