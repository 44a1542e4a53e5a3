package main

import (
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
)

// blackhole is a publisher's UDP socket that, once armed, swallows the next few VP8 packets it sends and every
// later send of the same sequence numbers (Pion's NACK responder resends on the media stream: the client offers
// no RTX), counting how often each was tried.
type blackhole struct {
	*net.UDPConn
	armed atomic.Bool

	mu    sync.Mutex
	want  int            // packets still to swallow
	tries map[uint16]int // sequence number -> sends
}

func (b *blackhole) WriteTo(p []byte, addr net.Addr) (int, error) {
	if b.armed.Load() && len(p) >= 12 && p[0]>>6 == 2 && p[1]&0x7f == 96 { // RTP, VP8 (payload type 96)
		seq := binary.BigEndian.Uint16(p[2:4])
		b.mu.Lock()
		n, known := b.tries[seq]
		if known || b.want > 0 {
			if !known {
				b.want--
			}
			b.tries[seq] = n + 1
			b.mu.Unlock()
			return len(p), nil
		}
		b.mu.Unlock()
	}
	return b.UDPConn.WriteTo(p, addr)
}

// TestLostPacketAskedForBoundedTimes: the node asks a publisher again for a packet that never arrives a bounded
// number of times, not for as long as the packet is within its receive log (about 5 s of video). Without the
// bound a node whose inbound socket overflows asks again for every lost packet ten times a second, and the
// publishers' resends feed the overload (at 500 users: 41 % of the load-test harness's CPU).
func TestLostPacketAskedForBoundedTimes(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	hole := &blackhole{UDPConn: udp, tries: map[uint16]int{}}
	defer hole.Close()
	api, err := client.NewAPIOnConn(hole)
	if err != nil {
		t.Fatal(err)
	}
	pub := joinClientAPI(t, ctx, n, token(t, "nackgen", "pub", true, false), api)
	var wg sync.WaitGroup
	defer wg.Wait()
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	publishSynthetic(t, pctx, pub, &wg)
	time.Sleep(time.Second)

	hole.mu.Lock()
	hole.want = 3
	hole.mu.Unlock()
	hole.armed.Store(true)
	time.Sleep(3 * time.Second) // about 30 rounds of NACKs at Pion's 100 ms
	stop()

	hole.mu.Lock()
	defer hole.mu.Unlock()
	if len(hole.tries) != 3 {
		t.Fatalf("swallowed %d sequence numbers; want 3", len(hole.tries))
	}
	for seq, tries := range hole.tries {
		t.Logf("sequence %d: sent %d times", seq, tries)
		if tries > 1+maxNackTriesWant {
			t.Errorf("sequence %d sent %d times: the node asked for it %d times; want at most %d", seq, tries, tries-1, maxNackTriesWant)
		}
		if tries < 2 {
			t.Errorf("sequence %d sent once: the node never asked for it again", seq)
		}
	}
}

// maxNackTriesWant is how often the node may ask for one lost packet (sfu/transport's bound).
const maxNackTriesWant = 5
