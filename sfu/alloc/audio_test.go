package alloc

import (
	"fmt"
	"testing"
	"time"
)

// room simulates microphones read every AudioInterval.
type room struct {
	sel    AudioSelector
	now    time.Time
	places int
	mics   []string
	level  map[string]float64 // speaking at this loudness; absent: silent
	muted  map[string]bool
}

func newRoom(places, n int) *room {
	r := &room{now: time.Unix(1000, 0), places: places, level: map[string]float64{}, muted: map[string]bool{}}
	for i := 0; i < n; i++ {
		r.mics = append(r.mics, fmt.Sprintf("m%d", i))
	}
	return r
}

// step advances one interval and returns the forwarded microphones.
func (r *room) step() map[any]bool {
	r.now = r.now.Add(AudioInterval)
	var mics []Mic
	for _, k := range r.mics {
		m := Mic{Key: k, Level: 0.1, Muted: r.muted[k]}
		if l, ok := r.level[k]; ok {
			m.Level, m.Voiced = l, 0.9
		}
		mics = append(mics, m)
	}
	return r.sel.Next(r.now, r.places, mics)
}

func (r *room) run(d time.Duration) map[any]bool {
	var out map[any]bool
	for i := time.Duration(0); i < d; i += AudioInterval {
		out = r.step()
	}
	return out
}

// TestAudioSelectionSmallRoom: with no more microphones than places, all are forwarded, always.
func TestAudioSelectionSmallRoom(t *testing.T) {
	r := newRoom(3, 3)
	for i := 0; i < 50; i++ {
		if i == 10 {
			r.level["m1"] = 0.8
		}
		if got := r.step(); len(got) != 3 {
			t.Fatalf("round %d: %d forwarded of 3 microphones with 3 places", i, len(got))
		}
	}
	r.places = 0
	r.mics = append(r.mics, "m3", "m4", "m5")
	if got := r.step(); len(got) != 6 {
		t.Fatalf("no limit: %d of 6 forwarded", len(got))
	}
}

// TestAudioSelectionTakesTurns: of 20 open microphones at most 3 are forwarded; whoever speaks is forwarded
// within an interval while a place is free, and within AudioHold of the previous speaker falling silent when not.
func TestAudioSelectionTakesTurns(t *testing.T) {
	r := newRoom(3, 20)
	for turn := 0; turn < 20; turn++ {
		speaker := fmt.Sprintf("m%d", turn)
		r.level = map[string]float64{speaker: 0.7}
		heardAt := time.Duration(-1)
		for i := time.Duration(0); i < 3*time.Second; i += AudioInterval {
			got := r.step()
			if len(got) > 3 {
				t.Fatalf("turn %d: %d microphones forwarded, want at most 3", turn, len(got))
			}
			if got[speaker] && heardAt < 0 {
				heardAt = i
			}
			if heardAt >= 0 && !got[speaker] {
				t.Fatalf("turn %d: %s cut off while speaking", turn, speaker)
			}
		}
		if heardAt < 0 || heardAt > AudioHold {
			t.Fatalf("turn %d: %s forwarded after %v of speech, want within %v", turn, speaker, heardAt, AudioHold)
		}
	}
}

// TestAudioSelectionHoldsBetweenWords: three people speaking in bursts with pauses shorter than AudioHold keep
// their places against a louder newcomer, who gets the first place that falls silent for AudioHold.
func TestAudioSelectionHoldsBetweenWords(t *testing.T) {
	r := newRoom(3, 6)
	r.level = map[string]float64{"m0": 0.5, "m1": 0.5, "m2": 0.5}
	r.run(time.Second)
	r.level["m5"] = 0.95 // louder, but every place is taken by someone mid-sentence
	for i := 0; i < 40; i++ {
		// Words of 500 ms with pauses of 500 ms.
		for _, k := range []string{"m0", "m1", "m2"} {
			if i%10 < 5 {
				r.level[k] = 0.5
			} else {
				delete(r.level, k)
			}
		}
		got := r.step()
		for _, k := range []string{"m0", "m1", "m2"} {
			if !got[k] {
				t.Fatalf("round %d: %s lost its place in a pause between words", i, k)
			}
		}
		if got["m5"] {
			t.Fatalf("round %d: the newcomer took a place from someone still speaking", i)
		}
	}
	delete(r.level, "m1") // m1 finishes; m0 and m2 go on
	r.level["m0"], r.level["m2"] = 0.5, 0.5
	got := r.run(AudioHold + 2*AudioInterval)
	if !got["m5"] || got["m1"] {
		t.Fatalf("after m1 fell silent for %v: forwarded %v, want m5 in place of m1", AudioHold, got)
	}
}

// TestAudioSelectionMuteFreesPlace: muting gives up a place at once; a microphone that leaves is forgotten.
func TestAudioSelectionMuteFreesPlace(t *testing.T) {
	r := newRoom(2, 4)
	r.level = map[string]float64{"m0": 0.5, "m1": 0.5}
	r.run(time.Second)
	r.level["m2"] = 0.5
	r.muted["m0"] = true
	delete(r.level, "m0")
	if got := r.step(); got["m0"] || !got["m2"] {
		t.Fatalf("after m0 muted: forwarded %v, want m2 in its place", got)
	}
	r.mics = r.mics[1:]
	r.step()
	if _, ok := r.sel.mics["m0"]; ok {
		t.Fatal("a microphone that left is still remembered")
	}
}

// TestAudioSelectionFillsPlaces: microphones that arrive together in a silent room take every place (the room
// forwards as many as it may), and the silent ones give a place to a speaker.
func TestAudioSelectionFillsPlaces(t *testing.T) {
	r := newRoom(3, 5)
	if got := r.step(); len(got) != 3 {
		t.Fatalf("5 silent microphones arriving together, 3 places: %d forwarded", len(got))
	}
	held := r.step()
	for i := 0; i < 20; i++ {
		if got := r.step(); len(got) != 3 || !got[firstKey(held)] {
			t.Fatalf("round %d: the silent room switched its microphones: %v then %v", i, held, got)
		}
	}
	var outside string
	for _, k := range r.mics {
		if !held[k] {
			outside = k
		}
	}
	r.level[outside] = 0.6
	if got := r.step(); !got[outside] || len(got) != 3 {
		t.Fatalf("a speaker outside the places is not forwarded at once: %v", got)
	}
}

func firstKey(m map[any]bool) any {
	for k := range m {
		return k
	}
	return nil
}
