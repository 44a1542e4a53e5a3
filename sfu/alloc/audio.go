package alloc

import (
	"cmp"
	"slices"
	"time"
)

// Audio selection: in a room with more open microphones than a listener needs to hear, the room forwards only
// the loudest few. Every AudioInterval the room reads each microphone's RFC 6464 levels since the last reading
// and asks an AudioSelector which to forward.
//
// A microphone is speaking in an interval when at least MinVoiced of its packets are marked as speech. A
// forwarded microphone that spoke within AudioHold keeps its place, so a speaker is not cut between words; a
// newcomer who speaks takes a free place at once, or the place of the quietest forwarded microphone that has been
// silent for AudioHold. Among newcomers the loudest (smoothed over a few intervals) go first. Places nobody
// speaking needs go to the others (most recently heard first), so the room forwards as many microphones as it
// may. With no more microphones than places, every microphone is forwarded and nothing ever switches.
const (
	AudioInterval = 100 * time.Millisecond
	AudioHold     = 1500 * time.Millisecond
	MinVoiced     = 0.3
)

// Mic is one microphone's reading over the last interval.
type Mic struct {
	Key    any     // the caller's handle for the microphone
	Level  float64 // mean loudness over the interval, 0 silent to 1 loud
	Voiced float64 // the share of its packets marked as speech
	Muted  bool    // a muted microphone takes no place
}

// AudioSelector keeps the selection between intervals. The zero value is ready; it is not safe for concurrent
// use.
type AudioSelector struct {
	mics map[any]*micState
}

type micState struct {
	loudness  float64   // smoothed loudness of the intervals in which it spoke
	lastVoice time.Time // the end of the last interval in which it spoke
	selected  bool
	seen      bool // in this round's readings
}

// Next takes every microphone's reading at now and returns the set to forward. places <= 0 forwards every one.
// Microphones missing from mics are forgotten.
func (s *AudioSelector) Next(now time.Time, places int, mics []Mic) map[any]bool {
	if s.mics == nil {
		s.mics = map[any]*micState{}
	}
	for _, st := range s.mics {
		st.seen = false
	}
	var newcomers []any
	used := 0
	for _, m := range mics {
		st := s.mics[m.Key]
		if st == nil {
			st = &micState{}
			s.mics[m.Key] = st
		}
		st.seen = true
		speaking := !m.Muted && m.Voiced >= MinVoiced
		if speaking {
			st.lastVoice = now
			st.loudness = 0.5*st.loudness + 0.5*m.Level
		} else {
			st.loudness *= 0.5
		}
		if m.Muted {
			st.selected = false
		}
		if st.selected {
			used++
		} else if speaking {
			newcomers = append(newcomers, m.Key)
		}
	}
	for k, st := range s.mics {
		if !st.seen {
			delete(s.mics, k)
		}
	}
	out := make(map[any]bool, len(mics))
	if places <= 0 || len(mics) <= places {
		for _, m := range mics {
			s.mics[m.Key].selected = true
			out[m.Key] = true
		}
		return out
	}
	// More selected than places (the limit fell, or everyone was forwarded while the room was small): keep the
	// most recent speakers.
	if used > places {
		var sel []any
		for _, m := range mics {
			if s.mics[m.Key].selected {
				sel = append(sel, m.Key)
			}
		}
		slices.SortStableFunc(sel, func(a, b any) int { return s.mics[b].lastVoice.Compare(s.mics[a].lastVoice) })
		for _, k := range sel[places:] {
			s.mics[k].selected = false
		}
		used = places
	}
	slices.SortStableFunc(newcomers, func(a, b any) int { return cmp.Compare(s.mics[b].loudness, s.mics[a].loudness) })
	for _, k := range newcomers {
		if used < places {
			s.mics[k].selected = true
			used++
			continue
		}
		// Full: take the place of the quietest forwarded microphone silent for AudioHold, if any.
		var victim any
		for _, m := range mics {
			st := s.mics[m.Key]
			if !st.selected || now.Sub(st.lastVoice) < AudioHold {
				continue
			}
			if victim == nil || st.loudness < s.mics[victim].loudness ||
				st.loudness == s.mics[victim].loudness && st.lastVoice.Before(s.mics[victim].lastVoice) {
				victim = m.Key
			}
		}
		if victim == nil {
			break // every place is held by someone still speaking: the newcomers wait
		}
		s.mics[victim].selected = false
		s.mics[k].selected = true
	}
	// Places still free go to the others, most recently heard first: a room of silent microphones forwards as
	// many as it may, and nothing switches until someone speaks.
	if used < places {
		var rest []any
		for _, m := range mics {
			if st := s.mics[m.Key]; !st.selected && !m.Muted {
				rest = append(rest, m.Key)
			}
		}
		slices.SortStableFunc(rest, func(a, b any) int { return s.mics[b].lastVoice.Compare(s.mics[a].lastVoice) })
		for _, k := range rest[:min(len(rest), places-used)] {
			s.mics[k].selected = true
		}
	}
	for _, m := range mics {
		if s.mics[m.Key].selected {
			out[m.Key] = true
		}
	}
	return out
}
