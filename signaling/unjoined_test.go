package signaling

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestUnjoinedCaps: the per-address cap counts an IPv4 address, or an IPv6 /64, and answers 429; the node's
// cap answers 503; a place released (twice, harmlessly) is taken again.
func TestUnjoinedCaps(t *testing.T) {
	c := newUnjoinedCaps(2, 3)
	a1, _ := c.acquire("192.0.2.1:1000")
	a2, _ := c.acquire("192.0.2.1:1001")
	if s, status := c.acquire("192.0.2.1:1002"); s != nil || status != http.StatusTooManyRequests {
		t.Fatalf("third from one address: %v %d, want 429", s, status)
	}
	b1, _ := c.acquire("[2001:db8::1]:1000")
	if s, status := c.acquire("[2001:db8::2]:1000"); s != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("fourth on the node: %v %d, want 503", s, status)
	}
	a1.release()
	a1.release()
	if s, status := c.acquire("[2001:db8::ffff]:9"); s == nil {
		t.Fatalf("after a release: %d", status)
	}
	if s, status := c.acquire("[2001:db8::fffe]:9"); s != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("the node is full again: %v %d", s, status)
	}
	a2.release()
	b1.release()
	if s, status := c.acquire("[2001:db8::7]:9"); s == nil { // the /64's second, with ::ffff
		t.Fatalf("a second from one /64: %d", status)
	}
	if s, status := c.acquire("[2001:db8::8]:9"); s != nil || status != http.StatusTooManyRequests {
		t.Fatalf("a third from one /64: %v %d, want 429", s, status)
	}
	if addrKey("[2001:db8:0:1::1]:1") == addrKey("[2001:db8:0:2::1]:1") || addrKey("192.0.2.1:1") != "192.0.2.1" {
		t.Fatal("addresses keyed wrongly")
	}
	if c := newUnjoinedCaps(-1, -1); c.perIP != 0 || c.total != 0 {
		t.Fatalf("negative caps mean no limit: %+v", c)
	}
}

// TestReadMessage: messages are read whole into a buffer that grows to fit, and one over the limit is reported
// with its size.
func TestReadMessage(t *testing.T) {
	small := make([]byte, 0, 16)
	for _, n := range []int{0, 5, 16, 100, 5000, 64} {
		msg, size, err := readMessage(strings.NewReader(strings.Repeat("x", n)), small, 5000)
		if err != nil || size != int64(n) || !bytes.Equal(msg, bytes.Repeat([]byte("x"), n)) {
			t.Fatalf("%d bytes: got %d (size %d) %v", n, len(msg), size, err)
		}
	}
	msg, size, err := readMessage(strings.NewReader(strings.Repeat("x", 7000)), nil, 5000)
	if err != nil || size != 7000 || len(msg) != 5001 {
		t.Fatalf("over the limit: %d bytes kept, size %d, %v", len(msg), size, err)
	}
}
