package forward

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// captureWriter is a webrtc.TrackLocalWriter that keeps what is written to it.
type captureWriter struct {
	keep    bool
	headers []rtp.Header
	descs   []codec.VP8Descriptor
	keys    []bool
}

func (w *captureWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if w.keep {
		w.headers = append(w.headers, *h)
		d, _ := codec.ParseVP8(payload)
		w.descs = append(w.descs, d)
		w.keys = append(w.keys, d.Start && d.Keyframe)
	}
	return h.MarshalSize() + len(payload), nil
}

func (w *captureWriter) Write(b []byte) (int, error) { return len(b), nil }

// nopRTCP counts the keyframe requests sent to the publisher, by SSRC.
type nopRTCP struct {
	plis     atomic.Int32
	lastSSRC atomic.Uint32
}

func (n *nopRTCP) WriteRTCP(pkts []rtcp.Packet) error {
	for _, p := range pkts {
		if pli, ok := p.(*rtcp.PictureLossIndication); ok {
			n.plis.Add(1)
			n.lastSSRC.Store(pli.MediaSSRC)
		}
	}
	return nil
}

var vp8Params = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}

// simulcastReceiver is a VP8 receiver with the given number of layers, layer i on SSRC 100+i.
func simulcastReceiver(w RTCPWriter, layers int) *Receiver {
	r := NewReceiver(ReceiverConfig{ID: "v", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8Params, RTCP: w})
	for i := 0; i < layers; i++ {
		r.StartLayer(i, uint32(100+i), []string{"q", "h", "f"}[i])
	}
	return r
}

func bind(d *DownTrack, ssrc uint32, pt uint8, w webrtc.TrackLocalWriter) {
	d.bound.Store(&binding{ssrc: ssrc, pt: pt, w: w})
}

// vp8Stream makes the packets of one simulcast layer as Chrome sends them: a 15-bit picture id, TL0PICIDX and
// temporal layer ids in the pattern 0,2,1,2.
type vp8Stream struct {
	layer  int32
	seq    uint16
	ts     uint32
	picID  uint16
	tl0    uint8
	frames int
}

// frame returns the packets of the next frame (two packets each).
func (s *vp8Stream) frame(key bool) []*rtp.Packet {
	tid := [4]uint8{0, 2, 1, 2}[s.frames%4]
	if key {
		tid = 0
	}
	if tid == 0 {
		s.tl0++
	}
	var pkts []*rtp.Packet
	for i := 0; i < 2; i++ {
		first := byte(0x90) // X, S
		if i > 0 {
			first = 0x80
		}
		vp8hdr := byte(0x01) // inter frame
		if key {
			vp8hdr = 0x00
		}
		payload := []byte{first, 0xe0, 0x80 | byte(s.picID>>8), byte(s.picID), s.tl0, tid << 6, vp8hdr, 0x00, 0x00, 0x9d, 0x01, 0x2a}
		payload = append(payload, make([]byte, 500)...)
		pkts = append(pkts, &rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: uint32(100 + s.layer), Marker: i == 1},
			Payload: payload,
		})
		s.seq++
	}
	s.ts += 3000
	s.picID = (s.picID + 1) & 0x7fff
	s.frames++
	return pkts
}

func send(r *Receiver, s *vp8Stream, key bool) {
	for _, p := range s.frame(key) {
		r.writePacket(&Packet{pkt: p, layer: s.layer, arrival: time.Now()}, len(p.Payload)+12)
	}
}

// checkContinuous asserts the subscriber's stream has no gap: consecutive sequence numbers, one picture id per
// frame, and timestamps that never go back.
func checkContinuous(t *testing.T, w *captureWriter) {
	t.Helper()
	for i := 1; i < len(w.headers); i++ {
		prev, h := w.headers[i-1], w.headers[i]
		if h.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence number %d after %d", i, h.SequenceNumber, prev.SequenceNumber)
		}
		if int32(h.Timestamp-prev.Timestamp) < 0 {
			t.Fatalf("packet %d: timestamp went back from %d to %d", i, prev.Timestamp, h.Timestamp)
		}
		wantPic := w.descs[i-1].PictureID
		if w.descs[i].Start {
			wantPic = (wantPic + 1) & 0x7fff
		}
		if w.descs[i].PictureID != wantPic {
			t.Fatalf("packet %d: picture id %d after %d (start of frame: %v)", i, w.descs[i].PictureID, w.descs[i-1].PictureID, w.descs[i].Start)
		}
		if h.SSRC != prev.SSRC || h.PayloadType != prev.PayloadType {
			t.Fatalf("packet %d: ssrc/pt changed", i)
		}
	}
}

// A subscriber starts on a keyframe, asks for one while it waits, and sees its own SSRC and payload type with
// sequence numbers that run on without a gap from wherever it started.
func TestDownTrackStartsOnKeyframe(t *testing.T) {
	pli := &nopRTCP{}
	r := simulcastReceiver(pli, 1)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	w := &captureWriter{keep: true}
	bind(d, 999, 100, w)
	r.AddDownTrack(d)

	s := &vp8Stream{seq: 65530, ts: 4294960000, picID: 32760} // all wrap during the test
	for i := 0; i < 3; i++ {
		send(r, s, false)
	}
	if len(w.headers) != 0 {
		t.Fatalf("forwarded %d inter-frame packets before any keyframe", len(w.headers))
	}
	if got := pli.plis.Load(); got != 1 {
		t.Errorf("sent %d keyframe requests while waiting, want 1 (throttled)", got)
	}
	send(r, s, true)
	for i := 0; i < 8; i++ {
		send(r, s, false)
	}
	if len(w.headers) != 18 || !w.keys[0] {
		t.Fatalf("forwarded %d packets after the keyframe (first a keyframe: %v), want 18", len(w.headers), len(w.keys) > 0 && w.keys[0])
	}
	if w.headers[0].SSRC != 999 || w.headers[0].PayloadType != 100 {
		t.Fatalf("ssrc %d pt %d, want 999 and 100", w.headers[0].SSRC, w.headers[0].PayloadType)
	}
	checkContinuous(t, w)

	// A packet older than the one the subscriber started on is not forwarded.
	old := s.frame(false)[0]
	old.SequenceNumber -= 40
	r.writePacket(&Packet{pkt: old, arrival: time.Now()}, 500)
	if len(w.headers) != 18 {
		t.Fatalf("forwarded a packet from before the start")
	}
	if got := r.Counters().PacketsOut; got != 18 {
		t.Errorf("packets forwarded counter = %d, want 18", got)
	}
}

// Switching up and down: the new layer starts on its keyframe (asked for on that layer's SSRC), the old layer
// stops at the same moment, and the subscriber's sequence numbers, picture ids and timestamps run on.
func TestDownTrackSwitchesLayers(t *testing.T) {
	pli := &nopRTCP{}
	r := simulcastReceiver(pli, 3)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	d.SetTargetLayer(0)

	layers := []*vp8Stream{
		{layer: 0, seq: 1000, ts: 50000, picID: 10},
		{layer: 1, seq: 20000, ts: 7000000, picID: 3000},
		{layer: 2, seq: 65000, ts: 4000000000, picID: 32700},
	}
	round := func(keys ...int32) {
		for _, s := range layers {
			key := false
			for _, k := range keys {
				key = key || k == s.layer
			}
			send(r, s, key)
		}
	}
	round(0)
	for i := 0; i < 5; i++ {
		round()
	}
	if cur, _ := d.Layers(); cur != 0 {
		t.Fatalf("current layer %d after the low keyframe, want 0", cur)
	}
	n := len(w.headers)

	d.SetTargetLayer(2)
	if pli.lastSSRC.Load() != 102 {
		t.Fatalf("keyframe request went to ssrc %d, want 102 (layer 2)", pli.lastSSRC.Load())
	}
	round()
	round()
	if cur, _ := d.Layers(); cur != 0 || len(w.headers) != n+4 {
		t.Fatalf("before layer 2's keyframe: on layer %d with %d new packets; want layer 0 going on (4)", cur, len(w.headers)-n)
	}
	n = len(w.headers)
	round(2) // layer 0's frame goes out, then layer 2's keyframe
	if cur, _ := d.Layers(); cur != 2 || len(w.headers) != n+4 || !w.keys[n+2] {
		t.Fatalf("after layer 2's keyframe: on layer %d, %d new packets, the third a keyframe: %v; want layer 2, 4, true",
			cur, len(w.headers)-n, len(w.keys) > n+2 && w.keys[n+2])
	}
	n += 2
	for i := 0; i < 5; i++ {
		round()
	}
	if got := len(w.headers) - n; got != 12 {
		t.Fatalf("forwarded %d packets on layer 2, want 12 (layers 0 and 1 are not forwarded any more)", got)
	}

	d.SetTargetLayer(1)
	round(1)
	round()
	if cur, _ := d.Layers(); cur != 1 {
		t.Fatalf("on layer %d after layer 1's keyframe, want 1", cur)
	}
	checkContinuous(t, w)
}

// With temporal layers above the base dropped, only base frames go out, still without a gap.
func TestDownTrackDropsTemporalLayers(t *testing.T) {
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	s := &vp8Stream{seq: 10, ts: 10, picID: 5}
	send(r, s, true)
	for i := 0; i < 3; i++ {
		send(r, s, false)
	}
	d.SetMaxTemporalLayer(0)
	for i := 0; i < 12; i++ {
		send(r, s, false)
	}
	// key + 3 frames at full rate, then 12 frames of which the pattern 0,2,1,2 keeps 3.
	if got := len(w.headers); got != 2*(4+3) {
		t.Fatalf("forwarded %d packets, want %d", got, 2*(4+3))
	}
	for i, desc := range w.descs[8:] {
		if desc.TID != 0 {
			t.Fatalf("packet %d after the limit has temporal layer %d", 8+i, desc.TID)
		}
	}
	checkContinuous(t, w)
}

// Keyframe requests are throttled to one per interval per layer but a request inside it is sent at its end.
func TestKeyframeRequestsThrottled(t *testing.T) {
	pli := &nopRTCP{}
	r := simulcastReceiver(pli, 2)
	defer r.Close()
	r.RequestKeyframe(0)
	r.RequestKeyframe(0)
	r.RequestKeyframe(0)
	r.RequestKeyframe(1)
	ly := &r.layers[0].pli
	ly.mu.Lock()
	pending := ly.pending
	ly.mu.Unlock()
	if sent := pli.plis.Load(); sent != 2 || !pending {
		t.Fatalf("after three requests on layer 0 and one on layer 1: %d sent, layer 0 pending %v; want 2 sent and one pending", sent, pending)
	}
	deadline := time.Now().Add(2 * time.Second)
	for pli.plis.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pli.plis.Load() != 3 {
		t.Fatal("the deferred keyframe request was never sent")
	}
}

// BenchmarkForward measures the SFU's own per-packet work: a packet in, rewritten for each of ten subscribers.
// The writer is a stub, so Pion's interceptors, SRTP and the socket are not counted (see BenchmarkForwardPion).
func BenchmarkForward(b *testing.B) {
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	for i := 0; i < 10; i++ {
		d := NewDownTrack(r, "PA_pub", nil)
		d.SetTargetLayer(0)
		bind(d, uint32(1000+i), 96, &captureWriter{})
		r.AddDownTrack(d)
	}
	benchInterFrames(b, r, 0)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/forwarded-pkt")
}

// benchInterFrames starts r's layer 0 on a keyframe, then times b.N packets of an inter frame through its fan-out,
// each padded with pad bytes of payload.
func benchInterFrames(b *testing.B, r *Receiver, pad int) {
	s := &vp8Stream{}
	send(r, s, true)
	pi := &Packet{pkt: s.frame(false)[0], arrival: time.Now()}
	pi.pkt.Payload = append(pi.pkt.Payload, make([]byte, pad)...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pi.pkt.SequenceNumber++
		pi.pkt.Timestamp += 3000
		r.writePacket(pi, 1000)
	}
	b.StopTimer()
}

// Past the SFU's latency budget quality steps down by whole frames, never at the cost of a keyframe: a late
// frame of an upper temporal layer is dropped whole (and the upper layers with it until the allocator decides
// again), a late base-layer frame and the rest of a frame already started still go, nothing asks the publisher
// for a keyframe, and the stream stays continuous. Late audio is sent. Keyframes carry the playout-delay
// extension.
func TestLatencyBudgetAndPlayoutDelay(t *testing.T) {
	pli := &nopRTCP{}
	r := simulcastReceiver(pli, 1)
	defer r.Close()
	r.budget = 5 * time.Millisecond
	r.setPlayoutDelay(150 * time.Millisecond)
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	w := &captureWriter{keep: true}
	d.bound.Store(&binding{ssrc: 999, pt: 96, playoutID: 7, w: w})
	r.AddDownTrack(d)

	s := &vp8Stream{seq: 100, ts: 1000, picID: 1}
	send(r, s, true)  // temporal layer 0
	send(r, s, false) // 2
	if len(w.headers) != 4 {
		t.Fatalf("forwarded %d packets, want 4", len(w.headers))
	}
	if ext := w.headers[0].GetExtension(7); len(ext) != 3 || ext[1]&0x0f != 0 || ext[2] != 15 {
		t.Fatalf("keyframe playout-delay extension %x, want min 0 max 150 ms", ext)
	}
	if w.headers[2].GetExtension(7) != nil {
		t.Fatalf("an inter frame carries the playout-delay extension")
	}
	plisBefore := pli.plis.Load()
	late := func(key bool) {
		for _, p := range s.frame(key) { // arrived 20 ms ago: past the budget
			r.writePacket(&Packet{pkt: p, arrival: time.Now().Add(-20 * time.Millisecond)}, len(p.Payload))
		}
	}

	late(false) // temporal layer 1, late: dropped whole
	if len(w.headers) != 4 || d.LateDrops() != 1 {
		t.Fatalf("a late frame of temporal layer 1: %d packets forwarded in all, %d late; want it dropped (4) and counted (1)",
			len(w.headers), d.LateDrops())
	}
	send(r, s, false) // temporal layer 2, on time: the upper layers stay off until the allocator says
	if len(w.headers) != 4 {
		t.Fatalf("the next upper-layer frame went out (%d packets): want the upper layers off after a late one", len(w.headers))
	}
	late(false) // temporal layer 0, late: sent, as its loss would cost a keyframe
	if len(w.headers) != 6 || d.LateDrops() != 2 {
		t.Fatalf("a late base-layer frame: %d packets, %d late; want it sent (6) and counted (2)", len(w.headers), d.LateDrops())
	}
	if cur, _ := d.Layers(); cur != 0 {
		t.Fatalf("after late frames the video is on layer %d, want 0: no restart", cur)
	}

	// A frame whose first packet was on time and the rest late goes out whole.
	pkts := s.frame(false) // temporal layer 2
	d.SetMaxTemporalLayer(AllTemporal)
	r.writePacket(&Packet{pkt: pkts[0], arrival: time.Now()}, 500)
	r.writePacket(&Packet{pkt: pkts[1], arrival: time.Now().Add(-20 * time.Millisecond)}, 500)
	if len(w.headers) != 8 {
		t.Fatalf("a frame started on time and finished late: %d packets in all, want 8 (the frame whole)", len(w.headers))
	}
	time.Sleep(KeyframeInterval + 50*time.Millisecond) // a throttled request would have gone out by now
	if pli.plis.Load() != plisBefore {
		t.Fatalf("late frames asked the publisher for %d keyframes, want none", pli.plis.Load()-plisBefore)
	}
	checkContinuous(t, w)

	// Late audio is sent.
	a := NewReceiver(ReceiverConfig{ID: "a", Kind: webrtc.RTPCodecTypeAudio, Codec: webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}, PayloadType: 111},
		RTCP: &nopRTCP{}, Budget: 5 * time.Millisecond})
	a.StartLayer(0, 5, "")
	da := NewDownTrack(a, "PA_pub", nil)
	wa := &captureWriter{keep: true}
	bind(da, 998, 111, wa)
	a.AddDownTrack(da)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 5}, Payload: []byte{0xf8, 1, 2}}
	a.writePacket(&Packet{pkt: pkt, arrival: time.Now()}, 15)
	pkt.SequenceNumber++
	a.writePacket(&Packet{pkt: pkt, arrival: time.Now().Add(-20 * time.Millisecond)}, 15)
	if len(wa.headers) != 2 || da.LateDrops() != 1 {
		t.Fatalf("late audio: %d sent, %d late; want it sent and counted", len(wa.headers), da.LateDrops())
	}
}

// BenchmarkForwardSimulcast: one packet of each of three layers in, ten subscribers (four on the top layer,
// three on each other) out, with the latency budget check and the latency histogram on, as in the server.
func BenchmarkForwardSimulcast(b *testing.B) {
	r := simulcastReceiver(&nopRTCP{}, 3)
	defer r.Close()
	r.budget = 5 * time.Millisecond
	r.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.ExponentialBucketsRange(10e-6, 0.1, 25)})
	streams := []*vp8Stream{{layer: 0}, {layer: 1}, {layer: 2}}
	for i, layer := range []int32{2, 2, 2, 2, 1, 1, 1, 0, 0, 0} {
		d := NewDownTrack(r, "PA_pub", nil)
		d.SetTargetLayer(layer)
		bind(d, uint32(1000+i), 96, &captureWriter{})
		r.AddDownTrack(d)
	}
	var pis []*Packet
	for _, s := range streams {
		send(r, s, true)
		pis = append(pis, &Packet{pkt: s.frame(false)[0], layer: s.layer})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, pi := range pis {
			pi.pkt.SequenceNumber++
			pi.pkt.Timestamp += 3000
			pi.arrival = time.Now()
			r.writePacket(pi, 1000)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*3), "ns/packet-in")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/forwarded-pkt")
}

// A long steady stream keeps flowing past the 16-bit wrap of its sequence numbers, twice over.
func TestDownTrackLongStream(t *testing.T) {
	r := NewReceiver(ReceiverConfig{ID: "a", Kind: webrtc.RTPCodecTypeAudio, Codec: webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}, PayloadType: 111}, RTCP: &nopRTCP{}})
	r.StartLayer(0, 5, "")
	d := NewDownTrack(r, "PA_pub", nil)
	w := &captureWriter{}
	bind(d, 999, 111, w)
	r.AddDownTrack(d)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1000, Timestamp: 0, SSRC: 5}, Payload: []byte{0xf8, 1, 2}}
	pi := &Packet{pkt: pkt}
	const n = 140_000
	for i := 0; i < n; i++ {
		pi.arrival = time.Now()
		r.writePacket(pi, 15)
		pkt.SequenceNumber++
		pkt.Timestamp += 960
	}
	if got := d.Sent(); got != n {
		t.Fatalf("forwarded %d of %d packets", got, n)
	}
	// A packet that comes late (reordered upstream) still has its place.
	w.keep = true
	last := d.mg.lastOutSeq
	pkt.SequenceNumber -= 3
	r.writePacket(pi, 15)
	if len(w.headers) != 1 || w.headers[0].SequenceNumber != last-2 {
		t.Fatalf("late packet: %d written, sequence %v; want one at %d", len(w.headers), w.headers, last-2)
	}
}

// A packet lost upstream and retransmitted after a temporal-layer drop is still forwarded, in its own place.
func TestDownTrackLateAfterDrop(t *testing.T) {
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	d.SetMaxTemporalLayer(1)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	s := &vp8Stream{seq: 10, ts: 10, picID: 5}
	send(r, s, true)     // seq 10, 11 (TID 0)
	f1 := s.frame(false) // seq 12, 13: TID 2 (dropped)
	f2 := s.frame(false) // seq 14, 15: TID 1 (forwarded)
	f3 := s.frame(false) // seq 16, 17: TID 2 (dropped)
	for _, p := range f1 {
		r.writePacket(&Packet{pkt: p, arrival: time.Now()}, 500)
	}
	r.writePacket(&Packet{pkt: f2[1], arrival: time.Now()}, 500) // 15 arrives, 14 is lost for now
	for _, p := range f3 {
		r.writePacket(&Packet{pkt: p, arrival: time.Now()}, 500)
	}
	r.writePacket(&Packet{pkt: f2[0], arrival: time.Now()}, 500) // 14, retransmitted late
	if len(w.headers) != 4 {
		t.Fatalf("forwarded %d packets, want 4 (the keyframe, 15, then late 14)", len(w.headers))
	}
	late, prev := w.headers[3], w.headers[2]
	if late.SequenceNumber != prev.SequenceNumber-1 {
		t.Fatalf("late packet got sequence number %d; the packet after it has %d: want one less", late.SequenceNumber, prev.SequenceNumber)
	}
	if w.descs[3].PictureID != w.descs[2].PictureID {
		t.Fatalf("late packet picture id %d, its frame's other packet %d", w.descs[3].PictureID, w.descs[2].PictureID)
	}
}

// A padding-only packet after the start of a frame does not take a picture id.
func TestDownTrackPaddingKeepsPictureIDs(t *testing.T) {
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	s := &vp8Stream{seq: 10, ts: 10, picID: 5}
	send(r, s, true)
	pad := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: s.ts, SSRC: 100, Padding: true, PaddingSize: 4}}
	s.seq++
	r.writePacket(&Packet{pkt: pad, arrival: time.Now()}, 16)
	send(r, s, false)
	checkContinuous(t, w)
	if len(w.headers) != 4 {
		t.Fatalf("forwarded %d packets, want 4", len(w.headers))
	}
}

// forwardFrame passes the packets of the stream's next frame through Receiver.Forward, as they come off the wire.
func forwardFrame(t *testing.T, r *Receiver, s *vp8Stream, key bool) {
	t.Helper()
	pkts := s.frame(key)
	i := 0
	err := r.Forward(int(s.layer), func(b []byte) (int, error) {
		if i == len(pkts) {
			return 0, io.EOF
		}
		raw, err := pkts[i].Marshal()
		i++
		if err != nil {
			return 0, err
		}
		return copy(b, raw), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A subscriber's NACK is answered from the layer's retransmission buffer, shared by every subscriber: the lost
// packet goes out again with the sequence number, timestamp and picture id it had, however the subscriber's
// stream was rewritten; a packet never sent to this subscriber (dropped, or of another layer) is not.
func TestNACKAnsweredFromSharedBuffer(t *testing.T) {
	r := simulcastReceiver(&nopRTCP{}, 2)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(1)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	low, high := &vp8Stream{layer: 0, seq: 50}, &vp8Stream{layer: 1, seq: 7000, picID: 300}
	forwardFrame(t, r, low, true)
	forwardFrame(t, r, high, true)
	forwardFrame(t, r, high, false) // temporal layer 2
	d.SetMaxTemporalLayer(1)
	forwardFrame(t, r, high, false) // temporal layer 1
	forwardFrame(t, r, high, false) // temporal layer 2: dropped
	forwardFrame(t, r, high, false) // temporal layer 0
	if len(w.headers) != 8 {
		t.Fatalf("forwarded %d packets, want 8", len(w.headers))
	}
	sent := append([]rtp.Header(nil), w.headers...)
	descs := append([]codec.VP8Descriptor(nil), w.descs...)
	nack := func(seqs ...uint16) {
		var pairs []rtcp.NackPair
		for _, s := range seqs {
			pairs = append(pairs, rtcp.NackPair{PacketID: s})
		}
		d.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 999, Nacks: pairs}})
	}
	nack(sent[2].SequenceNumber, sent[7].SequenceNumber, sent[7].SequenceNumber+1)
	if len(w.headers) != 10 {
		t.Fatalf("after a NACK of two sent packets and one not yet sent: %d packets in all, want 10", len(w.headers))
	}
	for i, k := range []int{2, 7} {
		got, want := w.headers[8+i], sent[k]
		if got.SequenceNumber != want.SequenceNumber || got.Timestamp != want.Timestamp || got.SSRC != want.SSRC ||
			w.descs[8+i].PictureID != descs[k].PictureID {
			t.Errorf("retransmission of packet %d: seq %d ts %d pic %d, want seq %d ts %d pic %d", k,
				got.SequenceNumber, got.Timestamp, w.descs[8+i].PictureID, want.SequenceNumber, want.Timestamp, descs[k].PictureID)
		}
	}
	if got := r.Counters().NACKs; got != 3 {
		t.Errorf("NACK counter %d, want 3", got)
	}
}

// A subscriber that keeps asking for retransmissions (a broken or hostile client, or one whose link collapsed)
// gets at most rtxRate packets a second again, whatever it asks: it cannot turn the SFU into an amplifier.
func TestNACKStormBounded(t *testing.T) {
	r := simulcastReceiver(&nopRTCP{}, 1)
	defer r.Close()
	d := NewDownTrack(r, "PA_pub", nil)
	d.SetTargetLayer(0)
	w := &captureWriter{keep: true}
	bind(d, 999, 96, w)
	r.AddDownTrack(d)
	s := &vp8Stream{}
	forwardFrame(t, r, s, true)
	for i := 0; i < 200; i++ {
		forwardFrame(t, r, s, false)
	}
	sent := len(w.headers)
	first := w.headers[0].SequenceNumber
	began := time.Now()
	for i := 0; i < 100; i++ { // 100 NACKs of 64 packets each, at once
		var pairs []rtcp.NackPair
		for k := 0; k < 4; k++ {
			pairs = append(pairs, rtcp.NackPair{PacketID: first + uint16(k*17), LostPackets: 0xffff})
		}
		d.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 999, Nacks: pairs}})
	}
	limit := rtxBurst + int(time.Since(began).Seconds()*rtxRate) + 1 // the bucket refills while the storm lasts
	if again := len(w.headers) - sent; again == 0 || again > limit {
		t.Fatalf("a storm of 6,400 NACKed packets had %d sent again; want some, at most %d", again, limit)
	}
}
