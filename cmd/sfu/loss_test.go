package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// lossyConn is a UDP socket that, once active, drops a share of the packets it receives and of those it sends,
// at random from a seeded generator: a client on a lossy network. Every UDP packet is subject to it (STUN, SRTP
// and SRTCP alike, DTLS too if it is active before the handshake ends).
type lossyConn struct {
	conn   *net.UDPConn
	loss   float64
	active atomic.Bool // drop only while set

	mu  sync.Mutex // guards rng: reads and writes happen on different goroutines
	rng *rand.Rand

	droppedIn, droppedOut, passedIn, passedOut atomic.Int64
}

func newLossyConn(loss float64, seed uint64) (*lossyConn, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &lossyConn{conn: conn, loss: loss, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
}

func (l *lossyConn) drop() bool {
	if !l.active.Load() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rng.Float64() < l.loss
}

func (l *lossyConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := l.conn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if l.drop() {
			l.droppedIn.Add(1)
			continue
		}
		l.passedIn.Add(1)
		return n, addr, nil
	}
}

func (l *lossyConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if l.drop() {
		l.droppedOut.Add(1)
		return len(p), nil // lost on the way: the sender cannot tell
	}
	l.passedOut.Add(1)
	return l.conn.WriteTo(p, addr)
}

func (l *lossyConn) Close() error                       { return l.conn.Close() }
func (l *lossyConn) LocalAddr() net.Addr                { return l.conn.LocalAddr() }
func (l *lossyConn) SetDeadline(t time.Time) error      { return l.conn.SetDeadline(t) }
func (l *lossyConn) SetReadDeadline(t time.Time) error  { return l.conn.SetReadDeadline(t) }
func (l *lossyConn) SetWriteDeadline(t time.Time) error { return l.conn.SetWriteDeadline(t) }

func (l *lossyConn) String() string {
	in, out := l.droppedIn.Load(), l.droppedOut.Load()
	return fmt.Sprintf("dropped %d of %d received, %d of %d sent", in, in+l.passedIn.Load(), out, out+l.passedOut.Load())
}

// frameLog reassembles VP8 frames from the RTP packets a subscriber receives, in arrival order, retransmissions
// included. A frame is the packets of one RTP timestamp; it is complete once its first packet (S bit, partition
// 0), its last (marker) and every sequence number between them have arrived.
type frameLog struct {
	mu       sync.Mutex
	start    time.Time // the first video packet's arrival
	seen     map[uint16]bool
	frames   map[uint32]*rxFrame // by RTP timestamp
	packets  int
	repeated int // packets that arrived twice (a retransmission of a packet that was not lost after all)
}

type rxFrame struct {
	first      time.Time // the first of its packets to arrive, whichever it is
	complete   time.Time // zero until complete
	hasStart   bool
	startSeq   uint16
	hasEnd     bool
	endSeq     uint16
	stamped    bool
	stamp      synth.Stamp // from the start packet: the publisher's frame number and send time
	got        map[uint16]bool
	rtpPackets int
}

func newFrameLog() *frameLog {
	return &frameLog{seen: map[uint16]bool{}, frames: map[uint32]*rxFrame{}}
}

func (fl *frameLog) read(track *webrtc.TrackRemote) {
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		fl.add(time.Now(), pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload)
	}
}

func (fl *frameLog) started() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return !fl.start.IsZero()
}

func (fl *frameLog) startTime() time.Time {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.start
}

func (fl *frameLog) add(now time.Time, seq uint16, ts uint32, marker bool, payload []byte) {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(payload); err != nil {
		return
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.start.IsZero() {
		fl.start = now
	}
	if fl.seen[seq] {
		fl.repeated++
		return
	}
	fl.seen[seq] = true
	fl.packets++
	f := fl.frames[ts]
	if f == nil {
		f = &rxFrame{first: now, got: map[uint16]bool{}}
		fl.frames[ts] = f
	}
	f.got[seq] = true
	f.rtpPackets++
	if vp8.S == 1 && vp8.PID == 0 {
		f.hasStart, f.startSeq = true, seq
		f.stamp, f.stamped = synth.FindStamp(vp8.Payload)
	}
	if marker {
		f.hasEnd, f.endSeq = true, seq
	}
	if f.complete.IsZero() && f.hasStart && f.hasEnd && int16(f.endSeq-f.startSeq) >= 0 {
		for s := f.startSeq; ; s++ {
			if !f.got[s] {
				return
			}
			if s == f.endSeq {
				break
			}
		}
		f.complete = now
	}
}

// lossResult is what a subscriber made of the frames the publisher sent during the measurement.
type lossResult struct {
	firstSeq, lastSeq uint32        // the publisher's frame numbers measured
	complete          int           // frames complete within the play-out window
	late              int           // frames complete, but after their window
	worstGap          time.Duration // longest time without a frame completing in its window
	packets, repeated int
}

func (r lossResult) frames() int { return int(r.lastSeq-r.firstSeq) + 1 }

func (r lossResult) ratio() float64 { return float64(r.complete) / float64(r.frames()) }

func (r lossResult) String() string {
	return fmt.Sprintf("%d/%d frames (%.1f%%) complete within %v, %d more complete late; longest gap %v; %d packets, %d duplicates",
		r.complete, r.frames(), 100*r.ratio(), playoutWindow, r.late, r.worstGap.Round(time.Millisecond), r.packets, r.repeated)
}

// playoutWindow is how long after its first packet a frame may take to arrive whole and still be decoded.
const playoutWindow = 500 * time.Millisecond

// result measures the frames the publisher sent from the first one this subscriber received until the end
// of the run (frames sent no later than end). Frame numbers run on without gaps at the publisher, so a frame
// that never showed up counts as not complete.
func (fl *frameLog) result(end time.Time) lossResult {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	res := lossResult{packets: fl.packets, repeated: fl.repeated}
	bySeq := map[uint32]*rxFrame{}
	first := true
	for _, f := range fl.frames {
		if !f.stamped || f.stamp.Sent.After(end) {
			continue
		}
		bySeq[f.stamp.Seq] = f
		if first || f.stamp.Seq < res.firstSeq {
			res.firstSeq = f.stamp.Seq
		}
		if first || f.stamp.Seq > res.lastSeq {
			res.lastSeq = f.stamp.Seq
		}
		first = false
	}
	if first {
		return res
	}
	var done []time.Time
	for s := res.firstSeq; s <= res.lastSeq; s++ {
		f := bySeq[s]
		switch {
		case f == nil || f.complete.IsZero():
		case f.complete.Sub(f.first) <= playoutWindow:
			res.complete++
			done = append(done, f.complete)
		default:
			res.late++
		}
	}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	prev := fl.start
	for _, at := range append(done, end) {
		res.worstGap = max(res.worstGap, at.Sub(prev))
		prev = at
	}
	return res
}

// TestVideoThroughLoss: a subscriber whose network loses 10 % of the packets both ways still gets nearly every
// frame whole within a 500 ms play-out window, because it NACKs what it misses and the SFU retransmits. A second
// subscriber on the same kind of network without a NACK generator is the control: it gets clearly fewer.
func TestVideoThroughLoss(t *testing.T) {
	const (
		loss       = 0.10
		run        = 8 * time.Second
		wantRatio  = 0.95
		ctrlCeil   = 0.85 // without NACK, a 3-packet frame survives 10 % loss with p = 0.73, a keyframe 0.3
		maxGap     = playoutWindow
		startAfter = 15 * time.Second
	)
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	media := startMedia(t, ctx)

	type subscriber struct {
		name string
		conn *lossyConn
		log  *frameLog
	}
	var subs []*subscriber
	for i, name := range []string{"nack", "no-nack"} {
		conn, err := newLossyConn(loss, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var api *webrtc.API
		if name == "nack" {
			api, err = client.NewAPIOnConn(conn) // the real client's API: NACK generator included
		} else {
			api, err = client.NewAPIOnConnWithoutNACK(conn)
		}
		if err != nil {
			t.Fatal(err)
		}
		s := &subscriber{name: name, conn: conn, log: newFrameLog()}
		c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "lossy", "viewer-"+name, false, true), client.Options{
			API: api,
			OnTrack: func(_ string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				if track.Kind() == webrtc.RTPCodecTypeVideo {
					s.log.read(track)
					return
				}
				buf := make([]byte, 1500)
				for {
					if _, _, err := track.Read(buf); err != nil {
						return
					}
				}
			},
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer c.Close()
		// Lose packets from the moment the subscribe connection is up: every RTP and RTCP packet is subject to
		// the loss, while the DTLS handshake, whose retransmission timer backs off to seconds, is not.
		c.Sub.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
			if st == webrtc.PeerConnectionStateConnected {
				conn.active.Store(true)
			}
		})
		if c.Sub.ConnectionState() == webrtc.PeerConnectionStateConnected {
			conn.active.Store(true)
		}
		subs = append(subs, s)
	}

	pub := joinClient(t, ctx, n, "lossy", "camera")
	media.publish(t, pub)
	began := time.Now()
	eventually(t, startAfter, "both lossy subscribers receive video", func() bool {
		return subs[0].log.started() && subs[1].log.started()
	})
	t.Logf("both subscribers receiving %v after the publisher started", time.Since(began).Round(time.Millisecond))

	// Measure the frames sent in the run after each subscriber's first packet; wait a play-out window (and a
	// little) past the last of them so that its retransmissions can arrive.
	var ends []time.Time
	latest := time.Time{}
	for _, s := range subs {
		end := s.log.startTime().Add(run)
		ends = append(ends, end)
		if end.After(latest) {
			latest = end
		}
	}
	select {
	case <-time.After(time.Until(latest.Add(playoutWindow + 200*time.Millisecond))):
	case <-ctx.Done():
		t.Fatal("test context ended during the run")
	}
	media.stop()

	res := make([]lossResult, len(subs))
	for i, s := range subs {
		res[i] = s.log.result(ends[i])
		t.Logf("%-7s subscriber: %s; link %s", s.name, res[i], s.conn)
	}
	nacks := metricValue(scrape(t, n), "sfu_nacks_total")
	t.Logf("server sfu_nacks_total = %v", nacks)

	withNack, without := res[0], res[1]
	if withNack.frames() < int(run.Seconds()*30*0.8) {
		t.Fatalf("with NACK: measured only %d frames in %v; the publisher sends 30 a second", withNack.frames(), run)
	}
	if withNack.ratio() < wantRatio {
		t.Errorf("with NACK: %.1f%% of frames complete within %v, want at least %.0f%%", 100*withNack.ratio(), playoutWindow, 100*wantRatio)
	}
	if withNack.worstGap > maxGap {
		t.Errorf("with NACK: %v without a complete frame, want at most %v", withNack.worstGap.Round(time.Millisecond), maxGap)
	}
	if nacks <= 0 {
		t.Errorf("sfu_nacks_total = %v: the SFU saw no NACK from a subscriber losing 10%% of its packets", nacks)
	}
	if without.frames() < int(run.Seconds()*30*0.8) {
		t.Fatalf("without NACK: measured only %d frames in %v", without.frames(), run)
	}
	if without.ratio() >= ctrlCeil {
		t.Errorf("control without NACK: %.1f%% of frames complete, want below %.0f%%: the loss does not bite, so the test proves nothing",
			100*without.ratio(), 100*ctrlCeil)
	}
	if without.ratio() >= withNack.ratio() {
		t.Errorf("control without NACK got %.1f%%, no worse than %.1f%% with NACK", 100*without.ratio(), 100*withNack.ratio())
	}
}
