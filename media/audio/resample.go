package audio

import "math"

// Resampler converts mono PCM from one rate to another with a windowed-sinc low-pass filter. It keeps the tail
// of its input between calls, so a stream may be fed in pieces of any size. The kernel is tabulated once, so a
// sample costs a few dozen multiply-adds and no trigonometry.
type Resampler struct {
	step  float64   // input samples per output sample
	half  int       // the kernel's half-width in input samples
	table []float32 // the kernel at 1/phases steps from 0 to half
	buf   []float32 // input not yet consumed, with the history the kernel reaches back to
	pos   float64   // where the next output sample falls in buf
}

const (
	resampleZeros  = 12  // zero crossings of the sinc on each side, at the lower of the two rates
	resamplePhases = 128 // kernel table resolution per input sample
)

// NewResampler returns a resampler from inRate to outRate (both in Hz, both positive).
func NewResampler(inRate, outRate int) *Resampler {
	cutoff := min(1, float64(outRate)/float64(inRate)) * 0.95 // of the input's Nyquist frequency, with a margin
	half := int(math.Ceil(resampleZeros / cutoff))
	table := make([]float32, half*resamplePhases+2)
	for i := range table {
		x := float64(i) / resamplePhases
		w := 0.0
		if x < float64(half) { // Blackman window over [-half, half]
			t := math.Pi * (x/float64(half) + 1)
			w = 0.42 - 0.5*math.Cos(t) + 0.08*math.Cos(2*t)
		}
		s := 1.0
		if x != 0 {
			s = math.Sin(math.Pi*cutoff*x) / (math.Pi * cutoff * x)
		}
		table[i] = float32(cutoff * s * w)
	}
	r := &Resampler{step: float64(inRate) / float64(outRate), half: half, table: table}
	r.buf = make([]float32, half) // silence before the first sample
	r.pos = float64(half)
	return r
}

// Process appends the output for in to out and returns it.
func (r *Resampler) Process(in []int16, out []int16) []int16 {
	for _, v := range in {
		r.buf = append(r.buf, float32(v))
	}
	for {
		center := int(r.pos)
		if center+r.half >= len(r.buf) {
			break
		}
		var acc float32
		for k := center - r.half + 1; k <= center+r.half; k++ {
			x := math.Abs(r.pos-float64(k)) * resamplePhases
			i := int(x)
			if i+1 >= len(r.table) {
				continue
			}
			f := float32(x - float64(i))
			acc += r.buf[k] * (r.table[i]*(1-f) + r.table[i+1]*f)
		}
		out = append(out, clamp16(acc))
		r.pos += r.step
	}
	// Keep what the next outputs reach back to.
	if drop := int(r.pos) - r.half; drop > 0 {
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.pos -= float64(drop)
	}
	return out
}

func clamp16(v float32) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(float64(v)))
}
