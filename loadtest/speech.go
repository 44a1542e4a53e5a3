package loadtest

import (
	"math/rand/v2"
	"sort"
	"time"
)

// The all-hands scenario's open microphones take turns to speak. A turn is words and short pauses; now and then a
// second participant interjects over the current one. The schedule is drawn from a fixed seed, so every run with
// the same speakers and length speaks alike.
const (
	turnLen         = 4 * time.Second
	interjectEvery  = 4 // about one turn in this many has an interjection
	interjectMin    = 800 * time.Millisecond
	interjectMax    = 1200 * time.Millisecond
	interjectMargin = 500 * time.Millisecond // an interjection starts and ends this far inside the turn
	wordMin         = 150 * time.Millisecond
	wordMax         = 450 * time.Millisecond
	pauseMin        = 80 * time.Millisecond
	pauseMax        = 300 * time.Millisecond
	// MinTalk is how long a participant must have been speaking before its listeners must hear it: a second
	// counts against stability when the audio of someone who had been speaking for longer than this at its start
	// and still was at its end brought no packets. The server may take a moment to select a new speaker.
	MinTalk = 1500 * time.Millisecond

	speechSeed = 0x5eed_a11 // the schedule's PRNG seed: runs are comparable
)

// Audio levels, in -dBov as RFC 6464 carries them (0 is the loudest, 127 silence).
const (
	wordLevelMin, wordLevelMax   = 15, 35  // voiced
	pauseLevelMin, pauseLevelMax = 75, 90  // between words
	noiseLevelMin, noiseLevelMax = 85, 100 // an open microphone in a quiet room
)

// span is a stretch of the run, from its start: [start, end).
type span struct{ start, end time.Duration }

func (s span) contains(t time.Duration) bool { return s.start <= t && t < s.end }

// segment is a word (voiced) or a pause of someone's speech.
type segment struct {
	span
	level  uint8 // -dBov
	voiced bool
}

// turn is one speaker's turn, with its interjection if any (interjector -1 for none).
type turn struct {
	span
	speaker     int
	interjector int
	interjected span
}

// talker is one speaker's part of the schedule.
type talker struct {
	talks []span    // turns and interjections, sorted, disjoint, adjacent ones merged
	segs  []segment // the words and pauses inside the talks, sorted and disjoint
}

// schedule says who speaks when. It is not changed after newSchedule, so it is read without locks.
type schedule struct {
	speakers []string       // identities
	index    map[string]int // identity to speaker
	turns    []turn
	talkers  []talker
}

// newSchedule draws turns of speech for the speakers, in a random but fixed order that every turn of a round
// follows, over length.
func newSchedule(speakers []string, length time.Duration, seed uint64) *schedule {
	s := &schedule{speakers: speakers, index: make(map[string]int, len(speakers)), talkers: make([]talker, len(speakers))}
	for i, id := range speakers {
		s.index[id] = i
	}
	n := len(speakers)
	if n == 0 || length <= 0 {
		return s
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	order := rng.Perm(n)
	turns := int((length + turnLen - 1) / turnLen)
	for k := range turns {
		at := time.Duration(k) * turnLen
		t := turn{span: span{at, at + turnLen}, speaker: order[k%n], interjector: -1}
		s.talk(t.speaker, t.span, rng)
		if n > 1 && rng.IntN(interjectEvery) == 0 {
			t.interjector = (t.speaker + 1 + rng.IntN(n-1)) % n
			d := between(rng, interjectMin, interjectMax)
			start := at + interjectMargin + between(rng, 0, turnLen-2*interjectMargin-d)
			t.interjected = span{start, start + d}
			s.talk(t.interjector, t.interjected, rng)
		}
		s.turns = append(s.turns, t)
	}
	return s
}

// between draws a duration in [lo, hi].
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo+1)))
}

// talk gives speaker i the talk sp: words, each followed by a pause, until its end.
func (s *schedule) talk(i int, sp span, rng *rand.Rand) {
	tk := &s.talkers[i]
	if n := len(tk.talks); n > 0 && tk.talks[n-1].end == sp.start {
		tk.talks[n-1].end = sp.end
	} else {
		tk.talks = append(tk.talks, sp)
	}
	for at := sp.start; at < sp.end; { // each step moves on by at least pauseMin
		end := min(at+between(rng, wordMin, wordMax), sp.end)
		tk.segs = append(tk.segs, segment{span{at, end}, uint8(wordLevelMin + rng.IntN(wordLevelMax-wordLevelMin+1)), true})
		if at = end; at >= sp.end {
			break
		}
		end = min(at+between(rng, pauseMin, pauseMax), sp.end)
		tk.segs = append(tk.segs, segment{span{at, end}, uint8(pauseLevelMin + rng.IntN(pauseLevelMax-pauseLevelMin+1)), false})
		at = end
	}
}

// segmentAt is the word or pause speaker i utters at t; false when it is not speaking (its microphone hears the
// room).
func (s *schedule) segmentAt(i int, t time.Duration) (segment, bool) {
	if i < 0 || i >= len(s.talkers) {
		return segment{}, false
	}
	segs := s.talkers[i].segs
	j := sort.Search(len(segs), func(j int) bool { return segs[j].end > t })
	if j < len(segs) && segs[j].contains(t) {
		return segs[j], true
	}
	return segment{}, false
}

// speaker reports whether identity is one of the schedule's speakers.
func (s *schedule) speaker(identity string) bool {
	if s == nil {
		return false
	}
	_, ok := s.index[identity]
	return ok
}

// talkAt is the talk (a turn or an interjection, pauses included) identity is in at t.
func (s *schedule) talkAt(identity string, t time.Duration) (span, bool) {
	if s == nil {
		return span{}, false
	}
	i, ok := s.index[identity]
	if !ok {
		return span{}, false
	}
	talks := s.talkers[i].talks
	j := sort.Search(len(talks), func(j int) bool { return talks[j].end > t })
	if j < len(talks) && talks[j].contains(t) {
		return talks[j], true
	}
	return span{}, false
}

// speakingLong reports whether identity is speaking at t and has been for more than MinTalk.
func (s *schedule) speakingLong(identity string, t time.Duration) bool {
	sp, ok := s.talkAt(identity, t)
	return ok && t-sp.start > MinTalk
}

// mustHear reports whether a listener must receive identity's audio in the second [from, to): identity had been
// speaking for more than MinTalk at from and goes on speaking until to.
func (s *schedule) mustHear(identity string, from, to time.Duration) bool {
	sp, ok := s.talkAt(identity, from)
	return ok && from-sp.start > MinTalk && to <= sp.end
}
