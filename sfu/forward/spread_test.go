package forward

import (
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// lockedWriter keeps the sequence numbers written to it; the pool's goroutines write to it.
type lockedWriter struct {
	mu   sync.Mutex
	seqs []uint16
}

func (w *lockedWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	w.seqs = append(w.seqs, h.SequenceNumber)
	w.mu.Unlock()
	return h.MarshalSize() + len(payload), nil
}

func (w *lockedWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestSpreadFanOut: a fan-out to 300 subscribers shared with a pool gives every subscriber every packet, in
// order, counted once; and it goes on, written by the read goroutine alone, once the pool is closed.
func TestSpreadFanOut(t *testing.T) {
	sp := NewSpreader(2)
	r := NewReceiver(ReceiverConfig{ID: "mic", Kind: webrtc.RTPCodecTypeAudio, Codec: opusParams, Spreader: sp})
	r.StartLayer(0, 7, "")
	const subs = 300
	ws := make([]*lockedWriter, subs)
	for i := range ws {
		ws[i] = &lockedWriter{}
		d := NewDownTrack(r, "pub", nil)
		bind(d, uint32(i+1), 111, ws[i])
		r.AddDownTrack(d)
	}
	seq := uint16(100)
	send := func(n int) {
		for i := 0; i < n; i++ {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 7},
				Payload: []byte{0xfc, 1, 2}}
			r.writePacket(&Packet{pkt: p, arrival: time.Now()}, 15)
			seq++
		}
	}
	send(100)
	sp.Close()
	send(20)
	for i, w := range ws {
		if len(w.seqs) != 120 {
			t.Fatalf("subscriber %d got %d packets, want 120", i, len(w.seqs))
		}
		for k := 1; k < len(w.seqs); k++ {
			if w.seqs[k] != w.seqs[k-1]+1 {
				t.Fatalf("subscriber %d: sequence %d after %d: out of order or a gap", i, w.seqs[k], w.seqs[k-1])
			}
		}
	}
	if got := r.Counters().PacketsOut; got != 120*subs {
		t.Fatalf("%d copies counted, want %d", got, 120*subs)
	}
}

// hashWriter costs about what encrypting a copy does: it hashes the payload.
type hashWriter struct{}

func (hashWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	sum := sha256.Sum256(payload)
	return h.MarshalSize() + len(payload) + int(sum[0]&0), nil
}

func (hashWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkFanOut500 is one 1,000-byte video packet to 500 subscribers, written by the read goroutine alone and
// shared with a pool of one worker: ns/op is how long the last subscriber waits for its copy (each copy hashed, for
// a cost near an SRTP write's, without the system call).
func BenchmarkFanOut500(b *testing.B) {
	for _, tc := range []struct {
		name string
		sp   *Spreader
	}{{"alone", nil}, {"spread", NewSpreader(1)}} {
		b.Run(tc.name, func(b *testing.B) {
			r := NewReceiver(ReceiverConfig{ID: "v", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8Params, RTCP: &nopRTCP{}, Spreader: tc.sp})
			r.StartLayer(0, 100, "q")
			defer r.Close()
			for i := 0; i < 500; i++ {
				d := NewDownTrack(r, "pub", nil)
				d.SetTargetLayer(0)
				bind(d, uint32(1000+i), 96, hashWriter{})
				r.AddDownTrack(d)
			}
			benchInterFrames(b, r, 0)
			if tc.sp != nil {
				tc.sp.Close()
			}
		})
	}
}
