package forward

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counters are a track's forwarding figures, for /metrics.
type Counters struct {
	PacketsIn, BytesIn   uint64
	PacketsOut, BytesOut uint64
	NACKs, PLIs          uint64
}

// Add adds o's figures to c's.
func (c *Counters) Add(o Counters) {
	c.PacketsIn += o.PacketsIn
	c.BytesIn += o.BytesIn
	c.PacketsOut += o.PacketsOut
	c.BytesOut += o.BytesOut
	c.NACKs += o.NACKs
	c.PLIs += o.PLIs
}

type counters struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	nacks, plis          atomic.Uint64
}

// Counters reads the track's figures so far.
func (r *Receiver) Counters() Counters {
	s := &r.stats
	return Counters{PacketsIn: s.packetsIn.Load(), BytesIn: s.bytesIn.Load(), PacketsOut: s.packetsOut.Load(),
		BytesOut: s.bytesOut.Load(), NACKs: s.nacks.Load(), PLIs: s.plis.Load()}
}

// rateWindow is the shortest time over which layer bitrates are measured.
const rateWindow = 500 * time.Millisecond

// rateMeter turns the layers' byte counts into smoothed bitrates.
type rateMeter struct {
	mu    sync.Mutex
	at    time.Time
	bytes [MaxLayers][3]uint64
	rates [MaxLayers][3]float64
}

// LayerRates is the bitrate of each layer in bits per second, by temporal layer: rates[l][t] counts temporal
// layers 0 to t. Zero until measured.
func (r *Receiver) LayerRates() [MaxLayers][3]float64 {
	m := &r.rates
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if dt := now.Sub(m.at); dt >= rateWindow {
		for l := range r.layers {
			var cum float64
			for t := 0; t < 3; t++ {
				b := r.layers[l].bytes[t].Load()
				if !m.at.IsZero() {
					cum += float64(b-m.bytes[l][t]) * 8 / dt.Seconds()
					// Smooth: keyframes make single windows jumpy.
					if m.rates[l][t] == 0 {
						m.rates[l][t] = cum
					} else {
						m.rates[l][t] = 0.6*m.rates[l][t] + 0.4*cum
					}
				}
				m.bytes[l][t] = b
			}
		}
		m.at = now
	}
	return m.rates
}

// levelMeter counts audio levels (RFC 6464: 0 is 0 dBov, 127 is -127 dBov) since the track began. Readers keep
// their previous Levels and take the difference, so more than one can read without disturbing the others.
type levelMeter struct {
	sum, count, voiced atomic.Uint64
}

// voiceThreshold is the level, in -dBov, louder than which a packet counts as speech.
const voiceThreshold = 50

func (m *levelMeter) add(dBov uint8) {
	m.sum.Add(uint64(127 - dBov))
	m.count.Add(1)
	if dBov < voiceThreshold {
		m.voiced.Add(1)
	}
}

// Levels are a track's audio level totals since it began: the sum of loudness (127 minus -dBov), the packets
// that carried a level, and how many of those were speech.
type Levels struct {
	Sum, Count, Voiced uint64
}

// Levels reads the totals so far.
func (r *Receiver) Levels() Levels {
	m := &r.level
	// Not one snapshot: a packet being counted may be in one total and not yet in another, which Since absorbs.
	return Levels{Sum: m.sum.Load(), Count: m.count.Load(), Voiced: m.voiced.Load()}
}

// Since is the mean loudness (0 silent to 1 loud) and the share of voiced packets between prev and l.
func (l Levels) Since(prev Levels) (level, voiced float64) {
	if l.Count <= prev.Count || l.Sum < prev.Sum || l.Voiced < prev.Voiced {
		return 0, 0
	}
	n := l.Count - prev.Count
	return min(float64(l.Sum-prev.Sum)/float64(n)/127, 1), min(float64(l.Voiced-prev.Voiced)/float64(n), 1)
}
