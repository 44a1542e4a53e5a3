// Package bwe estimates the bandwidth towards one subscriber from the transport-wide congestion control feedback
// (TWCC) its client sends, for the layer allocator. It is the estimator of Pion's cc interceptor
// (cc.BandwidthEstimator) on every subscribe connection, in place of Pion's gcc, which cost about a fifth of the
// server's CPU (a map entry, a list element and an attribute map per packet sent, two goroutines per connection).
//
// The estimate follows three rules, applied at each feedback message:
//   - queuing delay (one-way delay above the lowest seen in the last 5 to 10 s) over 50 ms, or over 25 ms and
//     growing: the estimate falls to 85 % of what was delivered over the last half second, at most every 200 ms,
//     so that the queue can drain (a drop-tail queue that overflows shows here: it delivers the capacity);
//   - else loss over the last half second above 10 %: the estimate falls to what was delivered, less half the loss;
//   - otherwise, with little delay and little loss, it grows by 30 % a second, up to twice what was delivered (and
//     at least 300 kbps above it): a connection that sends little does not claim a bandwidth nobody has tried.
//
// The send side costs one uncontended lock and one slot of a fixed ring per packet, no allocation.
package bwe

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

const (
	ringSize = 2048 // packets remembered until their feedback: 2 s at 1,000 packets a second
	window   = 500 * time.Millisecond

	lossCut        = 0.10
	delayHigh      = 50 * time.Millisecond
	delayRising    = 25 * time.Millisecond
	delayLow       = 15 * time.Millisecond
	lossLow        = 0.02
	decreaseFactor = 0.85
	decreaseGap    = 200 * time.Millisecond
	growthPerSec   = 0.30
	headroom       = 300_000 // bits per second above twice the delivered rate that growth may reach
	baseWindow     = 5 * time.Second
	maxSamples     = 64
)

// Config bounds the estimate.
type Config struct {
	Initial, Min, Max int // bits per second
}

// Estimator is one connection's estimate. The write path (AddStream's writer) and the RTCP readers (WriteRTCP)
// may run on any goroutines. Lock order: fbMu before mu; neither is held while the OnTargetBitrateChange
// callback runs.
type Estimator struct {
	cfg   Config
	start time.Time

	mu   sync.Mutex // the ring of packets sent
	ring [ringSize]sent

	fbMu     sync.Mutex // the feedback state below
	samples  []sample   // per feedback message, oldest first, within window of the newest
	base     [2]int64   // lowest one-way delay (ns) in the current and the previous baseWindow
	baseAt   time.Time  // when base[0] started
	lastRef  int64      // the latest feedback's reference time, unwrapped (64 ms units), and the wraps seen
	refWraps int64
	refSeen  bool
	lastQD   time.Duration
	lastCut  time.Time
	lastGrow time.Time
	scratch  []acked

	target   atomic.Int64
	onChange atomic.Pointer[func(int)]
}

type sent struct {
	at    int64 // ns since start
	size  uint16
	seq   uint16
	valid bool
	fed   bool // its feedback has been counted
}

type acked struct {
	sentAt, arrival int64 // ns; arrival on the receiver's clock
	size            int
}

// sample is what one feedback message said; the samples of the last window make the delivered rate and the loss.
type sample struct {
	at          time.Time // when it came
	first, last int64     // arrival of its first and last received packet (ns, receiver's clock)
	bytes       int
	lost, total int
}

// New returns an estimator starting at cfg.Initial.
func New(cfg Config) *Estimator {
	e := &Estimator{cfg: cfg, start: time.Now(), base: [2]int64{math.MaxInt64, math.MaxInt64}}
	e.baseAt = e.start
	e.target.Store(int64(cfg.Initial))
	return e
}

// AddStream records every packet of the stream that carries a transport-wide sequence number (set by the TWCC
// header extension interceptor, which runs before this one on the way out).
func (e *Estimator) AddStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, x := range info.RTPHeaderExtensions {
		if x.URI == sdp.TransportCCURI {
			id = uint8(x.ID) //nolint:gosec // extension ids are 1..255
		}
	}
	if id == 0 {
		return w
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if ext := h.GetExtension(id); len(ext) >= 2 {
			e.Sent(binary.BigEndian.Uint16(ext), h.MarshalSize()+len(payload), time.Now())
		}
		return w.Write(h, payload, a)
	})
}

// Sent records a packet of size bytes with transport-wide sequence number seq, sent at now.
func (e *Estimator) Sent(seq uint16, size int, now time.Time) {
	s := sent{at: int64(now.Sub(e.start)), size: uint16(min(size, math.MaxUint16)), seq: seq, valid: true} //nolint:gosec // bounded
	e.mu.Lock()
	e.ring[seq%ringSize] = s
	e.mu.Unlock()
}

// WriteRTCP takes the connection's RTCP: its transport-wide feedback updates the estimate.
func (e *Estimator) WriteRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) error {
	now := time.Now()
	for _, p := range pkts {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			e.Feedback(fb, now)
		}
	}
	return nil
}

// Feedback updates the estimate from one TWCC feedback message received at now.
func (e *Estimator) Feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	before := e.target.Load()
	e.feedback(fb, now)
	if t := e.target.Load(); t != before {
		if f := e.onChange.Load(); f != nil {
			(*f)(int(t)) // outside the lock: the callback may ask for anything
		}
	}
}

func (e *Estimator) feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	e.fbMu.Lock()
	defer e.fbMu.Unlock()
	got, lost := e.match(fb)
	if len(got) == 0 && lost == 0 {
		return
	}
	s := sample{at: now, lost: lost, total: lost + len(got), first: math.MaxInt64, last: math.MinInt64}
	var qdSum time.Duration
	e.rollBase(now)
	for _, a := range got {
		owd := a.arrival - a.sentAt
		e.base[0] = min(e.base[0], owd)
	}
	low := min(e.base[0], e.base[1])
	for _, a := range got {
		s.bytes += a.size
		s.first = min(s.first, a.arrival)
		s.last = max(s.last, a.arrival)
		qdSum += time.Duration(a.arrival - a.sentAt - low)
	}
	e.addSample(s)
	rate, loss := e.delivered()
	qd := e.lastQD
	if len(got) > 0 {
		qd = qdSum / time.Duration(len(got))
	}
	rising := qd > e.lastQD
	e.lastQD = qd
	e.decide(now, rate, loss, qd, rising)
}

// match walks the feedback's statuses and finds each packet in the ring: the received ones with their arrival
// time, and a count of the lost. A packet is counted once, at its first feedback.
func (e *Estimator) match(fb *rtcp.TransportLayerCC) ([]acked, int) {
	got := e.scratch[:0]
	lost := 0
	arrival := e.reference(fb.ReferenceTime)
	deltas := fb.RecvDeltas
	seq := fb.BaseSequenceNumber
	remaining := int(fb.PacketStatusCount)
	e.mu.Lock()
	defer e.mu.Unlock()
	status := func(sym uint16) {
		if remaining <= 0 {
			return
		}
		remaining--
		var withDelta bool
		switch sym {
		case rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketReceivedLargeDelta:
			withDelta = true
			if len(deltas) > 0 {
				arrival += deltas[0].Delta * int64(time.Microsecond)
				deltas = deltas[1:]
			}
		}
		slot := &e.ring[seq%ringSize]
		if slot.valid && slot.seq == seq && !slot.fed {
			switch {
			case sym == rtcp.TypeTCCPacketNotReceived:
				slot.fed = true
				lost++
			case withDelta:
				slot.fed = true
				got = append(got, acked{sentAt: slot.at, arrival: arrival, size: int(slot.size)})
			}
		}
		seq++
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for i := 0; i < int(c.RunLength) && remaining > 0; i++ {
				status(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				status(sym)
			}
		}
	}
	e.scratch = got
	return got, lost
}

// reference is the feedback's reference time in ns on a clock that does not wrap: the 24-bit field of 64 ms units
// wraps every 12.4 days, which would otherwise look like a sudden fall of the one-way delay and make the delivered
// rate's span nonsense for a while.
func (e *Estimator) reference(ref uint32) int64 {
	const span = 1 << 24
	r := int64(ref) + e.refWraps*span
	if e.refSeen {
		switch d := r - e.lastRef; {
		case d < -span/2: // the field wrapped
			e.refWraps++
			r += span
		case d > span/2: // a late feedback from before the last wrap
			r -= span
		}
	}
	if !e.refSeen || r > e.lastRef {
		e.lastRef, e.refSeen = r, true
	}
	return r * 64 * int64(time.Millisecond)
}

// rollBase keeps the lowest one-way delay of the last one to two baseWindows: a route that changes is learnt.
func (e *Estimator) rollBase(now time.Time) {
	if now.Sub(e.baseAt) >= baseWindow {
		e.base[1], e.base[0] = e.base[0], math.MaxInt64
		e.baseAt = now
	}
}

func (e *Estimator) addSample(s sample) {
	i := 0
	for i < len(e.samples) && (s.at.Sub(e.samples[i].at) > window || len(e.samples)-i >= maxSamples) {
		i++
	}
	e.samples = append(e.samples[:0], e.samples[i:]...)
	e.samples = append(e.samples, s)
}

// delivered is the rate the receiver got over the samples' span (bits per second; 0 when too short to tell)
// and the share of packets lost in them.
func (e *Estimator) delivered() (float64, float64) {
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	bytes, lost, total := 0, 0, 0
	for _, s := range e.samples {
		if s.last != math.MinInt64 {
			first, last = min(first, s.first), max(last, s.last)
		}
		bytes += s.bytes
		lost += s.lost
		total += s.total
	}
	var rate float64
	if span := last - first; span >= int64(50*time.Millisecond) {
		rate = float64(bytes*8) / time.Duration(span).Seconds()
	}
	var loss float64
	if total >= 10 {
		loss = float64(lost) / float64(total)
	}
	return rate, loss
}

func (e *Estimator) decide(now time.Time, rate, loss float64, qd time.Duration, rising bool) {
	target := float64(e.target.Load())
	switch {
	case (qd > delayHigh || (qd > delayRising && rising)) && rate > 0:
		if now.Sub(e.lastCut) >= decreaseGap { // a queue, overflowing or not: what it delivers is the capacity
			target = min(target, decreaseFactor*rate)
			e.lastCut = now
		}
	case loss > lossCut && rate > 0:
		if now.Sub(e.lastCut) >= decreaseGap { // loss without a queue: less than was delivered
			target = min(target, rate*(1-loss/2))
			e.lastCut = now
		}
	case qd < delayLow && loss < lossLow:
		if !e.lastGrow.IsZero() {
			dt := min(now.Sub(e.lastGrow), time.Second).Seconds()
			limit := max(2*rate, rate+headroom)
			if grown := target * (1 + growthPerSec*dt); rate > 0 && target < limit {
				target = min(grown, limit)
			}
		}
		e.lastGrow = now
	default:
		e.lastGrow = now
	}
	e.set(target)
}

func (e *Estimator) set(target float64) {
	e.target.Store(int64(max(float64(e.cfg.Min), min(float64(e.cfg.Max), target))))
}

// GetTargetBitrate is the estimate in bits per second.
func (e *Estimator) GetTargetBitrate() int { return int(e.target.Load()) }

// OnTargetBitrateChange calls f with each new estimate.
func (e *Estimator) OnTargetBitrateChange(f func(int)) { e.onChange.Store(&f) }

// GetStats reports the estimate and what it was made from.
func (e *Estimator) GetStats() map[string]any {
	e.fbMu.Lock()
	defer e.fbMu.Unlock()
	rate, loss := e.delivered()
	return map[string]any{"target": e.GetTargetBitrate(), "delivered": rate, "loss": loss, "queueDelay": e.lastQD}
}

// Close does nothing: the estimator owns no goroutine.
func (e *Estimator) Close() error { return nil }
