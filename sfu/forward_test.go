package sfu

import (
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// captureWriter is a webrtc.TrackLocalWriter that keeps the headers written to it.
type captureWriter struct {
	headers []rtp.Header
	keep    bool
	n       int
}

func (w *captureWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.n++
	if w.keep {
		w.headers = append(w.headers, *h)
	}
	return h.MarshalSize() + len(payload), nil
}

func (w *captureWriter) Write(b []byte) (int, error) { return len(b), nil }

type nopRTCP struct{ plis atomic.Int32 }

func (n *nopRTCP) WriteRTCP(pkts []rtcp.Packet) error {
	for _, p := range pkts {
		if _, ok := p.(*rtcp.PictureLossIndication); ok {
			n.plis.Add(1)
		}
	}
	return nil
}

func vp8Receiver(w rtcpWriter) *Receiver {
	return newReceiver("v", webrtc.RTPCodecTypeVideo,
		webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96},
		1234, w)
}

func bind(d *DownTrack, ssrc uint32, pt uint8, w webrtc.TrackLocalWriter) {
	d.bound.Store(&binding{ssrc: ssrc, pt: pt, w: w})
}

func vp8Packet(seq uint16, ts uint32, key bool) *rtp.Packet {
	first := byte(0x01) // inter frame
	if key {
		first = 0x00
	}
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 1234, Marker: true},
		Payload: append([]byte{0x10, first, 0x9d, 0x01, 0x2a}, make([]byte, 1000)...),
	}
}

// A subscriber starts on a keyframe, asks for one while it waits, and sees its own SSRC and payload type with
// sequence numbers that run on without a gap from wherever it started.
func TestDownTrackStartsOnKeyframeAndRewrites(t *testing.T) {
	pli := &nopRTCP{}
	r := vp8Receiver(pli)
	defer r.close()
	d := newDownTrack(r, "PA_pub", nil)
	w := &captureWriter{keep: true}
	bind(d, 999, 100, w)
	r.addDownTrack(d)

	seq, ts := uint16(65530), uint32(4294960000) // both wrap during the test
	for i := 0; i < 3; i++ {
		r.writePacket(vp8Packet(seq, ts, false), 1000)
		seq++
		ts += 3000
	}
	if len(w.headers) != 0 {
		t.Fatalf("forwarded %d inter-frame packets before any keyframe", len(w.headers))
	}
	if got := pli.plis.Load(); got != 1 {
		t.Errorf("sent %d keyframe requests while waiting, want 1 (throttled)", got)
	}
	for i := 0; i < 10; i++ {
		r.writePacket(vp8Packet(seq, ts, i == 0), 1000)
		seq++
		ts += 3000
	}
	if len(w.headers) != 10 {
		t.Fatalf("forwarded %d packets after the keyframe, want 10", len(w.headers))
	}
	for i, h := range w.headers {
		if h.SSRC != 999 || h.PayloadType != 100 {
			t.Fatalf("packet %d: ssrc %d pt %d, want 999 and 100", i, h.SSRC, h.PayloadType)
		}
		if i > 0 {
			if h.SequenceNumber != w.headers[i-1].SequenceNumber+1 {
				t.Fatalf("packet %d: sequence %d after %d", i, h.SequenceNumber, w.headers[i-1].SequenceNumber)
			}
			if h.Timestamp-w.headers[i-1].Timestamp != 3000 {
				t.Fatalf("packet %d: timestamp step %d, want 3000", i, h.Timestamp-w.headers[i-1].Timestamp)
			}
		}
	}
	// A packet older than the one the subscriber started on is not forwarded.
	r.writePacket(vp8Packet(seq-20, ts-60000, false), 1000)
	if len(w.headers) != 10 {
		t.Fatalf("forwarded a packet from before the start")
	}
	if got := r.stats.packetsOut.Load(); got != 10 {
		t.Errorf("packets forwarded counter = %d, want 10", got)
	}
}

// Keyframe requests are throttled to one per interval but a request inside the interval is sent at its end.
func TestKeyframeRequestsThrottled(t *testing.T) {
	pli := &nopRTCP{}
	r := vp8Receiver(pli)
	r.RequestKeyframe()
	r.RequestKeyframe()
	r.RequestKeyframe()
	r.pliMu.Lock()
	sent, pending := pli.plis.Load(), r.pliPending
	r.pliMu.Unlock()
	if sent != 1 || !pending {
		t.Fatalf("after three requests: %d sent, pending %v; want 1 sent and one pending", sent, pending)
	}
	r.close()
}

// BenchmarkForward measures the SFU's own per-packet work: a packet in, rewritten for each of ten subscribers.
// The writer is a stub, so Pion's interceptors, SRTP and the socket are not counted (see BenchmarkForwardPion).
func BenchmarkForward(b *testing.B) {
	r := vp8Receiver(&nopRTCP{})
	for i := 0; i < 10; i++ {
		d := newDownTrack(r, "PA_pub", nil)
		bind(d, uint32(1000+i), 96, &captureWriter{})
		r.addDownTrack(d)
	}
	pkt := vp8Packet(0, 0, true)
	r.writePacket(pkt, 1000)
	pkt = vp8Packet(0, 0, false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		r.writePacket(pkt, 1000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/forwarded-pkt")
}
