// Package audiotest makes test audio (speech from espeak-ng, white noise) and measures what a denoiser did to
// it. Tests of several packages share it; nothing here is used by the server.
package audiotest

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edge-sfu/sfu/media/audio"
)

// Speech speaks text with espeak-ng and returns it at 48 kHz.
func Speech(t testing.TB, text string) []int16 {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Fatal("espeak-ng is not installed: run make deps (Debian package espeak-ng)")
	}
	wav := filepath.Join(t.TempDir(), "speech.wav")
	if out, err := exec.Command("espeak-ng", "-v", "en-us", "-s", "150", "-w", wav, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, out)
	}
	b, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := audio.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if rate == audio.SampleRate {
		return pcm
	}
	return audio.NewResampler(rate, audio.SampleRate).Process(pcm, nil)
}

// Scene is a test signal: clean speech with pauses, the same with white noise added, and where the speech is.
type Scene struct {
	Clean, Noisy []int16
	SNR          float64 // speech to noise, in dB, over the speech frames
}

// Lead is the noise-only time at the start of a scene, which a denoiser may use to learn the noise.
const Lead = 1000 // ms

// NewScene lays out speech with silences (Lead ms first, 700 ms between, 500 ms after) and adds white noise
// snr dB below the speech, from a fixed seed.
func NewScene(speech [][]int16, snr float64, seed uint64) Scene {
	ms := audio.SampleRate / 1000
	var clean []int16
	clean = append(clean, make([]int16, Lead*ms)...)
	for i, s := range speech {
		if i > 0 {
			clean = append(clean, make([]int16, 700*ms)...)
		}
		clean = append(clean, s...)
	}
	clean = append(clean, make([]int16, 500*ms)...)
	speechPower := 0.0
	n := 0
	for _, f := range SpeechFrames(clean) {
		speechPower += frameEnergy(clean, f)
		n += audio.FrameSamples
	}
	speechPower /= float64(max(n, 1))
	sigma := math.Sqrt(speechPower / math.Pow(10, snr/10))
	rng := rand.New(rand.NewPCG(seed, 1))
	noisy := make([]int16, len(clean))
	for i, v := range clean {
		noisy[i] = clamp(float64(v) + rng.NormFloat64()*sigma)
	}
	return Scene{Clean: clean, Noisy: noisy, SNR: snr}
}

// SpeechFrames lists the 10 ms frames (by index) where the clean signal is within 30 dB of its loudest frame.
func SpeechFrames(clean []int16) []int {
	frames := len(clean) / audio.FrameSamples
	peak := 0.0
	for f := range frames {
		peak = max(peak, frameEnergy(clean, f))
	}
	var out []int
	for f := range frames {
		if e := frameEnergy(clean, f); e > 0 && e >= peak/1000 {
			out = append(out, f)
		}
	}
	return out
}

// QuietFrames lists the frames after the noise-only lead (the time a denoiser has to learn the noise; RNNoise
// needs most of a second) whose clean signal is silent, with 50 ms of silence on each side too.
func QuietFrames(clean []int16) []int {
	frames := len(clean) / audio.FrameSamples
	var out []int
	for f := Lead / 10; f < frames; f++ {
		silent := true
		for g := max(0, f-5); g <= min(frames-1, f+5) && silent; g++ {
			silent = frameEnergy(clean, g) == 0
		}
		if silent {
			out = append(out, f)
		}
	}
	return out
}

// Result is what a denoiser did.
type Result struct {
	NoiseReduction float64 // dB less energy in the quiet frames, output against input
	SpeechChange   float64 // dB of output speech-frame energy against the clean speech's (0 is unchanged)
	Lag            int     // samples the output is behind the input
}

// Measure compares a denoiser's output with the scene it was given. The output may lag the input by up to
// maxLag samples; the lag that best matches the clean speech is used.
func Measure(s Scene, out []int16, maxLag int) Result {
	lag := Align(s.Clean, out, maxLag)
	shifted := make([]int16, len(s.Clean))
	for i := range shifted {
		if j := i + lag; j >= 0 && j < len(out) {
			shifted[i] = out[j]
		}
	}
	var quietIn, quietOut, speechClean, speechOut float64
	for _, f := range QuietFrames(s.Clean) {
		quietIn += frameEnergy(s.Noisy, f)
		quietOut += frameEnergy(shifted, f)
	}
	for _, f := range SpeechFrames(s.Clean) {
		speechClean += frameEnergy(s.Clean, f)
		speechOut += frameEnergy(shifted, f)
	}
	return Result{
		NoiseReduction: 10 * math.Log10(quietIn/math.Max(quietOut, 1)),
		SpeechChange:   10 * math.Log10(math.Max(speechOut, 1)/speechClean),
		Lag:            lag,
	}
}

// Align finds the lag in [0, maxLag] samples at which out best correlates with ref.
func Align(ref, out []int16, maxLag int) int {
	best, bestLag := math.Inf(-1), 0
	for lag := 0; lag <= maxLag; lag += 1 {
		var c float64
		for i := 0; i+lag < len(out) && i < len(ref); i += 4 { // every 4th sample is plenty for speech
			c += float64(ref[i]) * float64(out[i+lag])
		}
		if c > best {
			best, bestLag = c, lag
		}
	}
	return bestLag
}

// Run passes pcm through processors 10 ms at a time, as the pipeline does, and returns the result.
func Run(t testing.TB, pcm []int16, chain ...audio.Processor) []int16 {
	t.Helper()
	out := append([]int16(nil), pcm...)
	for off := 0; off+audio.FrameSamples <= len(out); off += audio.FrameSamples {
		for _, p := range chain {
			if err := p.Process(out[off : off+audio.FrameSamples]); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func frameEnergy(pcm []int16, f int) float64 {
	e := 0.0
	for _, v := range pcm[f*audio.FrameSamples : min(len(pcm), (f+1)*audio.FrameSamples)] {
		e += float64(v) * float64(v)
	}
	return e
}

func clamp(v float64) int16 {
	return int16(max(-32768, min(32767, math.Round(v))))
}

// RNNoiseDir is where make deps puts RNNoise's npm package: node_modules at the module's root.
func RNNoiseDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "node_modules", "@echogarden", "rnnoise-wasm")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// LoopPhase finds where a recording of a looped signal starts: the sample of clean that rec[0] matches. It
// compares 10 ms energy envelopes at every whole-frame phase, then refines to the sample.
func LoopPhase(clean, rec []int16) int {
	n := len(clean)
	frames := n / audio.FrameSamples
	recFrames := min(len(rec)/audio.FrameSamples, frames)
	envClean := make([]float64, frames)
	for f := range frames {
		envClean[f] = math.Sqrt(frameEnergy(clean, f))
	}
	envRec := make([]float64, recFrames)
	for f := range recFrames {
		envRec[f] = math.Sqrt(frameEnergy(rec, f))
	}
	best, phase := math.Inf(-1), 0
	for s := range frames {
		c := 0.0
		for f := range recFrames {
			c += envRec[f] * envClean[(s+f)%frames]
		}
		if c > best {
			best, phase = c, s*audio.FrameSamples
		}
	}
	best, fine := math.Inf(-1), phase
	m := min(len(rec), n)
	for d := -audio.FrameSamples; d <= audio.FrameSamples; d++ {
		p := ((phase+d)%n + n) % n
		c := 0.0
		for i := 0; i < m; i += 4 {
			c += float64(rec[i]) * float64(clean[(p+i)%n])
		}
		if c > best {
			best, fine = c, p
		}
	}
	return fine
}

// Rotate returns the scene as a loop of it sounds from sample phase on.
func (s Scene) Rotate(phase int) Scene {
	rot := func(x []int16) []int16 { return append(append([]int16(nil), x[phase:]...), x[:phase]...) }
	return Scene{Clean: rot(s.Clean), Noisy: rot(s.Noisy), SNR: s.SNR}
}
