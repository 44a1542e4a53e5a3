package transport

import (
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func pair(t *testing.T) (*batchConn, *net.UDPConn) {
	t.Helper()
	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return newBatchConn(a), b
}

// read returns what arrives at c within d, up to max packets.
func read(t *testing.T, c *net.UDPConn, d time.Duration, max int) []string {
	t.Helper()
	var got []string
	buf := make([]byte, 2000)
	for len(got) < max {
		_ = c.SetReadDeadline(time.Now().Add(d))
		n, _, err := c.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:n]))
	}
	return got
}

// During a fan-out (Begin to End) writes wait and go out together, in order, at End; outside one they go at
// once.
func TestBatchConn(t *testing.T) {
	c, peer := pair(t)
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := c.WriteToAddrPort([]byte("alone"), to); err != nil {
		t.Fatal(err)
	}
	if got := read(t, peer, time.Second, 1); len(got) != 1 || got[0] != "alone" {
		t.Fatalf("a write outside a fan-out: %q, want it at once", got)
	}
	c.Begin()
	for _, s := range []string{"one", "two", "three"} {
		if n, err := c.WriteToAddrPort([]byte(s), to); err != nil || n != len(s) {
			t.Fatalf("write %q: %d, %v", s, n, err)
		}
	}
	if _, err := c.WriteTo([]byte("four"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, peer, 50*time.Millisecond, 4); len(got) != 0 {
		t.Fatalf("during the fan-out %q arrived, want nothing before End", got)
	}
	c.End()
	if got := read(t, peer, time.Second, 4); len(got) != 4 || got[0] != "one" || got[3] != "four" {
		t.Fatalf("after End: %q, want one two three four", got)
	}
}

// Fan-outs on many goroutines at once, with more packets than one batch holds: every packet arrives.
func TestBatchConnConcurrent(t *testing.T) {
	c, peer := pair(t)
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	const goroutines, fanouts, copies = 4, 20, 100
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := 0; f < fanouts; f++ {
				c.Begin()
				for k := 0; k < copies; k++ {
					_, _ = c.WriteToAddrPort([]byte("x"), to)
				}
				c.End()
			}
		}()
	}
	_ = peer.SetReadBuffer(8 << 20)
	done := make(chan []string)
	go func() { done <- read(t, peer, time.Second, goroutines*fanouts*copies) }()
	wg.Wait()
	if got := <-done; len(got) != goroutines*fanouts*copies {
		t.Fatalf("%d of %d packets arrived", len(got), goroutines*fanouts*copies)
	}
}
