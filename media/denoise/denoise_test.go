package denoise

import (
	"context"
	"errors"
	"testing"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
)

// scene is the test signal every denoiser gets: two spoken sentences in white noise 10 dB below the speech.
func scene(t testing.TB) audiotest.Scene {
	return audiotest.NewScene([][]int16{
		audiotest.Speech(t, "hello world, the meeting starts now"),
		audiotest.Speech(t, "please mute your microphone when you are not speaking"),
	}, 10, 7)
}

func registry(t testing.TB) *audio.Registry {
	reg := audio.NewRegistry()
	release := Register(context.Background(), reg, Options{RNNoiseDir: audiotest.RNNoiseDir(t)})
	t.Cleanup(func() { _ = release(context.Background()) })
	return reg
}

// TestDenoisers: each denoiser takes at least 10 dB of noise out of the pauses and keeps the speech's energy
// within 3 dB.
func TestDenoisers(t *testing.T) {
	s := scene(t)
	reg := registry(t)
	for _, name := range []string{NameRNNoise, NameSpeex} {
		t.Run(name, func(t *testing.T) {
			if name == NameSpeex && !SpeexAvailable {
				t.Skip("this build has no cgo")
			}
			p, err := reg.New(name)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			out := audiotest.Run(t, s.Noisy, p)
			r := audiotest.Measure(s, out, 2*audio.FrameSamples)
			t.Logf("%s: noise %.1f dB lower in the pauses, speech energy %+.1f dB, output %d samples behind",
				name, r.NoiseReduction, r.SpeechChange, r.Lag)
			if r.NoiseReduction < 10 {
				t.Errorf("noise reduced by %.1f dB, want at least 10", r.NoiseReduction)
			}
			if r.SpeechChange < -3 || r.SpeechChange > 3 {
				t.Errorf("speech energy changed by %+.1f dB, want within 3", r.SpeechChange)
			}
		})
	}
}

// TestNoisyInputUntouchedMeasuresZero checks the measure itself: the noisy input scores no noise reduction.
func TestNoisyInputUntouchedMeasuresZero(t *testing.T) {
	s := scene(t)
	r := audiotest.Measure(s, s.Noisy, 2*audio.FrameSamples)
	if r.NoiseReduction > 0.5 || r.NoiseReduction < -0.5 || r.Lag != 0 {
		t.Fatalf("the unprocessed input measured %+v", r)
	}
}

// TestRNNoiseMissingFiles: without the npm package the registry still names rnnoise, and asking for it says
// what to install.
func TestRNNoiseMissingFiles(t *testing.T) {
	reg := audio.NewRegistry()
	release := Register(context.Background(), reg, Options{RNNoiseDir: t.TempDir()})
	defer release(context.Background())
	_, err := reg.New(NameRNNoise)
	if !errors.Is(err, audio.ErrUnavailable) {
		t.Fatalf("rnnoise without its files: %v, want ErrUnavailable", err)
	}
	t.Log(err)
}

// TestSpeexWithoutCgo: a build without cgo refuses speex with a clear error (run with CGO_ENABLED=0).
func TestSpeexWithoutCgo(t *testing.T) {
	if SpeexAvailable {
		t.Skip("this build has cgo; make test runs this package again without it")
	}
	_, err := registry(t).New(NameSpeex)
	if !errors.Is(err, audio.ErrUnavailable) {
		t.Fatalf("speex without cgo: %v, want ErrUnavailable", err)
	}
	t.Log(err)
}
