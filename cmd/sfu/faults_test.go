package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/redis/go-redis/v9"
)

// Fault tests: the node keeps a meeting going while something around it fails, and reports what a user would
// notice (seconds without media, frozen video, packet rates, latency).

// totalPackets is every packet tc has received, from anyone, of any kind.
func totalPackets(tc *testClient) int64 {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var n int64
	for _, st := range tc.received {
		n += st.packets.Load()
	}
	return n
}

// sampleSeconds counts, for secs seconds from now, how many packets each counter gained in each second, on its
// own goroutine; wait returns the counts, by counter name, once the seconds are over (or ctx has ended).
func sampleSeconds(ctx context.Context, secs int, counters map[string]func() int64) (wait func() map[string][]int64) {
	out := map[string][]int64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := map[string]int64{}
		for name, f := range counters {
			last[name] = f()
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range secs {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for name, f := range counters {
				v := f()
				out[name] = append(out[name], v-last[name])
				last[name] = v
			}
		}
	}()
	return func() map[string][]int64 {
		<-done
		return out
	}
}

// silentSeconds is how many of the seconds had no packet.
func silentSeconds(perSecond []int64) int {
	n := 0
	for _, v := range perSecond {
		if v == 0 {
			n++
		}
	}
	return n
}

// TestClusterSurvivesRedisOutage: two nodes of a region share one redis-server; a meeting runs on its owner
// (a presenter and two viewers) and one more viewer is hosted on the other node, relayed, because the owner is
// full. redis-server is killed (its data, without persistence, with it) and started again, empty, on the same
// port 10 s later. Media keeps flowing to every viewer through the outage, not a second without packets; once
// Redis is back, both nodes register again, the owner holds the room's lease again (no second owner: a new
// participant arriving at the other node is relayed to the owner, not given a room of its own) and joins work.
func TestClusterSurvivesRedisOutage(t *testing.T) {
	const (
		room   = "outage"
		outage = 10 * time.Second
		before = 2 // seconds measured before the kill
		after  = 2 // and after the restart
	)
	srv := clustertest.StartRedisServer(t)
	a := clusterNode(t, srv.URL, "hk", "hk-a", 3) // full with the meeting: a fourth participant reaching b stays there
	b := clusterNode(t, srv.URL, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// lease is the id of the node holding the room's lease, as Redis has it now ("" when none or unreachable).
	lease := func() string {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		v, _ := rdb.HGet(rctx, "sfu:room:"+room, "node").Result()
		return v
	}
	registered := func(id string) bool {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		n, err := rdb.Exists(rctx, "sfu:node:"+id).Result()
		return err == nil && n == 1
	}

	m := startMedia(t, ctx)
	presenter := joinClient(t, ctx, a, room, "presenter")
	m.publish(t, presenter)
	viewers := []*testClient{
		joinClientToken(t, ctx, a, token(t, room, "viewer-1", false, true)),
		joinClientToken(t, ctx, a, token(t, room, "viewer-2", false, true)),
	}
	if sfuParticipants(a) != 3 {
		t.Fatalf("a hosts %d participants, want the presenter and two viewers", sfuParticipants(a))
	}
	waitLoad(t, rdb, "hk-a", 3)
	remote := joinClientToken(t, ctx, b, token(t, room, "remote-viewer", false, true)) // hosted on b, relayed
	for _, v := range viewers {
		eventually(t, 10*time.Second, v.Joined.You.Identity+" receives the presenter", func() bool { return receivesFrom(v, presenter.ID(), 20) })
	}
	eventually(t, 20*time.Second, "the remote viewer receives the presenter through the relay", func() bool { return receivesAny(remote, 20) })
	if v := metricValue(scrape(t, b), "sfu_rooms_relayed"); v != 1 {
		t.Fatalf("sfu_rooms_relayed on b = %v, want 1", v)
	}
	if got := lease(); got != "hk-a" {
		t.Fatalf("the room's lease is held by %q, want hk-a", got)
	}

	counters := map[string]func() int64{"remote-viewer (b, relayed)": func() int64 { return totalPackets(remote) }}
	for _, v := range viewers {
		counters[v.Joined.You.Identity+" (a)"] = func() int64 { return totalPackets(v) }
	}
	wait := sampleSeconds(ctx, before+int(outage/time.Second)+after, counters)
	time.Sleep(before * time.Second)

	srv.Kill()
	killed := time.Now()
	t.Logf("redis-server killed")
	// What a participant arriving during the outage gets: a refusal, as nobody can say who owns the room.
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	began := time.Now()
	late, err := client.Dial(dctx, client.WSURL(b.baseURL()), token(t, room, "late", false, true), client.Options{API: api})
	dcancel()
	if err == nil {
		late.Close()
		t.Errorf("a join on b during the outage was admitted (%d participants on b): the room has no known owner then", sfuParticipants(b))
	} else {
		t.Logf("a join on b during the outage, after %v: %v", time.Since(began).Round(time.Millisecond), err)
	}
	select {
	case <-time.After(time.Until(killed.Add(outage))):
	case <-ctx.Done():
		t.Fatal("test context ended during the outage")
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	restarted := time.Now()
	t.Logf("redis-server back, empty, %v after the kill", restarted.Sub(killed).Round(time.Millisecond))

	// Recovery: both nodes register again with their heartbeats, and the owner holds the lease again.
	var heartbeats, leased time.Duration
	for heartbeats == 0 || leased == 0 {
		if heartbeats == 0 && registered("hk-a") && registered("hk-b") {
			heartbeats = time.Since(restarted)
		}
		if leased == 0 {
			switch l := lease(); l {
			case "hk-a":
				leased = time.Since(restarted)
			case "":
			default:
				t.Fatalf("after the outage the room's lease is held by %q, not its owner hk-a: a split room", l)
			}
		}
		if time.Since(restarted) > 10*time.Second {
			t.Fatalf("10 s after Redis came back: nodes registered again: %v (after %v); the room's lease held by %q, want hk-a, which still hosts it",
				heartbeats > 0, heartbeats.Round(time.Millisecond), lease())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovery: both nodes registered %v after the restart, the owner's lease back %v after it",
		heartbeats.Round(time.Millisecond), leased.Round(time.Millisecond))

	perSecond := wait()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range counters {
			if !yield(k) {
				return
			}
		}
	}) {
		s := perSecond[name]
		t.Logf("%-27s packets per second (kill after second %d, restart after second %d): %v", name, before, before+int(outage/time.Second), s)
		if len(s) != before+int(outage/time.Second)+after {
			t.Fatalf("%s: %d seconds sampled", name, len(s))
		}
		if n := silentSeconds(s); n > 0 {
			t.Errorf("%s: %d seconds without a packet", name, n)
		}
	}

	// A new participant arriving at b is relayed to the owner: one room, on a, whose lease a holds.
	joined := time.Now()
	newcomer := joinClientToken(t, ctx, b, token(t, room, "newcomer", false, true))
	eventually(t, 10*time.Second, "the newcomer receives the presenter", func() bool { return receivesAny(newcomer, 20) })
	t.Logf("a new join on b after the outage: receiving the presenter %v after its dial, %v after the restart",
		time.Since(joined).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if got := lease(); got != "hk-a" {
		t.Errorf("after the new join the room's lease is held by %q, want hk-a", got)
	}
	if v := metricValue(scrape(t, b), "sfu_rooms_relayed"); v != 1 {
		t.Errorf("sfu_rooms_relayed on b = %v, want 1 (b relays the room to its owner)", v)
	}
	if st := a.sfu.Stats(); st.Rooms != 1 {
		t.Errorf("a has %d rooms", st.Rooms)
	}
	for _, v := range append(viewers, remote, presenter) {
		select {
		case <-v.Done():
			t.Errorf("%s was disconnected", v.Joined.You.Identity)
		default:
		}
	}
}

// uplinkLoss is a lossyConn that drops only what the client sends: a publisher on a lossy uplink.
type uplinkLoss struct{ *lossyConn }

func (u uplinkLoss) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := u.conn.ReadFrom(p)
	if err == nil {
		u.passedIn.Add(1)
	}
	return n, addr, err
}

// videoWatch follows one publisher's video at one subscriber: its frames (frameLog) and when each packet came.
type videoWatch struct {
	name string
	log  *frameLog
	ssrc atomic.Uint32 // the track's SSRC as this subscriber sees it
	last atomic.Int32  // the latest sequence number received, -1 before the first

	mu       sync.Mutex
	arrivals []time.Time // capped at maxArrivals
}

const maxArrivals = 50000

func newVideoWatch(name string) *videoWatch {
	w := &videoWatch{name: name, log: newFrameLog()}
	w.last.Store(-1)
	return w
}

func (w *videoWatch) read(track *webrtc.TrackRemote) {
	w.ssrc.Store(uint32(track.SSRC()))
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		w.log.add(now, pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload)
		w.last.Store(int32(pkt.SequenceNumber))
		w.mu.Lock()
		if len(w.arrivals) < maxArrivals {
			w.arrivals = append(w.arrivals, now)
		}
		w.mu.Unlock()
	}
}

// watchWindow is what a subscriber saw of the video in a window of time.
type watchWindow struct {
	packets      int           // packets that arrived in the window
	rate         float64       // a second
	sent, whole  int           // frames the publisher sent in the window; those complete within playoutWindow
	freezes      int           // gaps over playoutWindow without a complete frame
	longest      time.Duration // the longest gap
	p50, p95, mx time.Duration // latency of complete frames: publisher's send to complete at the subscriber
}

func (w watchWindow) String() string {
	return fmt.Sprintf("%d packets (%.0f/s), %d/%d frames whole, %d freezes (longest gap %v), latency p50 %v p95 %v max %v",
		w.packets, w.rate, w.whole, w.sent, w.freezes, w.longest.Round(time.Millisecond),
		w.p50.Round(100*time.Microsecond), w.p95.Round(100*time.Microsecond), w.mx.Round(100*time.Microsecond))
}

// window measures the frames sent in [from, to) and the packets that arrived then.
func (w *videoWatch) window(from, to time.Time) watchWindow {
	var r watchWindow
	w.mu.Lock()
	for _, at := range w.arrivals {
		if !at.Before(from) && at.Before(to) {
			r.packets++
		}
	}
	w.mu.Unlock()
	r.rate = float64(r.packets) / to.Sub(from).Seconds()

	fl := w.log
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var done []time.Time
	var lat []time.Duration
	for _, f := range fl.frames {
		if !f.stamped || f.stamp.Sent.Before(from) || !f.stamp.Sent.Before(to) {
			continue
		}
		r.sent++ // of those that showed up at all; the count of the missing is in whole's shortfall below
		if !f.complete.IsZero() && f.complete.Sub(f.first) <= playoutWindow {
			r.whole++
			done = append(done, f.complete)
			lat = append(lat, f.complete.Sub(f.stamp.Sent))
		}
	}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	prev := from
	for _, at := range append(done, to) {
		if gap := at.Sub(prev); gap > r.longest {
			r.longest = gap
		}
		if at.Sub(prev) > playoutWindow {
			r.freezes++
		}
		prev = at
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50, r.p95, r.mx = lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1]
	}
	return r
}

// subscribedPackets is sfu_subscriber_packets_sent_total for one participant (the node runs with MetricsDetail).
func subscribedPackets(t *testing.T, n *node, room, participant string) float64 {
	t.Helper()
	v := metricValue(scrape(t, n), fmt.Sprintf(`sfu_subscriber_packets_sent_total{participant=%q,room=%q}`, participant, room))
	if v < 0 {
		t.Fatalf("no sfu_subscriber_packets_sent_total for %s", participant)
	}
	return v
}

// TestFaultyPeersIsolated: in a room with a healthy publisher H, a second publisher L whose uplink loses 30 %
// of its packets for 5 s and, at the same time, a subscriber F that sends 10,000 NACKs a second for H's video
// do not disturb the others: the control subscribers C1 and C2 see no freeze of H's video and its packet rate
// within 20 % of the 5 s before the faults; F gets no more retransmissions than the SFU's per-subscriber limit
// allows (rtx.go: 400 a second, 200 at once).
func TestFaultyPeersIsolated(t *testing.T) {
	const (
		room        = "faulty"
		window      = 5 * time.Second
		nackRate    = 10000 // NACK messages a second
		nackBatch   = 10    // NACK messages a WriteRTCP
		upLoss      = 0.30
		maxRateDiff = 0.20
		// rtx.go's limit over the window, and a margin for the timer granularity of the window's ends.
		maxRetransmits = 400*5 + 200 + 100
	)
	n := startTestNode(t, func(c *config) { c.MetricsDetail = true })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)

	h := joinClient(t, ctx, n, room, "healthy")
	m.publish(t, h)

	// Subscribers that follow H's video with a frame log: C1, C2 and the flooder F. C1 follows L's video too.
	lossyAtC1 := newVideoWatch("C1, L's video")
	subscribe := func(name string) (*client.Client, *videoWatch) {
		w := newVideoWatch(name)
		api, err := loopbackAPI()
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, room, name, false, true), client.Options{API: api,
			OnTrack: func(pid string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				switch {
				case pid == h.ID() && track.Kind() == webrtc.RTPCodecTypeVideo:
					w.read(track)
					return
				case name == "C1" && track.Kind() == webrtc.RTPCodecTypeVideo: // the only other video: L's
					lossyAtC1.read(track)
					return
				}
				buf := make([]byte, 1500)
				for {
					if _, _, err := track.Read(buf); err != nil {
						return
					}
				}
			}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(c.Close)
		return c, w
	}
	c1, w1 := subscribe("C1")
	_, w2 := subscribe("C2")
	f, wf := subscribe("F")

	// L publishes through a socket that drops 30 % of what it sends, once switched on.
	conn, err := newLossyConn(upLoss, 30)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lapi, err := client.NewAPIOnConn(uplinkLoss{conn})
	if err != nil {
		t.Fatal(err)
	}
	l := joinClientAPI(t, ctx, n, token(t, room, "lossy", true, false), lapi)
	m.publish(t, l)

	for _, w := range []*videoWatch{w1, w2, wf} {
		eventually(t, 10*time.Second, w.name+" receives H's video", w.log.started)
	}
	eventually(t, 10*time.Second, "L's tracks are forwarded", func() bool {
		st := n.sfu.Stats()
		return st.Tracks == 4
	})
	time.Sleep(time.Second) // past the start: the control window is a steady meeting

	ctrlFrom := time.Now()
	time.Sleep(window)
	faultFrom := time.Now()
	nacksBefore := metricValue(scrape(t, n), "sfu_nacks_total")
	sentF, sentC1 := subscribedPackets(t, n, room, f.ID()), subscribedPackets(t, n, room, c1.ID())

	// The faults, for one window: L's uplink loss and F's NACK flood.
	droppedBefore, passedBefore := conn.droppedOut.Load(), conn.passedOut.Load()
	conn.active.Store(true)
	var flooded atomic.Int64
	var floodErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		ssrc := wf.ssrc.Load()
		start := time.Now()
		pkts := make([]rtcp.Packet, nackBatch)
		for sent := 0; sent < nackRate*int(window/time.Second); {
			elapsed := time.Since(start)
			if elapsed >= window || ctx.Err() != nil {
				break
			}
			for due := int(elapsed.Seconds() * nackRate); sent < due; sent += nackBatch {
				last := uint16(wf.last.Load())
				for i := range pkts {
					// 17 packets each, among the last ~100 F has had: what the SFU still keeps.
					pkts[i] = &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: ssrc,
						Nacks: []rtcp.NackPair{{PacketID: last - 100 + uint16((sent+i)%80), LostPackets: 0xffff}}}
				}
				if err := f.Sub.WriteRTCP(pkts); err != nil {
					floodErr.Store(err)
					return
				}
				flooded.Add(nackBatch)
			}
			<-tick.C
		}
	}()
	time.Sleep(window)
	conn.active.Store(false)
	faultTo := time.Now()
	dropped, passed := conn.droppedOut.Load()-droppedBefore, conn.passedOut.Load()-passedBefore
	wg.Wait()
	if err, _ := floodErr.Load().(error); err != nil {
		t.Fatalf("F's NACKs: %v", err)
	}
	nacksAsked := metricValue(scrape(t, n), "sfu_nacks_total") - nacksBefore
	extraF := (subscribedPackets(t, n, room, f.ID()) - sentF) - (subscribedPackets(t, n, room, c1.ID()) - sentC1)
	time.Sleep(playoutWindow + 200*time.Millisecond) // the fault window's last frames may still complete
	m.stop()

	t.Logf("L's uplink in the fault window: dropped %d of the %d packets it sent (%.1f%%)", dropped, dropped+passed,
		100*float64(dropped)/float64(max(dropped+passed, 1)))
	t.Logf("%s, control window: %s", lossyAtC1.name, lossyAtC1.window(ctrlFrom, faultFrom))
	t.Logf("%s, fault window:   %s", lossyAtC1.name, lossyAtC1.window(faultFrom, faultTo))
	t.Logf("F sent %d NACK messages in %v (%.0f/s); the SFU counted %.0f packets asked again (sfu_nacks_total)",
		flooded.Load(), window, float64(flooded.Load())/window.Seconds(), nacksAsked)
	t.Logf("F got %.0f packets more than C1 in the fault window (retransmissions, sfu_subscriber_packets_sent_total); %d duplicates reached F's track",
		extraF, func() int { wf.log.mu.Lock(); defer wf.log.mu.Unlock(); return wf.log.repeated }())
	for _, w := range []*videoWatch{w1, w2} {
		ctrl, fault := w.window(ctrlFrom, faultFrom), w.window(faultFrom, faultTo)
		t.Logf("%s, H's video, control window: %s", w.name, ctrl)
		t.Logf("%s, H's video, fault window:   %s", w.name, fault)
		if fault.freezes > 0 {
			t.Errorf("%s: H's video froze %d times in the fault window (longest %v without a frame)", w.name, fault.freezes, fault.longest)
		}
		if ctrl.rate <= 0 || fault.rate < (1-maxRateDiff)*ctrl.rate || fault.rate > (1+maxRateDiff)*ctrl.rate {
			t.Errorf("%s: H's video at %.0f packets/s in the fault window, %.0f in the control window: more than %.0f%% apart",
				w.name, fault.rate, ctrl.rate, 100*maxRateDiff)
		}
	}
	if wf := f.Sub.ConnectionState(); wf != webrtc.PeerConnectionStateConnected {
		t.Logf("F's subscribe connection is %s", wf)
	}
	if flooded.Load() < nackRate*int64(window/time.Second)/2 {
		t.Errorf("F sent only %d NACK messages: the flood did not happen", flooded.Load())
	}
	if nacksAsked < float64(flooded.Load()) {
		t.Errorf("the SFU counted %.0f packets asked again for %d NACK messages of 17 each: the NACKs did not reach it", nacksAsked, flooded.Load())
	}
	if extraF < 400*window.Seconds()/2 {
		t.Errorf("F got only %.0f retransmissions in %v: the flood did not reach the retransmission limit, so the bound is not tested", extraF, window)
	}
	if extraF > maxRetransmits {
		t.Errorf("F got %.0f retransmissions in %v, want at most %d (400/s and a burst of 200)", extraF, window, maxRetransmits)
	}
}

// raiseFileLimit raises the process's open-file limit to at least want (as far as its hard limit allows).
func raiseFileLimit(t *testing.T, want uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= want {
		return
	}
	old := lim
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	if lim.Cur < want {
		t.Skipf("open-file limit %d, below the %d the test needs", lim.Cur, want)
	}
}

// TestUnjoinedFloodMeetingUnaffected: with no cap per address and the node's cap at its default 1,000, one
// address opens 1,000 WebSockets that never join, while a presenter and two viewers meet: the viewers receive
// media every second, and socket 1,001 is refused with 503. The process's heap and goroutines are logged before,
// with the sockets open, and after they are closed.
func TestUnjoinedFloodMeetingUnaffected(t *testing.T) {
	const (
		sockets = 1000
		dialers = 32
		measure = 8 // seconds: within the server's 10 s join timeout of the first socket
	)
	raiseFileLimit(t, 4*sockets+1000) // both ends of every socket, in this process, and the rest
	n := startTestNode(t, func(c *config) { c.MaxUnjoinedPerIP, c.MaxUnjoined = 0, 1000 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	presenter := joinClient(t, ctx, n, "flooded", "presenter")
	m.publish(t, presenter)
	viewers := []*testClient{
		joinClientToken(t, ctx, n, token(t, "flooded", "viewer-1", false, true)),
		joinClientToken(t, ctx, n, token(t, "flooded", "viewer-2", false, true)),
	}
	for _, v := range viewers {
		eventually(t, 10*time.Second, v.Joined.You.Identity+" receives the presenter", func() bool { return receivesFrom(v, presenter.ID(), 20) })
	}
	heap0, g0 := heapAfterGC(), settledGoroutines()

	counters := map[string]func() int64{}
	for _, v := range viewers {
		counters[v.Joined.You.Identity] = func() int64 { return totalPackets(v) }
	}
	wait := sampleSeconds(ctx, measure, counters)

	// Open the sockets, dialers at a time; none joins.
	began := time.Now()
	socks := make([]*websocket.Conn, sockets)
	statuses := make([]int, sockets)
	errs := make([]error, sockets)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= sockets || ctx.Err() != nil {
					return
				}
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				ws, resp, err := smallDialer.DialContext(dctx, client.WSURL(n.baseURL()), nil)
				cancel()
				if resp != nil {
					statuses[i] = resp.StatusCode
					_ = resp.Body.Close()
				}
				socks[i], errs[i] = ws, err
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, ws := range socks {
			if ws != nil {
				_ = ws.Close()
			}
		}
	}()
	opened := time.Since(began)
	open := 0
	for i := range socks {
		if socks[i] != nil {
			open++
		} else if open < 3 || i < 3 {
			t.Logf("socket %d: status %d, %v", i+1, statuses[i], errs[i])
		}
	}
	t.Logf("%d of %d unjoined sockets open in %v", open, sockets, opened.Round(time.Millisecond))
	if open != sockets {
		t.Fatalf("%d of %d unjoined sockets were accepted, want all", open, sockets)
	}
	if opened > 7*time.Second {
		t.Fatalf("opening the sockets took %v: the first would be closed by the join timeout before the test is done", opened)
	}
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	extra, resp, err := smallDialer.DialContext(dctx, client.WSURL(n.baseURL()), nil)
	dcancel()
	if extra != nil {
		_ = extra.Close()
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
		_ = resp.Body.Close()
	}
	if status != http.StatusServiceUnavailable {
		t.Errorf("socket %d: status %d (%v), want 503 Service Unavailable", sockets+1, status, err)
	} else {
		t.Logf("socket %d: %d", sockets+1, status)
	}
	heap1, g1 := heapAfterGC(), runtime.NumGoroutine()

	perSecond := wait()
	for _, v := range viewers {
		name := v.Joined.You.Identity
		s := perSecond[name]
		t.Logf("%s packets per second while the sockets open and stay open: %v", name, s)
		if len(s) != measure {
			t.Fatalf("%s: %d seconds sampled", name, len(s))
		}
		if k := silentSeconds(s); k > 0 {
			t.Errorf("%s: %d seconds without a packet", name, k)
		}
	}
	for _, v := range append(viewers, presenter) {
		select {
		case <-v.Done():
			t.Errorf("%s was disconnected", v.Joined.You.Identity)
		default:
		}
	}

	for i, ws := range socks {
		_ = ws.Close()
		socks[i] = nil
	}
	eventually(t, 15*time.Second, "the sockets' goroutines end", func() bool { return runtime.NumGoroutine() <= g0+20 })
	heap2, g2 := heapAfterGC(), settledGoroutines()
	mib := func(ms runtime.MemStats) string { return fmt.Sprintf("%.1f MiB", float64(ms.HeapAlloc)/(1<<20)) }
	t.Logf("process (server and clients): heap %s, %d goroutines before; %s, %d with %d sockets open; %s, %d after they closed",
		mib(heap0), g0, mib(heap1), g1, sockets, mib(heap2), g2)
	if st := n.sfu.Stats(); st.Participants != 3 {
		t.Errorf("the node hosts %d participants, want the 3 of the meeting", st.Participants)
	}
}
