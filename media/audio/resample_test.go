package audio

import (
	"bytes"
	"math"
	"testing"
)

func sine(freq float64, rate, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

func rms(x []int16) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// crossings counts upward zero crossings: a tone's frequency times its length.
func crossings(x []int16) int {
	n := 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			n++
		}
	}
	return n
}

// TestResamplerKeepsTones: a 1 kHz tone keeps its pitch and level through 22050→48000 (espeak-ng's rate) and
// 48000→16000 (what speech recognisers take).
func TestResamplerKeepsTones(t *testing.T) {
	for _, c := range []struct{ in, out int }{{22050, 48000}, {48000, 16000}, {16000, 48000}} {
		x := sine(1000, c.in, c.in, 10000) // one second
		y := NewResampler(c.in, c.out).Process(x, nil)
		if d := len(y) - c.out; d < -60 || d > 0 {
			t.Errorf("%d→%d: %d samples out of one second, want about %d", c.in, c.out, len(y), c.out)
		}
		mid := y[len(y)/10 : len(y)*9/10] // away from the edges
		if got := crossings(mid); math.Abs(float64(got)-800) > 3 {
			t.Errorf("%d→%d: %d cycles in 0.8 s, want 800", c.in, c.out, got)
		}
		if db := 20 * math.Log10(rms(mid)/rms(x)); math.Abs(db) > 0.5 {
			t.Errorf("%d→%d: level changed by %.2f dB", c.in, c.out, db)
		}
	}
}

// TestResamplerRemovesAliases: a 10 kHz tone has no place at 16 kHz; it must not fold back as a 6 kHz one.
func TestResamplerRemovesAliases(t *testing.T) {
	x := sine(10000, 48000, 48000, 10000)
	y := NewResampler(48000, 16000).Process(x, nil)
	if db := 20 * math.Log10(rms(y[1000:len(y)-1000])/rms(x)); db > -40 {
		t.Fatalf("10 kHz at 16 kHz comes out %.1f dB below the input, want at least 40", -db)
	}
}

// TestResamplerStreams: feeding a stream in pieces gives the same samples as feeding it at once.
func TestResamplerStreams(t *testing.T) {
	x := sine(440, 48000, 48000, 8000)
	whole := NewResampler(48000, 16000).Process(x, nil)
	r := NewResampler(48000, 16000)
	var pieces []int16
	for off := 0; off < len(x); off += 960 {
		pieces = r.Process(x[off:min(len(x), off+960)], pieces)
	}
	if len(pieces) != len(whole) {
		t.Fatalf("%d samples in pieces, %d at once", len(pieces), len(whole))
	}
	for i := range whole {
		if d := int(pieces[i]) - int(whole[i]); d < -1 || d > 1 {
			t.Fatalf("sample %d: %d in pieces, %d at once", i, pieces[i], whole[i])
		}
	}
}

// TestWAVRoundTrip writes and reads back a WAV file.
func TestWAVRoundTrip(t *testing.T) {
	x := sine(440, 16000, 1600, 9000)
	var b bytes.Buffer
	if err := WriteWAV(&b, x, 16000); err != nil {
		t.Fatal(err)
	}
	y, rate, err := ReadWAV(&b)
	if err != nil || rate != 16000 || len(y) != len(x) {
		t.Fatalf("read back %d samples at %d: %v", len(y), rate, err)
	}
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("sample %d: %d, wrote %d", i, y[i], x[i])
		}
	}
	if _, _, err := ReadWAV(bytes.NewReader([]byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00"))); err == nil {
		t.Fatal("data before fmt was accepted")
	}
}
