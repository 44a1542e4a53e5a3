package loadtest

import (
	"math"
	"sync/atomic"
	"time"
)

// histogram counts durations in logarithmic buckets 2 % wide, from 1 µs to about an hour, without locks.
type histogram struct {
	buckets [histBuckets]atomic.Int64
	count   atomic.Int64
	max     atomic.Int64 // nanoseconds
}

const (
	histBuckets = 1100
	histGrowth  = 1.02
)

var logGrowth = math.Log(histGrowth)

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Log(us)/logGrowth)+1, histBuckets-1)
}

// upper is the largest duration bucket i holds.
func upper(i int) time.Duration {
	if i == 0 {
		return time.Microsecond
	}
	return time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(d)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantiles reads p50, p95, p99 and max in milliseconds.
func (h *histogram) quantiles() Quantiles {
	n := h.count.Load()
	q := Quantiles{Count: n, Max: float64(h.max.Load()) / 1e6}
	if n == 0 {
		return q
	}
	targets := []float64{0.50, 0.95, 0.99}
	out := make([]float64, len(targets))
	var seen int64
	k := 0
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		for k < len(targets) && float64(seen) >= targets[k]*float64(n) {
			out[k] = min(float64(upper(i))/1e6, q.Max)
			k++
		}
		if k == len(targets) {
			break
		}
	}
	q.P50, q.P95, q.P99 = out[0], out[1], out[2]
	return q
}

// seqTracker counts the RTP packets of one stream received and expected (from the sequence numbers), so that
// loss is what never arrived, however late retransmissions come.
type seqTracker struct {
	started  bool
	highest  int64 // extended sequence number
	first    int64
	received int64
	seen     [1024]bool // a window of recent sequence numbers
}

// add records a packet; it reports false for a duplicate, and by how much the packets expected grew.
func (s *seqTracker) add(seq uint16) (bool, int64) {
	if !s.started {
		s.started, s.highest, s.first = true, int64(seq), int64(seq)
		s.seen[seq%1024] = true
		s.received++
		return true, 1
	}
	// Extend around the highest seen: within half the range either way.
	ext := s.highest - int64(uint16(s.highest)) + int64(seq)
	switch {
	case ext-s.highest > 1<<15:
		ext -= 1 << 16
	case s.highest-ext > 1<<15:
		ext += 1 << 16
	}
	var grew int64
	if ext > s.highest {
		for x := s.highest + 1; x < ext && x-s.highest <= 1024; x++ {
			s.seen[x%1024] = false // not yet received
		}
		grew = ext - s.highest
		s.highest = ext
	} else if s.highest-ext >= 1024 || s.seen[ext%1024] {
		return false, 0 // too old to tell, or a duplicate
	}
	s.seen[ext%1024] = true
	s.received++
	return true, grew
}

// expected is how many packets the stream has sent since the first received.
func (s *seqTracker) expected() int64 {
	if !s.started {
		return 0
	}
	return s.highest - s.first + 1
}

// audioTally counts what the listeners (users who publish nothing) received of the audio.
type audioTally struct {
	sum, n         int64 // audio tracks that brought packets, summed over n listener-seconds
	max            int   // the most any listener had in a second
	speakerPackets int64 // the open microphones' packets
}

// listened adds a listener's second.
func (a *audioTally) listened(f secondFigures) {
	a.sum += int64(f.audio)
	a.n++
	a.max = max(a.max, f.audio)
	a.speakerPackets += f.speakerPackets
}

func (a *audioTally) add(o audioTally) {
	a.sum += o.sum
	a.n += o.n
	a.max = max(a.max, o.max)
	a.speakerPackets += o.speakerPackets
}

// mean is the mean number of audio tracks a listener received packets from in a second.
func (a *audioTally) mean() float64 {
	if a.n == 0 {
		return 0
	}
	return float64(a.sum) / float64(a.n)
}
