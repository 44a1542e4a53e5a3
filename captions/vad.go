package captions

import "math"

// VAD tells speech from silence by loudness against a running estimate of the noise floor, frame by frame
// (any size; 20 ms is usual). It is deliberately simple: the recognizer, not the VAD, decides what was said;
// the VAD only has to find where utterances start and end.
type VAD struct {
	floor     float64 // noise floor, dBFS
	threshold float64 // dB above the floor that counts as speech
	minLevel  float64 // dBFS below which nothing is speech
	started   bool
}

// NewVAD returns a detector that calls a frame voiced when it is 12 dB over the noise floor and louder than
// -50 dBFS.
func NewVAD() *VAD { return &VAD{floor: -60, threshold: 12, minLevel: -50} }

// Voiced reports whether a frame sounds like speech, and learns the noise floor from it.
func (v *VAD) Voiced(pcm []int16) bool {
	level := Level(pcm)
	if !v.started {
		v.started = true
		v.floor = min(level, -30)
	}
	voiced := level > v.minLevel && level > v.floor+v.threshold
	// The floor falls fast to quieter frames and rises slowly, so speech does not pull it up.
	if level < v.floor {
		v.floor += 0.5 * (level - v.floor)
	} else if !voiced {
		v.floor += 0.05 * (level - v.floor)
	} else {
		v.floor += 0.002 * (level - v.floor)
	}
	v.floor = max(v.floor, -90)
	return voiced
}

// Level is a frame's loudness in dBFS (0 for a full-scale square wave, -90 for silence).
func Level(pcm []int16) float64 {
	if len(pcm) == 0 {
		return -90
	}
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	rms := math.Sqrt(sum/float64(len(pcm))) / 32768
	if rms < 1e-5 {
		return -90
	}
	return 20 * math.Log10(rms)
}
