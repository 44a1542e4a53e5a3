package loadtest

import (
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func testSpeakers(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("speaker-%03d", i)
	}
	return ids
}

// TestScheduleTurns: turns follow one another without gaps, every speaker gets a turn in each round in the same
// order, interjections come from someone else inside the turn about one turn in four, and a seed gives one
// schedule.
func TestScheduleTurns(t *testing.T) {
	const n = 6
	length := 600 * time.Second
	s := newSchedule(testSpeakers(n), length, speechSeed)
	if want := int(length / turnLen); len(s.turns) != want {
		t.Fatalf("%d turns over %v, want %d", len(s.turns), length, want)
	}
	interjections := 0
	for k, tr := range s.turns {
		if tr.start != time.Duration(k)*turnLen || tr.end != tr.start+turnLen {
			t.Fatalf("turn %d is %v-%v, want %v long from %v", k, tr.start, tr.end, turnLen, time.Duration(k)*turnLen)
		}
		if k >= n && tr.speaker != s.turns[k-n].speaker {
			t.Errorf("turn %d: speaker %d, but %d in the previous round", k, tr.speaker, s.turns[k-n].speaker)
		}
		if tr.interjector < 0 {
			continue
		}
		interjections++
		ij := tr.interjected
		if tr.interjector == tr.speaker || tr.interjector >= n || ij.start < tr.start+interjectMargin ||
			ij.end > tr.end-interjectMargin || ij.end-ij.start < interjectMin || ij.end-ij.start > interjectMax {
			t.Errorf("turn %d (%d, %v-%v): interjection by %d at %v-%v", k, tr.speaker, tr.start, tr.end, tr.interjector, ij.start, ij.end)
		}
	}
	seen := map[int]bool{}
	for _, tr := range s.turns[:n] {
		seen[tr.speaker] = true
	}
	if len(seen) != n {
		t.Errorf("the first %d turns have %d speakers, want every one", n, len(seen))
	}
	if frac := float64(interjections) / float64(len(s.turns)); frac < 0.15 || frac > 0.35 {
		t.Errorf("%d interjections in %d turns: want about one in %d", interjections, len(s.turns), interjectEvery)
	}
	if again := newSchedule(testSpeakers(n), length, speechSeed); !reflect.DeepEqual(s, again) {
		t.Error("two schedules from one seed differ")
	}
	if other := newSchedule(testSpeakers(n), length, speechSeed+1); reflect.DeepEqual(s.turns, other.turns) {
		t.Error("two seeds give the same turns")
	}
}

// TestScheduleWordsAndPauses: inside every talk, words and pauses alternate, cover it exactly, and have the
// lengths and levels of speech; outside, the microphone hears only the room.
func TestScheduleWordsAndPauses(t *testing.T) {
	s := newSchedule(testSpeakers(5), 200*time.Second, speechSeed)
	for i, tk := range s.talkers {
		if len(tk.talks) == 0 {
			t.Fatalf("speaker %d never speaks", i)
		}
		j := 0
		for _, talk := range tk.talks {
			at := talk.start
			for first := true; at < talk.end; first = false {
				if j >= len(tk.segs) {
					t.Fatalf("speaker %d: talk %v-%v not covered", i, talk.start, talk.end)
				}
				seg := tk.segs[j]
				j++
				d, last := seg.end-seg.start, seg.end == talk.end
				switch {
				case seg.start != at:
					t.Fatalf("speaker %d: segment at %v, want %v", i, seg.start, at)
				case first && !seg.voiced:
					t.Errorf("speaker %d: talk at %v starts with a pause", i, talk.start)
				case seg.voiced && (seg.level < wordLevelMin || seg.level > wordLevelMax || d > wordMax || d < wordMin && !last):
					t.Errorf("speaker %d: word %v-%v at -%d dBov", i, seg.start, seg.end, seg.level)
				case !seg.voiced && (seg.level < pauseLevelMin || seg.level > pauseLevelMax || d > pauseMax || d < pauseMin && !last):
					t.Errorf("speaker %d: pause %v-%v at -%d dBov", i, seg.start, seg.end, seg.level)
				case seg.voiced && !last && (j >= len(tk.segs) || tk.segs[j].voiced):
					t.Errorf("speaker %d: the word at %v is not followed by a pause", i, seg.start)
				}
				if got, ok := s.segmentAt(i, seg.start+d/2); !ok || got != seg {
					t.Errorf("speaker %d: segmentAt(%v) = %+v, %v; want %+v", i, seg.start+d/2, got, ok, seg)
				}
				at = seg.end
			}
			if at != talk.end {
				t.Errorf("speaker %d: talk %v-%v covered up to %v", i, talk.start, talk.end, at)
			}
		}
		if j != len(tk.segs) {
			t.Errorf("speaker %d: %d segments outside its talks", i, len(tk.segs)-j)
		}
	}
	if _, ok := s.segmentAt(0, 10*time.Hour); ok {
		t.Error("speech after the end of the schedule")
	}
}

func firstTurn(t *testing.T, s *schedule, speaker int) turn {
	t.Helper()
	for _, tr := range s.turns {
		if tr.speaker == speaker {
			return tr
		}
	}
	t.Fatalf("speaker %d has no turn", speaker)
	return turn{}
}

// TestScheduleSpeakingLong: who must be heard, at the boundaries of MinTalk and of the talk.
func TestScheduleSpeakingLong(t *testing.T) {
	s := newSchedule(testSpeakers(4), 100*time.Second, speechSeed)
	const ns = time.Nanosecond
	for i, id := range s.speakers {
		tr := firstTurn(t, s, i)
		sp, ok := s.talkAt(id, tr.start)
		if !ok || sp != tr.span {
			t.Fatalf("%s: talk at %v is %+v, %v; want its turn %v-%v", id, tr.start, sp, ok, tr.start, tr.end)
		}
		for _, c := range []struct {
			at   time.Duration
			want bool
		}{
			{tr.start - ns, false}, {tr.start, false}, {tr.start + MinTalk, false}, {tr.start + MinTalk + ns, true},
			{tr.end - ns, true}, {tr.end, false},
		} {
			if got := s.speakingLong(id, c.at); got != c.want {
				t.Errorf("%s speaking %v-%v: speakingLong at %v = %v, want %v", id, tr.start, tr.end, c.at, got, c.want)
			}
		}
		for _, c := range []struct {
			from time.Duration
			want bool
		}{
			{tr.start, false}, {tr.start + MinTalk, false}, {tr.start + MinTalk + ns, true},
			{tr.end - time.Second, true}, {tr.end - time.Second + ns, false}, {tr.end, false},
		} {
			if got := s.mustHear(id, c.from, c.from+time.Second); got != c.want {
				t.Errorf("%s speaking %v-%v: mustHear over %v+1s = %v, want %v", id, tr.start, tr.end, c.from, got, c.want)
			}
		}
	}
	if s.mustHear("listener-0001", 10*time.Second, 11*time.Second) || s.speaker("listener-0001") {
		t.Error("someone not in the schedule must be heard")
	}
	var none *schedule
	if none.mustHear("speaker-000", 10*time.Second, 11*time.Second) || none.speaker("speaker-000") {
		t.Error("no schedule, yet someone must be heard")
	}
	// A lone speaker's turns are one long talk.
	one := newSchedule(testSpeakers(1), 20*time.Second, speechSeed)
	if !one.mustHear("speaker-000", 10*time.Second, 11*time.Second) || len(one.talkers[0].talks) != 1 {
		t.Errorf("a lone speaker: talks %v", one.talkers[0].talks)
	}
}

// TestMicLevels: an open microphone's packets carry the schedule's level, voiced in words, and the room's
// noise outside its talks, with the synthetic Opus payload.
func TestMicLevels(t *testing.T) {
	s := newSchedule(testSpeakers(3), 60*time.Second, speechSeed)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic-x", "x")
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	o := &openMics{sched: s, sent: &sent}
	m := &mic{speaker: 1, track: track, extID: 3, rng: newNoiseRand(1)}
	level := func(at time.Duration) rtp.AudioLevelExtension {
		t.Helper()
		if err := m.send(o, at); err != nil {
			t.Fatal(err)
		}
		var ext rtp.AudioLevelExtension
		if err := ext.Unmarshal(m.pkt.GetExtension(3)); err != nil {
			t.Fatal(err)
		}
		if len(m.pkt.Payload) != opusBytes {
			t.Fatalf("payload of %d bytes, want %d", len(m.pkt.Payload), opusBytes)
		}
		return ext
	}
	words, pauses, noise := 0, 0, 0
	for at := time.Duration(0); at < 60*time.Second; at += micPeriod {
		got := level(at)
		seg, ok := s.segmentAt(1, at)
		switch {
		case !ok:
			noise++
			if got.Voice || got.Level < noiseLevelMin || got.Level > noiseLevelMax {
				t.Fatalf("at %v, outside the talks: %+v", at, got)
			}
		case got.Level != seg.level || got.Voice != seg.voiced:
			t.Fatalf("at %v, in %+v: %+v", at, seg, got)
		case seg.voiced:
			words++
		default:
			pauses++
		}
	}
	if words == 0 || pauses == 0 || noise == 0 {
		t.Errorf("%d word, %d pause and %d noise packets: want some of each", words, pauses, noise)
	}
	if sent.Load() != int64(opusBytes*(words+pauses+noise)) {
		t.Errorf("sent %d bytes for %d packets", sent.Load(), words+pauses+noise)
	}
}
