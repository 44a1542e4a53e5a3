package cluster

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling"
)

// testPlacement is a Placement whose relays are recorded instead of connecting to another node.
type testPlacement struct {
	*Placement
	reg    *prometheus.Registry
	load   atomic.Int64
	relays chan fakeRun // each relay run as it starts; it runs until stopped
}

func startPlacement(t *testing.T, url, id, region string, capacity int) *testPlacement {
	t.Helper()
	return startPlacementWith(t, url, id, region, capacity, func(*Config) {})
}

// startPlacementWith is startPlacement with more of the cluster's configuration.
func startPlacementWith(t *testing.T, url, id, region string, capacity int, more func(*Config)) *testPlacement {
	t.Helper()
	tp := &testPlacement{reg: prometheus.NewRegistry(), relays: make(chan fakeRun, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := Config{RedisURL: url, Secret: []byte(testClusterSecret), Heartbeat: testHeartbeat, TTL: testTTL, Logger: zaptest.NewLogger(t).Named(id),
		Node:     NodeInfo{ID: id, Region: region, URL: "http://" + id + ".test:7880/", Capacity: capacity},
		LoadFunc: func() int { return int(tp.load.Load()) }}
	more(&cfg)
	p, err := NewPlacement(ctx, PlacementConfig{
		Cluster:    cfg,
		RelayToken: RelayToken([]byte("relay-secret"), "", id),
		Registerer: tp.reg,
	})
	if err != nil {
		t.Fatalf("NewPlacement(%s): %v", id, err)
	}
	p.relays.run = func(ctx context.Context, room, owner string, _ []string) error {
		tp.relays <- fakeRun{room: room, owner: owner, ctx: ctx}
		<-ctx.Done()
		return nil
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close(%s): %v", id, err)
		}
	})
	tp.Placement = p
	return tp
}

// metric is the value of a counter or gauge in the placement's registry; -1 if it is not there.
func (tp *testPlacement) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := tp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.Metric) == 0 {
			continue
		}
		m := mf.Metric[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// eventually polls cond every 20 ms, up to within.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPlacementRoute: the first participant of a room is hosted on the node it reaches, which owns the room;
// one reaching another node is redirected to the owner; when the owner is full, it is hosted there with one
// relay to the owner, which stops when it leaves.
func TestPlacementRoute(t *testing.T) {
	url := clustertest.StartRedis(t)
	a := startPlacement(t, url, "hk-a", "hk", 1)
	b := startPlacement(t, url, "hk-b", "hk", 1)
	ctx := testCtx(t, 10*time.Second)
	hk := []string{"hk"}

	if r, err := a.Route(ctx, "standup", hk); err != nil || r.Redirect != "" || r.Release != nil {
		t.Fatalf("the first participant on a: route %+v, %v; want here", r, err)
	}
	r, err := b.Route(ctx, "standup", hk)
	if err != nil || r.Redirect != "http://hk-a.test:7880" || r.Release != nil {
		t.Fatalf("a participant on b: route %+v, %v; want a redirect to a", r, err)
	}

	a.load.Store(1) // a is full once its heartbeat says so
	eventually(t, 5*time.Second, "b sees a full", func() bool {
		nodes, err := b.c.Nodes(ctx, "hk")
		return err == nil && slices.ContainsFunc(nodes, func(n NodeInfo) bool { return n.ID == "hk-a" && n.Load == 1 })
	})
	r, err = b.Route(ctx, "standup", hk)
	if err != nil || r.Redirect != "" || r.Release == nil {
		t.Fatalf("a participant on b while a is full: route %+v, %v; want here with a relay", r, err)
	}
	var run fakeRun
	select {
	case run = <-b.relays:
	case <-time.After(5 * time.Second):
		t.Fatal("b does not relay the room")
	}
	if run.room != "standup" || run.owner != "http://hk-a.test:7880" {
		t.Fatalf("b relays %q to %s, want standup to a", run.room, run.owner)
	}
	if v := b.metric(t, "sfu_rooms_relayed"); v != 1 {
		t.Fatalf("sfu_rooms_relayed = %v on b, want 1", v)
	}
	r.Release()
	if !ended(run.ctx, 5*time.Second) {
		t.Fatal("the relay goes on after the participant left b")
	}
	if v := b.metric(t, "sfu_rooms_relayed"); v != 0 {
		t.Fatalf("sfu_rooms_relayed = %v on b after the participant left, want 0", v)
	}
}

// TestPlacementResidency: a room whose policy does not name this node's region is refused here, and counted.
func TestPlacementResidency(t *testing.T) {
	url := clustertest.StartRedis(t)
	sg := startPlacement(t, url, "sg-a", "sg", 10)
	ctx := testCtx(t, 10*time.Second)
	if sg.Region() != "sg" {
		t.Fatalf("region %q", sg.Region())
	}
	if _, err := sg.Route(ctx, "hk-only", []string{"hk"}); !errors.Is(err, signaling.ErrResidency) {
		t.Fatalf("an hk room on an sg node: %v, want ErrResidency", err)
	}
	if v := sg.metric(t, "sfu_residency_refusals_total"); v != 1 {
		t.Fatalf("sfu_residency_refusals_total = %v, want 1", v)
	}
	if owner, ok, err := sg.c.Owner(ctx, "hk-only"); err != nil || ok {
		t.Fatalf("the refused room has an owner: %+v %v %v", owner, ok, err)
	}
	if r, err := sg.Route(ctx, "anywhere", []string{"hk", "sg"}); err != nil || r.Redirect != "" {
		t.Fatalf("a room allowed in sg: route %+v, %v; want here", r, err)
	}
}

// TestFallbacksFromSnapshot: Fallbacks lists the region's other nodes that take rooms, as the heartbeat last
// read them, and answers at once while Redis does not answer at all.
func TestFallbacksFromSnapshot(t *testing.T) {
	url := clustertest.StartRedis(t)
	a := startPlacement(t, url, "hk-a", "hk", 10)
	b := startPlacement(t, url, "hk-b", "hk", 10)
	c := startPlacement(t, url, "hk-c", "hk", 10)
	startPlacement(t, url, "sg-a", "sg", 10)
	ctx := testCtx(t, 20*time.Second)
	want := func(urls ...string) func() bool {
		return func() bool {
			got := a.Fallbacks()
			slices.Sort(got)
			return slices.Equal(got, urls)
		}
	}
	eventually(t, 5*time.Second, "a lists b and c", want("http://hk-b.test:7880", "http://hk-c.test:7880"))
	if _, err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a no longer lists the draining c", want("http://hk-b.test:7880"))
	// b reads the region on its own heartbeat: it may see the drain a beat after a.
	eventually(t, 5*time.Second, "b lists a alone (c drains)", func() bool {
		return slices.Equal(b.Fallbacks(), []string{"http://hk-a.test:7880"})
	})

	// Redis stops answering every client for 3 s.
	rdb := rawClient(t, url)
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "3000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := a.Fallbacks()
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("Fallbacks took %v while Redis does not answer", took)
	}
	probe := make(chan error, 1)
	go func() { probe <- rdb.Ping(context.Background()).Err() }() // a fresh read, as the lookup used to be
	select {
	case err := <-probe:
		t.Fatalf("Redis answered a PING (%v) during the pause: the test proves nothing", err)
	case <-time.After(300 * time.Millisecond):
	}
	if !slices.Equal(got, []string{"http://hk-b.test:7880"}) {
		t.Errorf("Fallbacks while Redis does not answer: %v, want the last snapshot (b)", got)
	}
	select {
	case <-probe: // Redis answers again: the placements can leave the cluster
	case <-time.After(10 * time.Second):
		t.Fatal("Redis does not answer after the pause")
	}
}

// TestDrainTarget: Drain marks the node draining, so no new room is placed on it, and names another live node
// of the region that is not draining; none when there is none.
func TestDrainTarget(t *testing.T) {
	url := clustertest.StartRedis(t)
	a := startPlacement(t, url, "hk-a", "hk", 10)
	b := startPlacement(t, url, "hk-b", "hk", 10)
	startPlacement(t, url, "sg-a", "sg", 10)
	ctx := testCtx(t, 10*time.Second)
	to, err := a.Drain(ctx)
	if err != nil || to != "http://hk-b.test:7880" {
		t.Fatalf("a drains to %q (%v), want b", to, err)
	}
	if owner, _, err := a.c.Place(ctx, "new", []string{"hk"}); err != nil || owner.ID != "hk-b" {
		t.Fatalf("a new room goes to %q (%v) while a drains, want b", owner.ID, err)
	}
	if to, err := b.Drain(ctx); err != nil || to != "" {
		t.Fatalf("b drains to %q (%v), want nowhere: a drains too", to, err)
	}
}
