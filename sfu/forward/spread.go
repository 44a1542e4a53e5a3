package forward

import (
	"sync"
	"sync/atomic"
)

// Spreader is a node's pool of goroutines that share the fan-out of one packet to many subscribers. A publisher's
// read goroutine writes every copy of a packet in turn; in a room of hundreds, the last copy would leave long
// after the first, past the SFU's latency budget, however idle the other cores. With a Spreader, a fan-out to
// SpreadThreshold subscribers or more is cut into parts: the read goroutine writes one and the pool the others,
// and the read goroutine waits for all of them before its next packet, so each subscriber still gets the
// packets of a track in order. A part the pool cannot take at once (every worker busy) is written by the read
// goroutine itself: the pool never queues work behind a slow fan-out.
type Spreader struct {
	tasks chan *spreadPart
	done  chan struct{}
	wg    sync.WaitGroup
	calls sync.Pool // *spreadCall: a fan-out's parts and totals, reused so that sharing one allocates nothing

	mu     sync.RWMutex // held for reading while a part is handed over; Close takes it to stop handing over
	closed bool
}

// SpreadThreshold is the number of subscribers from which a fan-out is shared; spreadPart is the fewest copies a
// part has.
const (
	SpreadThreshold = 64
	spreadMinPart   = 32
)

// spreadPart is one part of a fan-out: the copies with indexes [lo, hi) of the rotated DownTrack list.
type spreadPart struct {
	r           *Receiver
	pi          Packet // the part's own copy: its late flag is its own
	downs       []*DownTrack
	start       int
	lo, hi      int
	sent, bytes *atomic.Uint64
	wg          *sync.WaitGroup
}

// spreadCall is what one shared fan-out needs: its parts, and the totals and wait group they report to. spread
// takes one from the Spreader's pool and gives it back once every part is written.
type spreadCall struct {
	wg          sync.WaitGroup
	sent, bytes atomic.Uint64
	parts       []spreadPart
}

// NewSpreader starts a pool of workers goroutines; Close stops them.
func NewSpreader(workers int) *Spreader {
	s := &Spreader{tasks: make(chan *spreadPart, workers), done: make(chan struct{})}
	s.calls.New = func() any { return &spreadCall{parts: make([]spreadPart, 0, workers)} }
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go s.work()
	}
	return s
}

func (s *Spreader) work() {
	defer s.wg.Done()
	for {
		select {
		case p := <-s.tasks:
			p.run()
		case <-s.done:
			for { // parts handed over before Close: their fan-outs wait for them
				select {
				case p := <-s.tasks:
					p.run()
				default:
					return
				}
			}
		}
	}
}

// Close stops the workers once the parts handed to them are written. Fan-outs after Close are written by their
// read goroutines alone.
func (s *Spreader) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

// offer hands a part to the pool; false means the caller writes it.
func (s *Spreader) offer(p *spreadPart) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	select {
	case s.tasks <- p:
		return true
	default:
		return false
	}
}

func (p *spreadPart) run() {
	sent, bytes := p.r.fanOut(&p.pi, p.downs, p.start, p.lo, p.hi)
	p.sent.Add(sent)
	p.bytes.Add(bytes)
	p.wg.Done()
}

// spread writes a fan-out in parts (one per worker and one for the caller, none under spreadMinPart copies), one
// by the caller and the others by the pool, and waits for them all.
func (s *Spreader) spread(r *Receiver, pi *Packet, downs []*DownTrack, start int) (sent, bytes uint64) {
	n := len(downs)
	parts := max(min(n/spreadMinPart, cap(s.tasks)+1), 1)
	c := s.calls.Get().(*spreadCall)
	c.sent.Store(0)
	c.bytes.Store(0)
	if cap(c.parts) < parts-1 { // the workers hold pointers into it: it must not grow while they run
		c.parts = make([]spreadPart, 0, parts-1)
	}
	size := (n + parts - 1) / parts
	for lo := size; lo < n; lo += size {
		c.parts = append(c.parts, spreadPart{r: r, pi: *pi, downs: downs, start: start, lo: lo, hi: min(lo+size, n),
			sent: &c.sent, bytes: &c.bytes, wg: &c.wg})
		p := &c.parts[len(c.parts)-1]
		c.wg.Add(1)
		if !s.offer(p) {
			p.run()
		}
	}
	own, ownBytes := r.fanOut(pi, downs, start, 0, min(size, n))
	c.wg.Wait()
	sent, bytes = own+c.sent.Load(), ownBytes+c.bytes.Load()
	clear(c.parts) // no packet or down-track outlives the fan-out in the pool
	c.parts = c.parts[:0]
	s.calls.Put(c)
	return sent, bytes
}
