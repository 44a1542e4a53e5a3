package bwe

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// link simulates the path to a subscriber: a bottleneck of rate bits per second (0: none) with a drop-tail
// queue of at most queue, a fixed propagation delay, random loss, and a receiver that sends TWCC feedback (built
// by Pion's recorder, marshalled and parsed as on the wire) every 100 ms.
type link struct {
	t        *testing.T
	e        *Estimator
	rec      *twcc.Recorder
	now      time.Time
	seq      uint16
	rate     float64
	queue    time.Duration
	loss     float64
	rng      *rand.Rand
	free     time.Time // when the bottleneck is free
	inFlight []arrival
	nextFB   time.Time
}

type arrival struct {
	seq uint16
	at  time.Time
}

func newLink(t *testing.T, initial int) *link {
	start := time.Unix(1_000_000, 0)
	return &link{t: t, e: New(Config{Initial: initial, Min: 100_000, Max: 50_000_000}), rec: twcc.NewRecorder(1),
		now: start, free: start, queue: 100 * time.Millisecond, rng: rand.New(rand.NewPCG(1, 2)), nextFB: start.Add(100 * time.Millisecond)}
}

// run sends for d at the rate send returns (bits per second, asked every 10 ms), in 1,000-byte packets.
func (l *link) run(d time.Duration, send func() float64) {
	end := l.now.Add(d)
	const tick = 10 * time.Millisecond
	var owed float64
	for l.now.Before(end) {
		owed += send() * tick.Seconds() / 8
		for ; owed >= 1000; owed -= 1000 {
			l.packet(1000)
		}
		l.now = l.now.Add(tick)
		if !l.now.Before(l.nextFB) {
			l.feedback()
			l.nextFB = l.nextFB.Add(100 * time.Millisecond)
		}
	}
}

func (l *link) packet(size int) {
	seq := l.seq
	l.seq++
	l.e.Sent(seq, size, l.now)
	if l.loss > 0 && l.rng.Float64() < l.loss {
		return
	}
	at := l.now
	if l.rate > 0 {
		start := l.free
		if start.Before(l.now) {
			start = l.now
		}
		if start.Sub(l.now) > l.queue {
			return // the queue is full: dropped
		}
		l.free = start.Add(time.Duration(float64(size*8) / l.rate * float64(time.Second)))
		at = l.free
	}
	l.inFlight = append(l.inFlight, arrival{seq: seq, at: at.Add(20 * time.Millisecond)})
}

func (l *link) feedback() {
	sort.SliceStable(l.inFlight, func(i, j int) bool { return l.inFlight[i].at.Before(l.inFlight[j].at) })
	n := 0
	for _, a := range l.inFlight {
		if a.at.After(l.now) {
			break
		}
		l.rec.Record(2, a.seq, a.at.UnixMicro())
		n++
	}
	l.inFlight = l.inFlight[n:]
	for _, p := range l.rec.BuildFeedbackPacket() {
		raw, err := p.Marshal()
		if err != nil {
			l.t.Fatal(err)
		}
		parsed, err := rtcp.Unmarshal(raw)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, q := range parsed {
			if fb, ok := q.(*rtcp.TransportLayerCC); ok {
				l.e.Feedback(fb, l.now)
			}
		}
	}
}

func (l *link) estimate() float64 { return float64(l.e.GetTargetBitrate()) }

// A sender at 2 Mbps behind a 400 kbps bottleneck: within 2 s the estimate is below the bottleneck (the queue
// grew and the loss shows), and not far below what gets through.
func TestBottleneckFound(t *testing.T) {
	l := newLink(t, 3_000_000)
	l.rate = 400_000
	l.run(2*time.Second, func() float64 { return 2_000_000 })
	if est := l.estimate(); est > 400_000 || est < 150_000 {
		t.Fatalf("estimate %.0f bps after 2 s behind a 400 kbps link; want 150-400 kbps", est)
	}
}

// A sender that follows the estimate, from 300 kbps on a free path: it climbs past 2.5 Mbps within 10 s.
func TestGrowsWhenPathIsFree(t *testing.T) {
	l := newLink(t, 300_000)
	l.run(10*time.Second, func() float64 { return min(l.estimate(), 3_000_000) })
	if est := l.estimate(); est < 2_500_000 {
		t.Fatalf("estimate %.0f bps after 10 s on a free path; want at least 2.5 Mbps", est)
	}
}

// Sending 100 kbps on a free path proves no more than that: the estimate does not grow past twice the delivered
// rate plus the headroom.
func TestAppLimitedDoesNotInflate(t *testing.T) {
	l := newLink(t, 300_000)
	l.run(10*time.Second, func() float64 { return 100_000 })
	if est := l.estimate(); est > 450_000 {
		t.Fatalf("estimate %.0f bps after 10 s of sending 100 kbps; want at most 450 kbps", est)
	}
}

// 30 % random loss with no queue: the estimate falls below what is sent.
func TestLossCuts(t *testing.T) {
	l := newLink(t, 3_000_000)
	l.loss = 0.3
	l.run(3*time.Second, func() float64 { return 1_500_000 })
	if est := l.estimate(); est > 1_200_000 {
		t.Fatalf("estimate %.0f bps under 30 %% loss of a 1.5 Mbps stream; want under 1.2 Mbps", est)
	}
}

// A sender that follows the estimate behind a 400 kbps link keeps it near the link (it probes above and is cut
// back); after the limit lifts it gets back up; when the limit returns, the estimate is under it within a second.
func TestFollowsChangingLimit(t *testing.T) {
	l := newLink(t, 3_000_000)
	l.rate = 400_000
	follow := func() float64 { return min(l.estimate(), 3_000_000) }
	l.run(3*time.Second, follow)
	low := l.estimate()
	l.rate = 0
	l.run(10*time.Second, follow)
	high := l.estimate()
	l.rate = 400_000
	l.run(time.Second, follow)
	back := l.estimate()
	if low > 480_000 || high < 2_500_000 || back > 400_000 {
		t.Fatalf("estimate %.0f behind 400 kbps, %.0f 10 s after the limit lifted, %.0f 1 s after it returned", low, high, back)
	}
}

// Feedback for packets the estimator never sent, or sent so long ago that the ring forgot them, changes nothing.
func TestUnknownFeedbackIgnored(t *testing.T) {
	e := New(Config{Initial: 1_000_000, Min: 100_000, Max: 50_000_000})
	rec := twcc.NewRecorder(1)
	for i := 0; i < 100; i++ {
		rec.Record(2, uint16(i), int64(i)*1000)
	}
	for _, p := range rec.BuildFeedbackPacket() {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			e.Feedback(fb, time.Now())
		}
	}
	if got := e.GetTargetBitrate(); got != 1_000_000 {
		t.Fatalf("estimate %d after feedback for unknown packets; want the initial 1000000", got)
	}
}

// The feedback's 24-bit reference time wraps every 12.4 days: the clock made of it keeps going forward, and a late
// feedback from before the wrap stays before it.
func TestReferenceTimeWraps(t *testing.T) {
	e := New(Config{Initial: 1_000_000, Min: 100_000, Max: 50_000_000})
	const unit = 64 * int64(time.Millisecond)
	var got []int64
	for _, ref := range []uint32{1<<24 - 3, 1<<24 - 1, 2, 1<<24 - 2, 5} {
		got = append(got, e.reference(ref)/unit)
	}
	want := []int64{1<<24 - 3, 1<<24 - 1, 1<<24 + 2, 1<<24 - 2, 1<<24 + 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reference times %v; want %v", got, want)
		}
	}
}

// The change callback hears every new estimate, and may read the estimator (no lock is held while it runs).
func TestOnTargetBitrateChange(t *testing.T) {
	l := newLink(t, 3_000_000)
	var heard []int
	l.e.OnTargetBitrateChange(func(bps int) {
		heard = append(heard, bps)
		_ = l.e.GetStats() // would deadlock if the feedback lock were held
	})
	l.rate = 400_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(2*time.Second, func() float64 { return 2_000_000 })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the feedback did not return: the callback waits for a lock the estimator holds")
	}
	if len(heard) == 0 || heard[len(heard)-1] != l.e.GetTargetBitrate() {
		t.Fatalf("heard %v; the estimate is %d", heard, l.e.GetTargetBitrate())
	}
}
