package audio_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/opus"
)

// silencer is a processor that zeroes its frames: what comes out of the pipeline shows whether it ran.
type silencer struct{ closed bool }

func (s *silencer) Process(f []int16) error {
	clear(f)
	return nil
}
func (s *silencer) Close() error { s.closed = true; return nil }

// failing fails on its first frame.
type failing struct{}

func (failing) Process([]int16) error { return errors.New("broken processor") }
func (failing) Close() error          { return nil }

// blocking holds the pipeline until release is closed.
type blocking struct{ release chan struct{} }

func (b blocking) Process([]int16) error { <-b.release; return nil }
func (b blocking) Close() error          { return nil }

// tone returns 20 ms Opus packets of a loud 440 Hz tone.
func tone(t *testing.T, count int) [][]byte {
	t.Helper()
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo: no Opus encoder to make test packets")
	}
	enc, err := opus.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 960)
	out := make([][]byte, 0, count)
	buf := make([]byte, 1500)
	for i := range count {
		for j := range pcm {
			pcm[j] = int16(12000 * math.Sin(2*math.Pi*440*float64(i*960+j)/48000))
		}
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	return out
}

func rtpBytes(t *testing.T, seq uint16, payload []byte) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: 1000 + uint32(seq)*960, SSRC: 42, Marker: seq == 0}, Payload: payload}
	if err := p.SetExtension(1, []byte{0x85}); err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// harness runs a pipeline with the real codecs and collects what it emits.
type harness struct {
	p       *audio.Pipeline
	emitted chan rtp.Packet
	errs    chan error
	cancel  context.CancelFunc
	done    chan struct{}
}

func newHarness(t *testing.T, withEncoder bool) *harness {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{emitted: make(chan rtp.Packet, 256), errs: make(chan error, 4), done: make(chan struct{})}
	cfg := audio.PipelineConfig{
		Decoder: dec,
		Emit: func(pkt *rtp.Packet, _ time.Time) {
			c := *pkt.Clone()
			h.emitted <- c
		},
		OnError: func(err error) { h.errs <- err },
	}
	if withEncoder {
		cfg.NewEncoder = opus.NewEncoder
	}
	h.p = audio.NewPipeline(cfg)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		h.p.Run(ctx)
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func (h *harness) next(t *testing.T) rtp.Packet {
	t.Helper()
	select {
	case p := <-h.emitted:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("the pipeline emitted nothing for 5 s")
		return rtp.Packet{}
	}
}

// peak decodes a packet and returns its loudest sample.
func peak(t *testing.T, payload []byte) int {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, 5760)
	n, err := dec.Decode(payload, pcm)
	if err != nil {
		t.Fatal(err)
	}
	m := 0
	for _, v := range pcm[:n] {
		m = max(m, int(math.Abs(float64(v))))
	}
	return m
}

// TestPipelineProcessesInPlace: with a processor on, the pipeline emits every packet with its own header
// (sequence number, timestamp, SSRC, marker, extensions) and a new payload carrying the processed audio; with it
// off again, packets are the caller's to forward.
func TestPipelineProcessesInPlace(t *testing.T) {
	pkts := tone(t, 20)
	h := newHarness(t, true)
	sil := &silencer{}
	if err := h.p.SetChain([]audio.Processor{sil}); err != nil {
		t.Fatal(err)
	}
	if !h.p.Processing() {
		t.Fatal("Processing() is false after SetChain")
	}
	for i := range 10 {
		raw := rtpBytes(t, uint16(i), pkts[i])
		if !h.p.Push(raw, time.Now()) {
			t.Fatalf("packet %d: Push returned false while processing", i)
		}
		got := h.next(t)
		var in rtp.Packet
		if err := in.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if got.SequenceNumber != in.SequenceNumber || got.Timestamp != in.Timestamp || got.SSRC != in.SSRC || got.Marker != in.Marker ||
			!bytes.Equal(got.GetExtension(1), in.GetExtension(1)) {
			t.Fatalf("packet %d: header changed: got %+v, sent %+v", i, got.Header, in.Header)
		}
		if bytes.Equal(got.Payload, in.Payload) {
			t.Fatalf("packet %d: payload unchanged while processing", i)
		}
		if i >= 3 { // past the encoder's first frames
			if p := peak(t, got.Payload); p > 300 {
				t.Fatalf("packet %d: processed audio peaks at %d, want near silence", i, p)
			}
		}
	}
	if st := h.p.Stats(); st.Processed != 10 {
		t.Fatalf("stats %+v, want 10 processed", st)
	}
	if err := h.p.SetChain(nil); err != nil {
		t.Fatal(err)
	}
	if h.p.Push(rtpBytes(t, 10, pkts[10]), time.Now()) {
		t.Fatal("Push took a packet with processing off and no taps")
	}
	h.stop()
	if !sil.closed {
		t.Fatal("the replaced processor was not closed")
	}
}

// TestPipelinePassesMutedDTXAndLate: muted tracks, DTX packets and packets older than the last one processed go
// out unchanged.
func TestPipelinePassesMutedDTXAndLate(t *testing.T) {
	pkts := tone(t, 8)
	h := newHarness(t, true)
	if err := h.p.SetChain([]audio.Processor{&silencer{}}); err != nil {
		t.Fatal(err)
	}
	send := func(seq uint16, payload []byte) (sent, got rtp.Packet) {
		raw := rtpBytes(t, seq, payload)
		if !h.p.Push(raw, time.Now()) {
			t.Fatalf("seq %d: not taken", seq)
		}
		_ = sent.Unmarshal(raw)
		return sent, h.next(t)
	}
	if in, out := send(0, []byte{0xf8}); !bytes.Equal(in.Payload, out.Payload) { // a 1-byte DTX frame
		t.Fatal("DTX packet changed")
	}
	if in, out := send(5, pkts[5]); bytes.Equal(in.Payload, out.Payload) {
		t.Fatal("a normal packet was not processed")
	}
	if in, out := send(4, pkts[4]); !bytes.Equal(in.Payload, out.Payload) { // late: behind seq 5
		t.Fatal("a late packet went through the processors")
	}
	h.p.SetMuted(true)
	if in, out := send(6, pkts[6]); !bytes.Equal(in.Payload, out.Payload) {
		t.Fatal("a muted track's packet changed")
	}
	h.p.SetMuted(false)
	if in, out := send(7, pkts[7]); bytes.Equal(in.Payload, out.Payload) {
		t.Fatal("processing did not resume after unmute")
	}
	if st := h.p.Stats(); st.Passed != 3 || st.Processed != 2 {
		t.Fatalf("stats %+v, want 3 passed and 2 processed", st)
	}
}

// TestPipelineNeverBlocksTheReader: a stuck processor fills the queue; further packets are refused at once, for
// the caller to forward unprocessed.
func TestPipelineNeverBlocksTheReader(t *testing.T) {
	pkts := tone(t, 1)
	h := newHarness(t, true)
	b := blocking{release: make(chan struct{})}
	if err := h.p.SetChain([]audio.Processor{b}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	start := time.Now()
	for i := range 20 {
		if !h.p.Push(rtpBytes(t, uint16(i), pkts[0]), time.Now()) {
			refused++
		}
	}
	elapsed := time.Since(start)
	close(b.release)
	// One packet is in the processor and the queue holds 8; the rest are refused.
	if refused < 10 || refused > 12 {
		t.Fatalf("%d of 20 packets refused, want 11 (queue of 8, one in work)", refused)
	}
	if st := h.p.Stats(); st.Overflowed != uint64(refused) {
		t.Fatalf("overflow counted %d, refused %d", st.Overflowed, refused)
	}
	t.Logf("20 pushes against a stuck processor took %v", elapsed)
}

// TestTapGetsPCMAndDropsWhenFull: a tap receives each packet's PCM; one that is not read drops frames instead of
// holding the pipeline up; the tap closes when the pipeline stops.
func TestTapGetsPCMAndDropsWhenFull(t *testing.T) {
	pkts := tone(t, 10)
	h := newHarness(t, false) // no encoder: a build without cgo still taps
	tap := h.p.AddTap(2)
	for i := range 10 {
		if h.p.Push(rtpBytes(t, uint16(i), pkts[i]), time.Now()) {
			t.Fatal("Push took a packet to emit with processing off")
		}
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tap.Dropped() < 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := tap.Dropped(); d != 8 {
		t.Fatalf("tap dropped %d frames, want 8 (10 sent, room for 2)", d)
	}
	f := <-tap.C
	if len(f.PCM) != 960 || f.RTPTime != 1000 {
		t.Fatalf("first frame: %d samples at %d, want 960 at 1000", len(f.PCM), f.RTPTime)
	}
	h.stop()
	<-tap.C // the second frame
	if _, ok := <-tap.C; ok {
		t.Fatal("tap still open after the pipeline stopped")
	}
	if len(h.emitted) != 0 {
		t.Fatal("a tap-only pipeline emitted packets")
	}
}

// TestProcessorFailureTurnsProcessingOff: a failing processor is reported, processing stops, and the packet
// goes out as it came.
func TestProcessorFailureTurnsProcessingOff(t *testing.T) {
	pkts := tone(t, 1)
	h := newHarness(t, true)
	if err := h.p.SetChain([]audio.Processor{failing{}}); err != nil {
		t.Fatal(err)
	}
	raw := rtpBytes(t, 0, pkts[0])
	h.p.Push(raw, time.Now())
	got := h.next(t)
	if !bytes.Equal(got.Payload, pkts[0]) {
		t.Fatal("the packet was changed by a failed chain")
	}
	select {
	case err := <-h.errs:
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("OnError not called")
	}
	if h.p.Processing() {
		t.Fatal("still processing after the processor failed")
	}
}

// TestSetChainWithoutEncoder: a server that cannot encode refuses processing with ErrUnavailable.
func TestSetChainWithoutEncoder(t *testing.T) {
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	p := audio.NewPipeline(audio.PipelineConfig{Decoder: dec, Emit: func(*rtp.Packet, time.Time) {}})
	s := &silencer{}
	err = p.SetChain([]audio.Processor{s})
	if !errors.Is(err, audio.ErrUnavailable) || p.Processing() || !s.closed {
		t.Fatalf("SetChain without an encoder: %v, processing %v, processor closed %v", err, p.Processing(), s.closed)
	}
}

// TestRegistry: names, unknown names, and Chain closing what it made when a later name fails.
func TestRegistry(t *testing.T) {
	reg := audio.NewRegistry()
	var made []*silencer
	var mu sync.Mutex
	reg.Register("zero", "zeroes audio", func() (audio.Processor, error) {
		mu.Lock()
		defer mu.Unlock()
		s := &silencer{}
		made = append(made, s)
		return s, nil
	})
	if got := reg.Names(); len(got) != 1 || got[0] != "zero" {
		t.Fatalf("names %v", got)
	}
	if _, err := reg.Chain([]string{"zero", "nope"}); !errors.Is(err, audio.ErrUnknownProcessor) {
		t.Fatalf("unknown name: %v", err)
	}
	if len(made) != 1 || !made[0].closed {
		t.Fatal("Chain did not close the processor it made before failing")
	}
}

// panicking is a decoder that panics, as a decoder bug on hostile input would.
type panicking struct{}

func (panicking) Decode([]byte, []int16) (int, error) { panic("index out of range") }

// TestDecoderPanicCostsOnlyThePacket: a decoder that panics on a publisher's bytes leaves the packet unprocessed
// and the pipeline running.
func TestDecoderPanicCostsOnlyThePacket(t *testing.T) {
	emitted := make(chan rtp.Packet, 4)
	p := audio.NewPipeline(audio.PipelineConfig{Decoder: panicking{}, NewEncoder: func() (audio.Encoder, error) { return nil, nil },
		Emit: func(pkt *rtp.Packet, _ time.Time) { emitted <- *pkt.Clone() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := p.SetChain([]audio.Processor{&silencer{}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		p.Push(rtpBytes(t, uint16(i), []byte{0xfc, 1, 2, 3}), time.Now())
		select {
		case got := <-emitted:
			if !bytes.Equal(got.Payload, []byte{0xfc, 1, 2, 3}) {
				t.Fatalf("packet %d changed", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d: nothing emitted after the decoder panicked", i)
		}
	}
	if st := p.Stats(); st.Errors != 2 {
		t.Fatalf("stats %+v, want 2 errors", st)
	}
}
