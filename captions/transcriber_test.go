package captions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
)

// flaky is a recognizer whose first Open fails, as a server that is down would; later utterances report how
// many samples they were given.
type flaky struct {
	mu    sync.Mutex
	opens int
}

func (f *flaky) Open(context.Context, string) (Utterance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	if f.opens == 1 {
		return nil, fmt.Errorf("dial: connection refused: %w", ErrUnavailable)
	}
	return &counting{}, nil
}

type counting struct{ samples int }

func (c *counting) Write(pcm []int16) (string, error) {
	c.samples += len(pcm)
	return fmt.Sprintf("partial %d", c.samples/SampleRate), nil
}
func (c *counting) Finish() (string, error) {
	return fmt.Sprintf("heard %.1f s", float64(c.samples)/SampleRate), nil
}
func (c *counting) Close() error { return nil }

// feed sends pcm (48 kHz) as 20 ms frames stamped from t0 on, as fast as the channel takes them.
func feed(frames chan<- audio.Frame, pcm []int16, t0 time.Time) {
	for i := 0; i+960 <= len(pcm); i += 960 {
		frames <- audio.Frame{PCM: pcm[i : i+960], RTPTime: uint32(i), Arrival: t0.Add(time.Duration(i) * time.Second / audio.SampleRate)}
	}
	close(frames)
}

// TestServiceRecoversFromEngineFailure: the engine fails on the first utterance: captions are reported
// unavailable once, retried after the backoff, reported available again when an utterance works, and finals
// are emitted with their timing.
func TestServiceRecoversFromEngineFailure(t *testing.T) {
	speech := audiotest.Speech(t, "hello world the meeting starts now")
	var pcm []int16
	for range 3 {
		pcm = append(pcm, make([]int16, audio.SampleRate)...)
		pcm = append(pcm, speech...)
	}
	pcm = append(pcm, make([]int16, audio.SampleRate)...)

	var mu sync.Mutex
	var finals, partials []Caption
	var statuses []string
	frames := make(chan audio.Frame)
	t0 := time.Now()
	s := &Service{Recognizer: &flaky{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(context.Background(), Job{ParticipantID: "PA_1", TrackID: "mic", Lang: "en", Frames: frames, Origin: t0,
			Emit: func(c Caption) {
				mu.Lock()
				defer mu.Unlock()
				if c.Final {
					finals = append(finals, c)
				} else {
					partials = append(partials, c)
				}
			},
			Status: func(ok bool, reason string) {
				mu.Lock()
				defer mu.Unlock()
				statuses = append(statuses, fmt.Sprintf("%v %s", ok, reason))
			}})
	}()
	feed(frames, pcm, t0)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the frames ended")
	}
	speechLen := time.Duration(len(speech)) * time.Second / audio.SampleRate
	active := 0 // espeak-ng ends its file with some silence
	for i, v := range speech {
		if v > 300 || v < -300 {
			active = i
		}
	}
	activeLen := time.Duration(active) * time.Second / audio.SampleRate
	t.Logf("statuses %q; finals %+v; %d partials", statuses, finals, len(partials))
	if len(statuses) != 2 || !strings.HasPrefix(statuses[0], "false") || !strings.Contains(statuses[0], "connection refused") || statuses[1] != "true " {
		t.Fatalf("statuses %q, want unavailable then available", statuses)
	}
	// The first utterance fails at its start (1 s); the retry 1 s later catches the rest of it.
	if len(finals) != 3 {
		t.Fatalf("%d finals, want 3", len(finals))
	}
	if s := finals[0].Start; s < 1700*time.Millisecond-prerollDuration || s > 2*time.Second {
		t.Errorf("the first final starts at %v, want the retry 1 s after the failure", s)
	}
	for i, c := range finals[1:] {
		wantStart := time.Duration(i+2)*time.Second + time.Duration(i+1)*speechLen
		if d := c.Start - wantStart; d < -400*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("final %d starts at %v, the speech at %v", i, c.Start, wantStart)
		}
		if d := c.End - (wantStart + activeLen); d < -300*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("final %d ends at %v, the speech at %v", i, c.End, wantStart+activeLen)
		}
		if c.ParticipantID != "PA_1" || c.TrackID != "mic" || c.Lang != "en" {
			t.Errorf("final %d: %+v", i, c)
		}
	}
	if len(partials) == 0 {
		t.Error("no partial captions")
	}
}

// upper translates English into an upper-case language, xx.
type upper struct{}

func (upper) Supports(from, to string) bool { return from == "en" && to == "xx" }
func (upper) Translate(_ context.Context, text, _, _ string) (string, error) {
	return strings.ToUpper(text), nil
}

type broken struct{}

func (broken) Supports(string, string) bool { return true }
func (broken) Translate(context.Context, string, string, string) (string, error) {
	return "", errors.New("down")
}

// TestTranslationsOfFinals: a final caption carries a translation into each language someone reads that a
// translator supports, from the first translator that works; the spoken language itself is not translated.
func TestTranslationsOfFinals(t *testing.T) {
	r := &run{s: &Service{Translators: []Translator{broken{}, upper{}}}, ctx: context.Background(),
		job: Job{Lang: "en", Targets: func() []string { return []string{"en-US", "xx", "ja"} }}}
	r.s.defaults()
	got := r.translate("hello")
	if len(got) != 1 || got["xx"] != "HELLO" {
		t.Fatalf("translations %v", got)
	}
}

// TestVAD: speech is voiced, digital silence and steady noise are not.
func TestVAD(t *testing.T) {
	v := NewVAD()
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]int16, 320)
	for range 100 { // 2 s of noise at about -40 dBFS
		for i := range noise {
			noise[i] = int16(rng.NormFloat64() * 330)
		}
		v.Voiced(noise)
	}
	if v.Voiced(noise) {
		t.Error("steady noise counted as speech")
	}
	loud := make([]int16, 320)
	for i := range loud {
		loud[i] = int16(8000 * rng.NormFloat64())
	}
	if !v.Voiced(loud) {
		t.Error("a loud frame over the noise is not speech")
	}
	if v.Voiced(make([]int16, 320)) {
		t.Error("silence counted as speech")
	}
}

// TestWebVTT writes cues with speakers, translations and escaping.
func TestWebVTT(t *testing.T) {
	var b strings.Builder
	cues := []Caption{
		{ParticipantID: "PA_1", Text: "a <b> & c", Start: 1500 * time.Millisecond, End: 3200 * time.Millisecond},
		{ParticipantID: "PA_2", Text: "会议现在开始", Start: time.Hour + 2*time.Second, End: time.Hour + 2*time.Second, Translations: map[string]string{"zh-Hant": "會議現在開始"}},
	}
	if err := WriteWebVTT(&b, cues, "zh-Hant", func(id string) string { return map[string]string{"PA_1": "Ann"}[id] }); err != nil {
		t.Fatal(err)
	}
	want := "WEBVTT\n\n1\n00:00:01.500 --> 00:00:03.200\n<v Ann>a &lt;b&gt; &amp; c\n\n2\n01:00:02.000 --> 01:00:03.000\n<v PA_2>會議現在開始\n\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestSameLanguageAndWER(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{{"en", "en-US", true}, {"zh", "zh-Hans", true}, {"zh", "zh-Hant", false}, {"yue", "zh-HK", true}, {"es", "en", false}} {
		if SameLanguage(c.a, c.b) != c.same {
			t.Errorf("SameLanguage(%s, %s) != %v", c.a, c.b, c.same)
		}
	}
	if w := WordErrorRate("hello world the meeting", "hello word the meeting starts"); w != 0.5 {
		t.Errorf("WER %v, want 0.5 (one substitution, one insertion over four words)", w)
	}
}

// TestDroppedFramesDropTheUtterance: when the pipeline's tap drops frames in the middle of an utterance (the
// recognizer fell behind), that utterance gets no final caption, rather than one made of the words either side of
// the hole; the captions resume with the next utterance, whole.
func TestDroppedFramesDropTheUtterance(t *testing.T) {
	speech := audiotest.Speech(t, "hello world the meeting starts now")
	silence := make([]int16, audio.SampleRate)
	var pcm []int16
	var second int // where the second utterance starts
	for i := range 3 {
		pcm = append(pcm, silence...)
		if i == 1 {
			second = len(pcm)
		}
		pcm = append(pcm, speech...)
	}
	pcm = append(pcm, silence...)
	holeFrom, holeTo := second+len(speech)/3, second+len(speech)/3+audio.SampleRate/2 // half a second dropped

	var mu sync.Mutex
	var finals []Caption
	var dropped atomic.Uint64
	frames := make(chan audio.Frame)
	t0 := time.Now()
	s := &Service{Recognizer: &flaky{opens: 1}} // opened once already: every utterance works
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(context.Background(), Job{ParticipantID: "PA_1", TrackID: "mic", Lang: "en", Frames: frames, Origin: t0,
			Dropped: dropped.Load,
			Emit: func(c Caption) {
				mu.Lock()
				defer mu.Unlock()
				if c.Final {
					finals = append(finals, c)
				}
			}})
	}()
	for i := 0; i+960 <= len(pcm); i += 960 {
		if i >= holeFrom && i < holeTo {
			dropped.Add(1) // the tap's channel was full: this frame never reaches the service
			continue
		}
		frames <- audio.Frame{PCM: pcm[i : i+960], RTPTime: uint32(i), Arrival: t0.Add(time.Duration(i) * time.Second / audio.SampleRate)}
	}
	close(frames)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the frames ended")
	}
	mu.Lock()
	defer mu.Unlock()
	var texts []string
	for _, c := range finals {
		texts = append(texts, c.Text)
	}
	t.Logf("finals %q", texts)
	if len(finals) != 2 {
		t.Fatalf("%d finals %q; want 2: the first and the third utterance, none for the one with a hole", len(finals), texts)
	}
	var first, third float64
	if _, err := fmt.Sscanf(finals[0].Text, "heard %f s", &first); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(finals[1].Text, "heard %f s", &third); err != nil {
		t.Fatal(err)
	}
	if third < first-0.2 {
		t.Errorf("finals %q: the third utterance should be heard as whole as the first", texts)
	}
	if third := time.Duration(second+len(speech)+len(silence)) * time.Second / audio.SampleRate; finals[1].Start < third-time.Second {
		t.Errorf("the second final starts at %v; the third utterance starts at %v", finals[1].Start, third)
	}
}
