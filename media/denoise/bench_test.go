package denoise

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
	"github.com/edge-sfu/sfu/media/opus"
)

// The benchmarks measure the per-packet cost of the audio work on one published track: 20 ms of 48 kHz mono
// (one Opus packet as browsers send it) per iteration. Besides ns/op they report us/frame (the same figure, in
// microseconds per 20 ms frame) and streams/core: how many real-time streams one core could carry doing only
// this work (20000 us of audio per us of work). Every benchmark uses b.Loop, so its setup (espeak-ng, Opus
// encoding, compiling RNNoise) runs once and is not timed.

// packetSamples is one 20 ms packet at 48 kHz.
const packetSamples = 2 * audio.FrameSamples

// benchFrames cuts the noisy speech of the test scene into 20 ms frames.
func benchFrames(b *testing.B) [][]int16 {
	b.Helper()
	noisy := scene(b).Noisy
	var frames [][]int16
	for off := 0; off+packetSamples <= len(noisy); off += packetSamples {
		frames = append(frames, noisy[off:off+packetSamples])
	}
	if len(frames) == 0 {
		b.Fatal("the scene is shorter than one packet")
	}
	return frames
}

// benchPackets encodes the frames with libopus, as a publisher would; it skips the benchmark without cgo.
func benchPackets(b *testing.B, frames [][]int16) [][]byte {
	b.Helper()
	if !opus.EncoderAvailable {
		b.Skip("this build has no Opus encoder (no cgo)")
	}
	enc, err := opus.NewEncoder()
	if err != nil {
		b.Fatal(err)
	}
	var out [1275]byte
	packets := make([][]byte, 0, len(frames))
	for _, f := range frames {
		n, err := enc.Encode(f, out[:])
		if err != nil {
			b.Fatal(err)
		}
		packets = append(packets, append([]byte(nil), out[:n]...))
	}
	return packets
}

// reportPerFrame adds us/frame and streams/core; each iteration handled one 20 ms frame.
func reportPerFrame(b *testing.B) {
	if b.N == 0 {
		return
	}
	us := float64(b.Elapsed().Nanoseconds()) / 1e3 / float64(b.N)
	b.ReportMetric(us, "us/frame")
	if us > 0 {
		b.ReportMetric(20000/us, "streams/core")
	}
}

func BenchmarkOpusDecode(b *testing.B) {
	packets := benchPackets(b, benchFrames(b))
	modes := map[string]int{}
	for _, p := range packets {
		switch cfg := p[0] >> 3; {
		case cfg < 12:
			modes["silk"]++
		case cfg < 16:
			modes["hybrid"]++
		default:
			modes["celt"]++
		}
	}
	b.Logf("%d packets of noisy speech, mean %d bytes; modes %v", len(packets), meanLen(packets), modes)
	dec, err := opus.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	pcm := make([]int16, 5760)
	i := 0
	for b.Loop() {
		n, err := dec.Decode(packets[i], pcm)
		if err != nil || n != packetSamples {
			b.Fatalf("packet %d: %d samples, %v", i, n, err)
		}
		if i++; i == len(packets) {
			i = 0
		}
	}
	reportPerFrame(b)
}

func BenchmarkOpusEncode(b *testing.B) {
	frames := benchFrames(b)
	if !opus.EncoderAvailable {
		b.Skip("this build has no Opus encoder (no cgo)")
	}
	enc, err := opus.NewEncoder()
	if err != nil {
		b.Fatal(err)
	}
	var out [1275]byte
	i := 0
	for b.Loop() {
		if _, err := enc.Encode(frames[i], out[:]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(frames) {
			i = 0
		}
	}
	reportPerFrame(b)
}

// benchDenoiser runs p over the noisy speech, 20 ms (two 10 ms Process calls) per iteration. Each frame is
// copied into a scratch buffer first, so the input stays noisy however often it cycles.
func benchDenoiser(b *testing.B, p audio.Processor) {
	frames := benchFrames(b)
	scratch := make([]int16, packetSamples)
	i := 0
	for b.Loop() {
		copy(scratch, frames[i])
		for off := 0; off < packetSamples; off += audio.FrameSamples {
			if err := p.Process(scratch[off : off+audio.FrameSamples]); err != nil {
				b.Fatal(err)
			}
		}
		if i++; i == len(frames) {
			i = 0
		}
	}
	reportPerFrame(b)
}

func loadRNNoise(b *testing.B) *RNNoise {
	b.Helper()
	e, err := LoadRNNoise(context.Background(), audiotest.RNNoiseDir(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func BenchmarkRNNoise(b *testing.B) {
	p, err := loadRNNoise(b).New()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	benchDenoiser(b, p)
}

func BenchmarkSpeex(b *testing.B) {
	if !SpeexAvailable {
		b.Skip("this build has no cgo")
	}
	p, err := NewSpeex(SpeexSuppressDB)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	benchDenoiser(b, p)
}

// BenchmarkRNNoiseInstance is the cost of one more RNNoise stream: an iteration instantiates the compiled
// module and closes it again, so B/op is what making one allocates. bytes/stream is what a stream keeps: the Go
// heap still live, after a collection, per denoiser while 16 of them are open (the instance's linear memory is
// a Go slice in wazero, so it is counted); wasm-bytes/stream is that linear memory alone.
func BenchmarkRNNoiseInstance(b *testing.B) {
	e := loadRNNoise(b)
	b.ReportAllocs()
	for b.Loop() {
		p, err := e.New()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
	}

	const live = 16
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	procs := make([]audio.Processor, live)
	for i := range procs {
		p, err := e.New()
		if err != nil {
			b.Fatal(err)
		}
		procs[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	wasm := procs[0].(*rnnoiseDenoiser).mem.Size()
	for _, p := range procs {
		_ = p.Close()
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/live, "bytes/stream")
	b.ReportMetric(float64(wasm), "wasm-bytes/stream")
}

// BenchmarkPipeline is the whole per-packet path with RNNoise on: an RTP packet is Pushed to a running
// audio.Pipeline, which decodes it, denoises it and encodes it again, and Emits it.
//
// serial waits for each packet's Emit before it pushes the next, so an iteration is one packet's latency
// through the pipeline, including the hand-over to and from the pipeline's goroutine. queued keeps the
// pipeline's queue (less one slot) of packets in flight, as a publisher's burst would, so an iteration is its throughput.
func BenchmarkPipeline(b *testing.B) {
	frames := benchFrames(b)
	packets := benchPackets(b, frames)
	e := loadRNNoise(b)
	const queue = 8
	for _, den := range []struct {
		name string
		make func() (audio.Processor, error)
	}{{NameSpeex, func() (audio.Processor, error) { return NewSpeex(SpeexSuppressDB) }}, {NameRNNoise, e.New}} {
		for _, mode := range []string{"serial", "queued"} {
			b.Run(den.name+"/"+mode, func(b *testing.B) {
				inFlight := 1
				if mode == "queued" {
					// One slot short of the queue: the pipeline frees a packet's slot just after its Emit.
					inFlight = queue - 1
				}
				benchPipeline(b, den.make, packets, inFlight, queue)
			})
		}
	}
}

func benchPipeline(b *testing.B, newProc func() (audio.Processor, error), packets [][]byte, inFlight, queue int) {
	dec, err := opus.NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	emitted := make(chan struct{}, queue)
	p := audio.NewPipeline(audio.PipelineConfig{
		Decoder:    dec,
		NewEncoder: opus.NewEncoder,
		Emit:       func(*rtp.Packet, time.Time) { emitted <- struct{}{} },
		OnError:    func(err error) { b.Error(err) },
		Queue:      queue,
	})
	proc, err := newProc()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.SetChain([]audio.Processor{proc}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The packets as the track's reader gets them: Marshal'd RTP. They are built beforehand (that is the
	// publisher's work, not the SFU's) and each is given the next sequence number and timestamp when it is sent
	// again; Push copies the packet, so the buffer can be changed as soon as it returns.
	wire := make([][]byte, len(packets))
	for i, payload := range packets {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 0x5eed}, Payload: payload}
		buf, err := pkt.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		wire[i] = buf
	}
	var seq uint16
	var ts uint32
	renumber := func(buf []byte) {
		seq++
		ts += packetSamples
		binary.BigEndian.PutUint16(buf[2:], seq)
		binary.BigEndian.PutUint32(buf[4:], ts)
	}
	push := func(buf []byte) {
		if !p.Push(buf, time.Now()) {
			b.Fatal("the pipeline refused a packet")
		}
	}

	// Warm up: the first packets grow the decoder's and RNNoise's buffers.
	for i := range 50 {
		buf := wire[i%len(wire)]
		renumber(buf)
		push(buf)
		<-emitted
	}
	before := p.Stats()

	pending, i := 0, 0
	for b.Loop() {
		if pending == inFlight {
			<-emitted
			pending--
		}
		buf := wire[i]
		renumber(buf)
		push(buf)
		pending++
		if i++; i == len(wire) {
			i = 0
		}
	}
	for ; pending > 0; pending-- {
		<-emitted
	}
	reportPerFrame(b)

	st := p.Stats()
	if got := st.Processed - before.Processed; got != uint64(b.N) {
		b.Errorf("processed %d packets of %d (stats %+v)", got, b.N, st)
	}
}

func meanLen(packets [][]byte) int {
	total := 0
	for _, p := range packets {
		total += len(p)
	}
	return total / max(len(packets), 1)
}
