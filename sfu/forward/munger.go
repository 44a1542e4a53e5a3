package forward

import (
	"time"

	"github.com/edge-sfu/sfu/media/codec"
)

// munger turns the packets a subscriber gets, from whichever simulcast layer they come, into one continuous
// stream: sequence numbers without gaps where packets were dropped on purpose, timestamps that go on across a
// layer switch, and VP8 picture ids and TL0PICIDX that do the same. It is not safe for concurrent use: its
// DownTrack holds a lock around it.
type munger struct {
	started    bool   // a packet has been sent
	lastIn     uint16 // newest input sequence number on the current layer
	maps       [mapHistory]mapping
	head, nmap int // maps[head] is in force; nmap are kept
	lastOutSeq uint16
	lastOutTS  uint32
	lastOutPic uint16
	lastOutTL0 uint8
	lastOutAt  time.Time
}

// mapping turns a layer's input sequence numbers from `from` on into the subscriber's: a switch or a dropped
// packet starts a new one. Late packets (retransmissions, reordering) are rewritten with the mapping that was in
// force at their place in the input. A switch ends the mapping before it at the last packet sent under it: the
// packets after that were never sent (another layer, or a pause), so late ones of them have no place.
type mapping struct {
	from     uint16
	until    uint16 // when ended: the last input sequence number it covers
	seqDelta uint16
	picDelta uint16
	tsDelta  uint32
	tl0Delta uint8
	layer    int8 // the simulcast layer whose sequence numbers it maps
	ended    bool // a switch ended it
}

// mapHistory is how many mappings are kept; mapWindow is how far behind the newest packet a late packet may be.
const (
	mapHistory = 16
	mapWindow  = 4096
)

// start sets the first output sequence number and timestamp (random, RFC 3550 section 5.1, for a real stream).
func (m *munger) start(seq uint16, ts uint32) {
	m.lastOutSeq, m.lastOutTS = seq, ts
}

// outputState is where a munger's output stream stands: what its last packet became, and when it arrived.
type outputState struct {
	started bool
	seq     uint16
	ts      uint32
	pic     uint16
	tl0     uint8
	at      time.Time
}

// output is where the output stream stands.
func (m *munger) output() outputState {
	return outputState{started: m.started, seq: m.lastOutSeq, ts: m.lastOutTS, pic: m.lastOutPic, tl0: m.lastOutTL0, at: m.lastOutAt}
}

// resume makes a munger that has sent nothing go on with another's output stream (DownTrack.ContinueFrom): its
// first packet, a switch, continues from out. A stream that had sent nothing leaves it as it was.
func (m *munger) resume(out outputState) {
	if m.started || !out.started {
		return
	}
	m.started = true
	m.lastOutSeq, m.lastOutTS, m.lastOutPic, m.lastOutTL0, m.lastOutAt = out.seq, out.ts, out.pic, out.tl0, out.at
}

// current is the mapping in force.
func (m *munger) current() mapping { return m.maps[m.head] }

// push starts a new mapping.
func (m *munger) push(mp mapping) {
	m.head = (m.head + 1) % mapHistory
	m.maps[m.head] = mp
	m.nmap = min(m.nmap+1, mapHistory)
}

// inOrder reports whether a packet is newer than any before on the current layer (or the first of a switch):
// it is rewritten with the mapping in force (current). An older one is late: lateMapping finds its mapping.
func (m *munger) inOrder(seq uint16, switching bool) bool {
	return switching || int16(seq-m.lastIn) > 0
}

// lateMapping finds the mapping for a packet older than the newest: the one in force at its place in the input.
// It has none (false) when it is from before every mapping kept, too old to place, or from a gap that was never
// sent. Distances are signed: a drop's mapping starts just after the newest packet.
func (m *munger) lateMapping(seq uint16, layer int8) (mapping, bool) {
	if back := int16(m.lastIn - seq); back < 0 || back > mapWindow { // back 0: the newest again (a retransmission)
		return mapping{}, false
	}
	for i := 0; i < m.nmap; i++ {
		mp := m.maps[(m.head-i+mapHistory)%mapHistory]
		if int16(seq-mp.from) < 0 {
			continue // from before this mapping's start: an older one
		}
		if mp.layer != layer || mp.ended && int16(seq-mp.until) > 0 {
			return mapping{}, false // another layer's, or in a gap that was never sent
		}
		return mp, true
	}
	return mapping{}, false
}

// source finds which input packet went out as sequence number out: its layer and input sequence number; false
// for a number no packet of the mappings kept went out as.
func (m *munger) source(out uint16) (int8, uint16, bool) {
	if !m.started {
		return 0, 0, false
	}
	limit := m.lastIn + 1 // the newest mapping covers input up to the newest packet
	for i := 0; i < m.nmap; i++ {
		mp := m.maps[(m.head-i+mapHistory)%mapHistory]
		in := out - mp.seqDelta
		inRange := int16(in-mp.from) >= 0 && int16(limit-in) > 0 && (!mp.ended || int16(mp.until-in) >= 0)
		if inRange {
			return mp.layer, in, true
		}
		limit = mp.from
	}
	return 0, 0, false
}

// skip drops an in-order packet of the current layer on purpose (padding, a temporal layer above the limit): the
// packets after it close the gap it leaves. picStart says it starts a VP8 picture whose id is then skipped too.
//
// A run of drops extends one mapping rather than pushing one per packet: the mapping a drop started has had
// nothing sent under it when the next packet is dropped too, so it can move on, and mapHistory counts runs.
func (m *munger) skip(seq uint16, mp mapping, picStart bool) {
	next := mp
	next.from = seq + 1
	next.seqDelta--
	if picStart {
		next.picDelta--
	}
	if cur := &m.maps[m.head]; m.nmap > 1 && cur.from == seq && !cur.ended {
		*cur = next // the previous packet was dropped too, and started this mapping
	} else {
		m.push(next)
	}
	m.lastIn = seq
}

// switchMapping is the mapping that continues the subscriber's stream from its last packet with a new layer's
// packet: the next sequence number, a timestamp advanced by the wall-clock time between the two, and the next
// picture id. vp8 is nil for other codecs.
func (m *munger) switchMapping(seq uint16, layer int8, ts uint32, arrival time.Time, clockRate uint32, vp8 *codec.VP8Descriptor) mapping {
	mp := mapping{layer: layer, from: seq, seqDelta: m.lastOutSeq + 1 - seq, tsDelta: m.lastOutTS + m.tsGap(arrival, clockRate) - ts}
	if m.started && vp8 != nil {
		mp.picDelta = m.lastOutPic + 1 - vp8.PictureID
		mp.tl0Delta = m.lastOutTL0 + 1 - vp8.TL0PICIDX
	}
	return mp
}

// tsGap is the RTP time between the last packet sent and a new layer's first: the wall-clock time between them,
// at least one tick.
func (m *munger) tsGap(now time.Time, clockRate uint32) uint32 {
	gap := now.Sub(m.lastOutAt)
	if m.lastOutAt.IsZero() || gap <= 0 {
		return 1 // the new layer's packet arrived before the last one sent (another read goroutine)
	}
	gap = min(gap, 10*time.Second)
	return max(uint32(gap.Seconds()*float64(clockRate)), 1)
}

// switched makes a switch's mapping the one in force, once its first packet has gone out; the one before it
// ends at the last packet sent under it.
func (m *munger) switched(mp mapping) {
	if m.started {
		prev := &m.maps[m.head]
		prev.ended, prev.until = true, m.lastIn
	}
	m.push(mp)
	m.started = true
}

// sent records an in-order packet that went out: its input sequence number and what it became.
func (m *munger) sent(seq, outSeq uint16, outTS uint32, arrival time.Time) {
	m.lastIn = seq
	m.slide()
	m.lastOutSeq, m.lastOutTS, m.lastOutAt = outSeq, outTS, arrival
}

// sentVP8 records the picture id and TL0PICIDX of an in-order VP8 packet that went out.
func (m *munger) sentVP8(pic uint16, tl0 uint8) {
	m.lastOutPic, m.lastOutTL0 = pic, tl0
}

// slide keeps the mapping in force starting within reach of the newest packet, so that the signed distances
// above stay meaningful on a stream that goes on without a new mapping for longer than 32768 packets.
func (m *munger) slide() {
	if mp := &m.maps[m.head]; int16(m.lastIn-mp.from) > 2*mapWindow {
		mp.from = m.lastIn - mapWindow
		m.nmap = 1 // the older ones cover only packets that are now too old to place
	}
}
