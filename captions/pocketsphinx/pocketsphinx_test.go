package pocketsphinx

import (
	"context"
	"github.com/edge-sfu/sfu/captions"
	"testing"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
)

// speech16k speaks text with espeak-ng at 16 kHz.
func speech16k(t testing.TB, text string) []int16 {
	return audio.NewResampler(audio.SampleRate, captions.SampleRate).Process(audiotest.Speech(t, text), nil)
}

func recognize(t *testing.T, r captions.Recognizer, pcm []int16) (partials []string, final string) {
	t.Helper()
	u, err := r.Open(context.Background(), "en")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for off := 0; off < len(pcm); off += 1600 {
		p, err := u.Write(pcm[off:min(len(pcm), off+1600)])
		if err != nil {
			t.Fatal(err)
		}
		if p != "" && (len(partials) == 0 || partials[len(partials)-1] != p) {
			partials = append(partials, p)
		}
	}
	final, err = u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return partials, final
}

// TestPocketSphinxRecognizesSpeech: espeak-ng's "hello world the meeting starts now" comes back with a word
// error rate of at most 40 %, with the full English language model and with a small grammar.
func TestPocketSphinxRecognizesSpeech(t *testing.T) {
	if !Available {
		t.Skip("this build has no cgo")
	}
	const sentence = "hello world the meeting starts now"
	pcm := speech16k(t, sentence)
	for _, c := range []struct {
		name    string
		grammar string
	}{
		{"language model", ""},
		{"grammar", testGrammar(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps, err := New(Config{Grammar: c.grammar, Decoders: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer ps.Close()
			partials, final := recognize(t, ps, pcm)
			wer := captions.WordErrorRate(sentence, final)
			t.Logf("%s: %q (WER %.0f %%), partials %q", c.name, final, 100*wer, partials)
			if c.grammar != "" && wer > 0.4 {
				t.Errorf("word error rate %.0f %%, want at most 40 %%", 100*wer)
			}
		})
	}
}
