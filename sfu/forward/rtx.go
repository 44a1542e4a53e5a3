package forward

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// Retransmissions: each video layer keeps its recent packets as they arrived, once for all its subscribers, and
// a subscriber's NACK replays the lost packet through that subscriber's DownTrack, which rewrites it exactly as
// the first time (same sequence number, timestamp and picture id). This replaces a per-subscriber copy of every
// packet sent (Pion's NACK responder).

// rtxPackets is how many packets a layer keeps: about a second of a 2.5 Mbit/s layer.
const rtxPackets = 512

// maxRetransmits bounds the packets one NACK message may have sent again; rtxRate and rtxBurst those one
// subscriber may have sent again, a second and at once.
const (
	maxRetransmits = 64
	rtxRate        = 400
	rtxBurst       = 200
)

// rtxBuffer is one layer's recent packets, by sequence number.
type rtxBuffer struct {
	mu   sync.Mutex
	data []byte // rtxPackets slots of rtxSlot bytes, allocated on first use
	seqs [rtxPackets]uint16
	lens [rtxPackets]uint16
}

const rtxSlot = 1500

// put keeps a packet (its bytes as received) under its sequence number.
func (b *rtxBuffer) put(seq uint16, pkt []byte) {
	if len(pkt) > rtxSlot {
		return
	}
	b.mu.Lock()
	if b.data == nil {
		b.data = make([]byte, rtxPackets*rtxSlot)
	}
	i := int(seq) % rtxPackets
	copy(b.data[i*rtxSlot:], pkt)
	b.seqs[i], b.lens[i] = seq, uint16(len(pkt))
	b.mu.Unlock()
}

// get copies the packet with this sequence number into dst; false if it is no longer kept.
func (b *rtxBuffer) get(seq uint16, dst []byte) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := int(seq) % rtxPackets
	if b.data == nil || b.lens[i] == 0 || b.seqs[i] != seq {
		return 0, false
	}
	return copy(dst, b.data[i*rtxSlot:i*rtxSlot+int(b.lens[i])]), true
}

// rtxScratch is what a DownTrack's RTCP reader needs to replay packets; only that goroutine touches it.
type rtxScratch struct {
	buf   [rtxSlot]byte
	pkt   rtp.Packet
	limit *rate.Limiter // rtxRate a second, rtxBurst at once
}

// retransmit sends again the packets a subscriber reports lost, by their sequence numbers in its stream. It
// reports how many went.
func (d *DownTrack) retransmit(nack *rtcp.TransportLayerNack) int {
	if d.receiver.kind != webrtc.RTPCodecTypeVideo {
		return 0
	}
	if d.rtx == nil {
		d.rtx = &rtxScratch{limit: rate.NewLimiter(rtxRate, rtxBurst)}
	}
	sent, tried := 0, 0
	for _, pair := range nack.Nacks {
		for _, out := range pair.PacketList() {
			if tried++; tried > maxRetransmits || !d.rtx.limit.Allow() {
				return sent
			}
			d.mu.Lock()
			layer, in, ok := d.mg.source(out)
			d.mu.Unlock()
			if !ok || layer < 0 || int(layer) >= MaxLayers {
				continue
			}
			n, ok := d.receiver.layers[layer].rtx.get(in, d.rtx.buf[:])
			if !ok || d.rtx.pkt.Unmarshal(d.rtx.buf[:n]) != nil {
				continue
			}
			pi := Packet{pkt: &d.rtx.pkt, layer: int32(layer), arrival: time.Now(), rtx: true}
			if !d.receiver.describe(&pi) {
				continue
			}
			if d.writeRTP(&pi) {
				sent++
			}
		}
	}
	return sent
}
