package transport

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the shared media socket under Pion's ICE UDP mux. Between Begin and End (a fan-out: one packet
// in, one copy per subscriber out) the writes of every goroutine are queued and go out together, with one
// sendmmsg system call per batch, at End or when a batch is full; outside a fan-out (RTCP, STUN, DTLS) a write goes
// at once. The queue is copied, so callers may reuse their buffers; the system call is made without the lock.
type batchConn struct {
	*net.UDPConn
	writeBatch func([]ipv4.Message, int) (int, error)

	mu    sync.Mutex
	depth int    // fan-outs in progress
	cur   *batch // queued writes, or nil
	pool  sync.Pool
}

// maxBatch is the most packets one system call sends.
const maxBatch = 64

type batch struct {
	msgs  []ipv4.Message
	bufs  [maxBatch][1500]byte
	vecs  [maxBatch][1][]byte
	addrs [maxBatch]net.UDPAddr
	ips   [maxBatch][16]byte
}

func newBatchConn(c *net.UDPConn) *batchConn {
	b := &batchConn{UDPConn: c}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		b.writeBatch = ipv6.NewPacketConn(c).WriteBatch
	} else {
		b.writeBatch = ipv4.NewPacketConn(c).WriteBatch
	}
	b.pool.New = func() any { return &batch{msgs: make([]ipv4.Message, 0, maxBatch)} }
	return b
}

// Begin starts a fan-out: writes are queued until End.
func (c *batchConn) Begin() {
	c.mu.Lock()
	c.depth++
	c.mu.Unlock()
}

// End ends a fan-out and sends what is queued.
func (c *batchConn) End() {
	c.mu.Lock()
	c.depth--
	b := c.cur
	c.cur = nil
	c.mu.Unlock()
	if b != nil {
		c.send(b)
	}
}

// ReadFromAddrPort lets Pion's mux read without allocating an address (ice.AddrPortReaderWriter).
func (c *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return c.UDPConn.ReadFromUDPAddrPort(p)
}

// WriteToAddrPort queues p during a fan-out, else sends it (ice.AddrPortReaderWriter).
func (c *batchConn) WriteToAddrPort(p []byte, to netip.AddrPort) (int, error) {
	if len(p) > len(batch{}.bufs[0]) {
		return c.UDPConn.WriteToUDPAddrPort(p, to)
	}
	c.mu.Lock()
	if c.depth == 0 {
		c.mu.Unlock()
		return c.UDPConn.WriteToUDPAddrPort(p, to)
	}
	b := c.cur
	if b == nil {
		b = c.pool.Get().(*batch)
		c.cur = b
	}
	i := len(b.msgs)
	n := copy(b.bufs[i][:], p)
	b.vecs[i][0] = b.bufs[i][:n]
	ip := to.Addr().As16()
	b.ips[i] = ip
	a := &b.addrs[i]
	if to.Addr().Is4() {
		a.IP = b.ips[i][12:16]
	} else {
		a.IP = b.ips[i][:]
	}
	a.Port, a.Zone = int(to.Port()), ""
	b.msgs = append(b.msgs, ipv4.Message{Buffers: b.vecs[i][:], Addr: a})
	full := len(b.msgs) == maxBatch
	if full {
		c.cur = nil
	}
	c.mu.Unlock()
	if full {
		c.send(b)
	}
	return len(p), nil
}

// WriteTo is WriteToAddrPort for a net.Addr.
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(p, ua.AddrPort())
	}
	return c.UDPConn.WriteTo(p, addr)
}

// send writes a batch with as few system calls as the kernel takes, and returns it to the pool. A failed send
// drops the rest of the batch: UDP gives no more guarantee than that.
func (c *batchConn) send(b *batch) {
	msgs := b.msgs
	for len(msgs) > 0 {
		n, err := c.writeBatch(msgs, 0)
		if err != nil || n <= 0 {
			break
		}
		msgs = msgs[n:]
	}
	for i := range b.msgs {
		b.msgs[i] = ipv4.Message{}
	}
	b.msgs = b.msgs[:0]
	c.pool.Put(b)
}
