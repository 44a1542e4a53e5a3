package main

import (
	"net"
	"sync/atomic"
	"time"
)

// bottleneck is a UDP socket whose incoming packets cross a link of limited rate with a drop-tail queue of at
// most maxDelay: what a client behind a slow link receives. Outgoing packets are not shaped.
type bottleneck struct {
	conn     *net.UDPConn
	rate     atomic.Int64 // bits per second; 0 means no limit
	maxDelay time.Duration
	queue    chan shaped
	drops    atomic.Int64
	freeAt   time.Time // when the link has sent everything queued; touched only by pump
}

type shaped struct {
	b    []byte
	addr net.Addr
	at   time.Time // when it leaves the link
}

func newBottleneck(maxDelay time.Duration) (*bottleneck, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	b := &bottleneck{conn: conn, maxDelay: maxDelay, queue: make(chan shaped, 8192)}
	go b.pump() // ends when conn closes
	return b, nil
}

// setRate limits the link to bps bits per second (0: no limit).
func (b *bottleneck) setRate(bps int64) { b.rate.Store(bps) }

func (b *bottleneck) pump() {
	defer close(b.queue)
	buf := make([]byte, 1500)
	for {
		n, addr, err := b.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		now := time.Now()
		at := now
		if rate := b.rate.Load(); rate > 0 {
			start := b.freeAt
			if start.Before(now) {
				start = now
			}
			at = start.Add(time.Duration(int64(n) * 8 * int64(time.Second) / rate))
			if at.Sub(now) > b.maxDelay {
				b.drops.Add(1)
				continue
			}
			b.freeAt = at
		}
		p := shaped{b: append([]byte(nil), buf[:n]...), addr: addr, at: at}
		select {
		case b.queue <- p:
		default:
			b.drops.Add(1)
		}
	}
}

func (b *bottleneck) ReadFrom(p []byte) (int, net.Addr, error) {
	s, ok := <-b.queue
	if !ok {
		return 0, nil, net.ErrClosed
	}
	if d := time.Until(s.at); d > 0 {
		time.Sleep(d)
	}
	return copy(p, s.b), s.addr, nil
}

func (b *bottleneck) WriteTo(p []byte, addr net.Addr) (int, error) { return b.conn.WriteTo(p, addr) }
func (b *bottleneck) Close() error                                 { return b.conn.Close() }
func (b *bottleneck) LocalAddr() net.Addr                          { return b.conn.LocalAddr() }
func (b *bottleneck) SetDeadline(t time.Time) error                { return b.conn.SetDeadline(t) }
func (b *bottleneck) SetReadDeadline(t time.Time) error            { return b.conn.SetReadDeadline(t) }
func (b *bottleneck) SetWriteDeadline(t time.Time) error           { return b.conn.SetWriteDeadline(t) }
