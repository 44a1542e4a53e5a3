package audio

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap"
)

// Frame is a copy of one packet's PCM, handed to a tap: decoded, and processed when the track is.
type Frame struct {
	PCM     []int16   // 48 kHz mono
	RTPTime uint32    // the packet's RTP timestamp (48 kHz clock): where the first sample belongs
	Arrival time.Time // when the packet reached the server
}

// Tap receives copies of a pipeline's PCM on C. C is bounded: when the consumer falls behind, frames are
// dropped and counted, never waited for. C is closed when the pipeline stops.
type Tap struct {
	C       <-chan Frame
	c       chan Frame
	dropped atomic.Uint64
}

// Dropped counts the frames this tap missed because its channel was full.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }

// PipelineConfig is what a Pipeline needs from its owner.
type PipelineConfig struct {
	Decoder Decoder
	// NewEncoder makes the encoder when processing is first turned on; nil means this server cannot encode (a
	// build without cgo), so the pipeline only taps.
	NewEncoder func() (Encoder, error)
	// Emit forwards a packet the pipeline owns: processed, or passed through unchanged. It is called from the
	// pipeline's goroutine, in order; pkt is valid only during the call.
	Emit func(pkt *rtp.Packet, arrival time.Time)
	// OnError is told when a processor fails; processing is then off. It may be nil.
	OnError func(error)
	// Queue is how many packets may wait for the pipeline (default 8: 160 ms of 20 ms packets). A packet
	// arriving at a full queue is forwarded unprocessed by the caller.
	Queue int
	Log   *zap.Logger
}

// PipelineStats are a pipeline's counters.
type PipelineStats struct {
	Processed  uint64 // packets decoded, processed and encoded again
	Passed     uint64 // packets the pipeline emitted unchanged (muted, DTX, out of order, odd frame size)
	Overflowed uint64 // packets refused at a full queue
	Errors     uint64 // packets that failed to decode or encode
}

// Pipeline is the audio work on one published Opus track. The track's reader Pushes each packet; while
// processing is on, the pipeline decodes it, runs the processor chain, encodes it again and Emits it with the
// original RTP header, so sequence numbers and timestamps stay continuous whether processing is on or off. Taps
// get the PCM either way. Run owns the goroutine that does the work.
type Pipeline struct {
	cfg   PipelineConfig
	free  chan *item
	queue chan *item

	processing atomic.Bool // Pushed packets are the pipeline's to emit
	muted      atomic.Bool // the publisher muted the track: nothing is decoded

	tapMu   sync.Mutex
	taps    atomic.Pointer[[]*Tap]
	stopped bool // Run has returned: new taps are closed at once

	chainMu  sync.Mutex
	pending  *[]Processor // a chain SetChain handed over, not yet taken by Run
	encoder  Encoder      // made by SetChain, used by Run
	changed  atomic.Bool
	chainErr error

	processed, passed, overflowed, errors atomic.Uint64

	// Owned by Run's goroutine.
	chain   []Processor
	pkt     rtp.Packet
	pcm     [maxFrameSamples]int16
	out     [maxPayload]byte
	lastSeq uint16
	started bool
}

// maxFrameSamples is the longest Opus packet, 120 ms; maxPayload bounds an encoded packet.
const (
	maxFrameSamples = SampleRate * 120 / 1000
	maxPayload      = 1275
	dtxMaxBytes     = 2 // Opus packets this small carry no audio: DTX and comfort noise
)

type item struct {
	buf     [1500]byte
	n       int
	arrival time.Time
	emit    bool // processing was on when it arrived: the pipeline forwards it
}

// NewPipeline makes a pipeline; it does nothing until Run.
func NewPipeline(cfg PipelineConfig) *Pipeline {
	if cfg.Queue <= 0 {
		cfg.Queue = 8
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Pipeline{cfg: cfg, free: make(chan *item, cfg.Queue), queue: make(chan *item, cfg.Queue)}
	for range cfg.Queue {
		p.free <- &item{}
	}
	p.taps.Store(&[]*Tap{})
	return p
}

// Processing reports whether packets pushed now are processed.
func (p *Pipeline) Processing() bool { return p.processing.Load() }

// SetMuted stops decoding while the publisher has the track muted.
func (p *Pipeline) SetMuted(m bool) { p.muted.Store(m) }

// SetChain hands the pipeline a new processor chain; it takes ownership of the processors. An empty chain
// turns processing off. Turning it on needs an encoder: without one the chain is closed and an error wrapping
// ErrUnavailable returned.
func (p *Pipeline) SetChain(chain []Processor) error {
	p.chainMu.Lock()
	defer p.chainMu.Unlock()
	if len(chain) > 0 && p.encoder == nil {
		if p.cfg.NewEncoder == nil {
			closeAll(chain)
			return fmt.Errorf("processing needs an Opus encoder (libopus), and this server was built without cgo: %w", ErrUnavailable)
		}
		enc, err := p.cfg.NewEncoder()
		if err != nil {
			closeAll(chain)
			return fmt.Errorf("opus encoder: %w", err)
		}
		p.encoder = enc
	}
	if p.pending != nil {
		closeAll(*p.pending)
	}
	p.pending = &chain
	p.changed.Store(true)
	p.processing.Store(len(chain) > 0)
	return nil
}

// AddTap adds a consumer of the PCM with room for size frames.
func (p *Pipeline) AddTap(size int) *Tap {
	c := make(chan Frame, max(size, 1))
	t := &Tap{C: c, c: c}
	p.tapMu.Lock()
	defer p.tapMu.Unlock()
	if p.stopped {
		close(c)
		return t
	}
	list := append(append([]*Tap(nil), *p.taps.Load()...), t)
	p.taps.Store(&list)
	return t
}

// RemoveTap stops sending to t; its channel is left open.
func (p *Pipeline) RemoveTap(t *Tap) {
	p.tapMu.Lock()
	defer p.tapMu.Unlock()
	var list []*Tap
	for _, x := range *p.taps.Load() {
		if x != t {
			list = append(list, x)
		}
	}
	p.taps.Store(&list)
}

// Push offers the pipeline one RTP packet as read from the publisher. It reports whether the pipeline took the
// packet to emit it (processing is on and the queue had room); on false the caller forwards the packet itself,
// and the pipeline may still have taken a copy for its taps. It never blocks.
func (p *Pipeline) Push(raw []byte, arrival time.Time) bool {
	emit := p.processing.Load()
	if !emit && len(*p.taps.Load()) == 0 {
		return false
	}
	if len(raw) > len(item{}.buf) {
		return false
	}
	select {
	case it := <-p.free:
		it.n = copy(it.buf[:], raw)
		it.arrival, it.emit = arrival, emit
		p.queue <- it // never blocks: there are as many items as queue slots
		return emit
	default:
		p.overflowed.Add(1)
		return false
	}
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() PipelineStats {
	return PipelineStats{Processed: p.processed.Load(), Passed: p.passed.Load(), Overflowed: p.overflowed.Load(), Errors: p.errors.Load()}
}

// Run does the pipeline's work until ctx ends, then closes the processors and the taps' channels. Packets
// still queued then are emitted unprocessed.
func (p *Pipeline) Run(ctx context.Context) {
	defer p.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-p.queue:
			p.handle(it)
			p.free <- it
		}
	}
}

func (p *Pipeline) stop() {
	for {
		select {
		case it := <-p.queue:
			if it.emit && p.pkt.Unmarshal(it.buf[:it.n]) == nil {
				p.cfg.Emit(&p.pkt, it.arrival)
			}
			p.free <- it
			continue
		default:
		}
		break
	}
	p.chainMu.Lock()
	if p.pending != nil {
		closeAll(*p.pending)
		p.pending = nil
	}
	p.chainMu.Unlock()
	closeAll(p.chain)
	p.chain = nil
	p.tapMu.Lock()
	p.stopped = true
	for _, t := range *p.taps.Load() {
		close(t.c)
	}
	p.taps.Store(&[]*Tap{})
	p.tapMu.Unlock()
}

// takeChain installs the chain SetChain handed over.
func (p *Pipeline) takeChain() {
	p.chainMu.Lock()
	defer p.chainMu.Unlock()
	p.changed.Store(false)
	if p.pending == nil {
		return
	}
	closeAll(p.chain)
	p.chain, p.pending = *p.pending, nil
}

// handle is the per-packet work.
func (p *Pipeline) handle(it *item) {
	if p.changed.Load() {
		p.takeChain()
	}
	pkt := &p.pkt
	if err := pkt.Unmarshal(it.buf[:it.n]); err != nil {
		return // the caller checked it was RTP
	}
	taps := *p.taps.Load()
	process := it.emit && len(p.chain) > 0
	inOrder := !p.started || int16(pkt.SequenceNumber-p.lastSeq) > 0
	if !inOrder || p.muted.Load() || len(pkt.Payload) <= dtxMaxBytes || !process && len(taps) == 0 {
		p.pass(it) // a late packet cannot go through the decoder's or the processors' state again
		return
	}
	p.started, p.lastSeq = true, pkt.SequenceNumber
	n, err := p.decode(pkt.Payload)
	if err != nil || n <= 0 || n > len(p.pcm) {
		p.errors.Add(1)
		p.pass(it)
		return
	}
	pcm := p.pcm[:n]
	if process && encodable(n) {
		if p.runChain(pcm) {
			if m, err := p.encoder.Encode(pcm, p.out[:]); err == nil && m > 0 {
				pkt.Payload = p.out[:m]
				p.processed.Add(1)
			} else {
				p.errors.Add(1)
			}
		}
	}
	for _, t := range taps {
		f := Frame{PCM: append([]int16(nil), pcm...), RTPTime: pkt.Timestamp, Arrival: it.arrival}
		select {
		case t.c <- f:
		default:
			t.dropped.Add(1)
		}
	}
	if it.emit {
		p.cfg.Emit(pkt, it.arrival)
	}
}

// decode decodes one payload. The publisher controls those bytes: a decoder that panics on them costs that
// packet its processing, not the server.
func (p *Pipeline) decode(payload []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("opus decoder panicked on a %d-byte packet: %v", len(payload), v)
			p.cfg.Log.Warn("audio decode", zap.Error(err))
		}
	}()
	return p.cfg.Decoder.Decode(payload, p.pcm[:])
}

// pass emits a packet unchanged, if it is the pipeline's to emit.
func (p *Pipeline) pass(it *item) {
	if it.emit {
		p.passed.Add(1)
		p.cfg.Emit(&p.pkt, it.arrival)
	}
}

// runChain runs every processor over pcm, 10 ms at a time. A failing processor turns processing off.
func (p *Pipeline) runChain(pcm []int16) bool {
	for off := 0; off < len(pcm); off += FrameSamples {
		frame := pcm[off : off+FrameSamples]
		for _, proc := range p.chain {
			if err := proc.Process(frame); err != nil {
				p.errors.Add(1)
				p.cfg.Log.Warn("audio processor failed; processing is off", zap.Error(err))
				closeAll(p.chain)
				p.chain = nil
				p.processing.Store(false)
				if p.cfg.OnError != nil {
					p.cfg.OnError(err)
				}
				return false
			}
		}
	}
	return true
}

// encodable reports whether n samples are whole 10 ms frames that Opus can encode as one packet.
func encodable(n int) bool {
	switch n {
	case FrameSamples, 2 * FrameSamples, 4 * FrameSamples, 6 * FrameSamples:
		return true
	}
	return false
}
