package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// Fast timings for the tests that do not measure the default ones.
const (
	testHeartbeat     = 100 * time.Millisecond
	testTTL           = 500 * time.Millisecond
	testClusterSecret = "cluster-secret"
)

// crash stops the heartbeat as a crashed node would, without releasing
// leases or deregistering: the keys stay until their TTL lapses.
func (c *Cluster) crash() { c.Abandon() }

type testNode struct {
	*Cluster
	load atomic.Int64
}

type nodeOpts struct {
	id, region string
	load       int
	capacity   int
	heartbeat  time.Duration
	ttl        time.Duration
}

func startNode(t *testing.T, url string, o nodeOpts) *testNode {
	t.Helper()
	if o.capacity == 0 {
		o.capacity = 10
	}
	if o.heartbeat == 0 {
		o.heartbeat, o.ttl = testHeartbeat, testTTL
	}
	n := &testNode{}
	n.load.Store(int64(o.load))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, Config{
		RedisURL:  url,
		Node:      NodeInfo{ID: o.id, Region: o.region, URL: "http://" + o.id + ".test:7880", Capacity: o.capacity},
		LoadFunc:  func() int { return int(n.load.Load()) },
		Heartbeat: o.heartbeat,
		TTL:       o.ttl,
		Logger:    zaptest.NewLogger(t).Named(o.id),
		Secret:    []byte(testClusterSecret),
	})
	if err != nil {
		t.Fatalf("New(%s): %v", o.id, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close(%s): %v", o.id, err)
		}
	})
	n.Cluster = c
	return n
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ids(nodes []NodeInfo) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, nodes []NodeInfo, want ...string) {
	t.Helper()
	got := ids(nodes)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func place(t *testing.T, ctx context.Context, c *testNode, room string, regions ...string) (string, bool) {
	t.Helper()
	owner, mine, err := c.Place(ctx, room, regions)
	if err != nil {
		t.Fatalf("%s.Place(%q, %v): %v", c.Self().ID, room, regions, err)
	}
	if mine != (owner.ID == c.Self().ID) {
		t.Fatalf("%s.Place(%q): owner %s but mine=%v", c.Self().ID, room, owner.ID, mine)
	}
	return owner.ID, mine
}

func ownerID(t *testing.T, ctx context.Context, c *testNode, room string) string {
	t.Helper()
	owner, ok, err := c.Owner(ctx, room)
	if err != nil {
		t.Fatalf("Owner(%q): %v", room, err)
	}
	if !ok {
		return ""
	}
	return owner.ID
}

func TestNodes(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5})
	startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1})
	startNode(t, url, nodeOpts{id: "c", region: "sg", load: 0, capacity: 100})

	hk, err := a.Nodes(ctx, "hk")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("hk")`, hk, "b", "a")
	if hk[0].Load != 1 || hk[0].Capacity != 10 || hk[0].Region != "hk" || hk[0].URL != "http://b.test:7880" || hk[0].Draining {
		t.Fatalf("node b = %+v", hk[0])
	}
	all, err := a.Nodes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("")`, all, "c", "b", "a")
	sg, err := a.Nodes(ctx, "sg")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("sg")`, sg, "c")
	none, err := a.Nodes(ctx, "eu")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("eu")`, none)

	// Loads are republished by the heartbeat.
	a.load.Store(0)
	deadline := time.Now().Add(testTTL + time.Second)
	for {
		hk, err := a.Nodes(ctx, "hk")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids(hk)) == "[a b]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf(`Nodes("hk") = %v after a's load dropped, want [a b]`, ids(hk))
		}
		time.Sleep(testHeartbeat / 2)
	}
}

func TestPlaceLeastLoaded(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1})
	room := "room with spaces/ünïcode:*{x}\x00end"

	if owner, mine := place(t, ctx, a, room, "hk"); owner != "b" || mine {
		t.Fatalf("a.Place = %s mine=%v, want b mine=false", owner, mine)
	}
	// No lease is taken on b's behalf.
	if got := ownerID(t, ctx, a, room); got != "" {
		t.Fatalf("Owner after a.Place = %q, want none", got)
	}
	if owner, mine := place(t, ctx, b, room, "hk"); owner != "b" || !mine {
		t.Fatalf("b.Place = %s mine=%v, want b mine=true", owner, mine)
	}
	if got := ownerID(t, ctx, a, room); got != "b" {
		t.Fatalf("Owner = %q, want b", got)
	}
	// Even when b gets busier, the room stays where it is.
	b.load.Store(9)
	if owner, mine := place(t, ctx, a, room, "hk"); owner != "b" || mine {
		t.Fatalf("second a.Place = %s mine=%v, want b mine=false", owner, mine)
	}
	// The lease outlives its TTL while b's heartbeat renews it.
	time.Sleep(2 * testTTL)
	if got := ownerID(t, ctx, a, room); got != "b" {
		t.Fatalf("Owner after 2 TTLs = %q, want b (lease renewed)", got)
	}
	// A similar room name is another room.
	if got := ownerID(t, ctx, a, "room with spaces/ünïcode:*{x}"); got != "" {
		t.Fatalf("Owner of a prefix of the room name = %q, want none", got)
	}
}

func TestPlaceOtherRegion(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5})
	startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1})
	c := startNode(t, url, nodeOpts{id: "c", region: "sg", load: 0})

	if owner, mine := place(t, ctx, a, "r1", "sg"); owner != "c" || mine {
		t.Fatalf(`a.Place(["sg"]) = %s mine=%v, want c`, owner, mine)
	}
	if owner, mine := place(t, ctx, c, "r1", "sg"); owner != "c" || !mine {
		t.Fatalf(`c.Place(["sg"]) = %s mine=%v, want c mine=true`, owner, mine)
	}
	// This node's region is preferred when it is allowed, even though c is
	// less loaded.
	if owner, _ := place(t, ctx, a, "r2", "sg", "hk"); owner != "b" {
		t.Fatalf(`a.Place(["sg","hk"]) = %s, want b (own region first)`, owner)
	}
	// Without regions any region is allowed; c's own region is sg.
	if owner, mine := place(t, ctx, c, "r3"); owner != "c" || !mine {
		t.Fatalf(`c.Place(nil) = %s mine=%v, want c mine=true`, owner, mine)
	}
	// No node in the allowed regions.
	if _, _, err := a.Place(ctx, "r4", []string{"eu"}); !errors.Is(err, ErrNoNode) {
		t.Fatalf(`Place(["eu"]) err = %v, want ErrNoNode`, err)
	}
}

func TestPlaceConcurrent(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 20*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 0})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 0})

	type result struct {
		owner NodeInfo
		mine  bool
		err   error
	}
	wins := map[string]int{}
	for i := 0; i < 50; i++ {
		room := fmt.Sprintf("race-%d", i)
		var wg sync.WaitGroup
		start := make(chan struct{})
		res := make([]result, 2)
		for j, n := range []*testNode{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				owner, mine, err := n.Place(ctx, room, []string{"hk"})
				res[j] = result{owner, mine, err}
			}()
		}
		close(start)
		wg.Wait()
		for j, r := range res {
			if r.err != nil {
				t.Fatalf("%s: Place %d: %v", room, j, r.err)
			}
		}
		if res[0].owner.ID != res[1].owner.ID {
			t.Fatalf("%s: a got %s, b got %s", room, res[0].owner.ID, res[1].owner.ID)
		}
		if res[0].mine == res[1].mine {
			t.Fatalf("%s: mine a=%v b=%v, want exactly one owner", room, res[0].mine, res[1].mine)
		}
		winner := res[0].owner.ID
		if (winner == "a") != res[0].mine {
			t.Fatalf("%s: owner %s but a.mine=%v", room, winner, res[0].mine)
		}
		if got := ownerID(t, ctx, a, room); got != winner {
			t.Fatalf("%s: Owner = %q, want %s", room, got, winner)
		}
		wins[winner]++
	}
	t.Logf("wins: %v", wins)
}

func TestCrashMovesRoom(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 20*time.Second)
	// Default heartbeat and TTL.
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5, heartbeat: DefaultHeartbeat, ttl: DefaultTTL})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1, heartbeat: DefaultHeartbeat, ttl: DefaultTTL})
	const room = "survivor"
	if owner, mine := place(t, ctx, b, room, "hk"); owner != "b" || !mine {
		t.Fatalf("b.Place = %s mine=%v, want b mine=true", owner, mine)
	}

	b.crash()
	crashed := time.Now()
	// Until the TTL lapses, b still counts as the owner.
	if owner, mine := place(t, ctx, a, room, "hk"); owner != "b" || mine {
		t.Fatalf("a.Place right after the crash = %s mine=%v, want b", owner, mine)
	}
	limit := DefaultTTL + DefaultHeartbeat
	for {
		hk, err := a.Nodes(ctx, "hk")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids(hk)) == "[a]" {
			break
		}
		if time.Since(crashed) > limit+500*time.Millisecond {
			t.Fatalf(`Nodes("hk") = %v %v after the crash, want [a]`, ids(hk), time.Since(crashed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("b gone %v after its crash", time.Since(crashed).Round(10*time.Millisecond))

	// Its set member is removed lazily.
	rdb := rawClient(t, url)
	if in, err := rdb.SIsMember(ctx, nodesKey, "b").Result(); err != nil || in {
		t.Fatalf("sfu:nodes still has b (%v, %v)", in, err)
	}
	if owner, mine := place(t, ctx, a, room, "hk"); owner != "a" || !mine {
		t.Fatalf("a.Place after b's crash = %s mine=%v, want a mine=true", owner, mine)
	}
	if got := ownerID(t, ctx, a, room); got != "a" {
		t.Fatalf("Owner = %q, want a", got)
	}
}

// A lease whose holder's node hash is gone is free even before the lease's
// own TTL lapses.
func TestStaleLeaseIsFree(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk"})
	rdb := rawClient(t, url)
	if err := setLease(ctx, rdb, "r", "ghost"); err != nil {
		t.Fatal(err)
	}
	if got := ownerID(t, ctx, a, "r"); got != "" {
		t.Fatalf("Owner = %q, want none (ghost is not live)", got)
	}
	if owner, mine := place(t, ctx, a, "r", "hk"); owner != "a" || !mine {
		t.Fatalf("Place = %s mine=%v, want a mine=true", owner, mine)
	}
	if v, err := rdb.HGet(ctx, roomKeyPrefix+"r", leaseNode).Result(); err != nil || v != "a" {
		t.Fatalf("lease = %q (%v), want a", v, err)
	}
}

// A lease that lapsed while its holder still has the room (Redis restarted without its data, or was out of
// reach for longer than the TTL) is taken again by the holder's heartbeat; one that another node took
// meanwhile is not, and the holder forgets it.
func TestLapsedLeaseTakenAgain(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk"})
	startNode(t, url, nodeOpts{id: "b", region: "hk", load: 5})
	for _, room := range []string{"kept", "taken"} {
		if owner, mine := place(t, ctx, a, room, "hk"); owner != "a" || !mine {
			t.Fatalf("a.Place(%s) = %s mine=%v, want a", room, owner, mine)
		}
	}
	rdb := rawClient(t, url)
	holder := func(room string) string {
		v, err := rdb.HGet(ctx, roomKeyPrefix+room, leaseNode).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		return v
	}
	// Redis loses everything, as when it restarts without persistence, and b takes one of the rooms first.
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := setLease(ctx, rdb, "taken", "b"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * testHeartbeat)
	for holder("kept") != "a" {
		if time.Now().After(deadline) {
			t.Fatalf("the lease of a's room is held by %q %v after Redis lost it, want a again", holder("kept"), 5*testHeartbeat)
		}
		time.Sleep(testHeartbeat / 5)
	}
	time.Sleep(3 * testHeartbeat)
	if got := holder("taken"); got != "b" {
		t.Fatalf("the lease b took is held by %q, want b", got)
	}
	// a forgot it: once b's lease goes, a does not take the room back.
	if err := rdb.Del(ctx, roomKeyPrefix+"taken").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * testHeartbeat)
	if got := holder("taken"); got != "" {
		t.Fatalf("the lease of the room a lost is held by %q, want none", got)
	}
	if got := holder("kept"); got != "a" {
		t.Fatalf("the lease of a's room is held by %q, want a", got)
	}
}

func TestDraining(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 0})

	if err := b.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Published at once, not at the next heartbeat.
	hk, err := a.Nodes(ctx, "hk")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("hk")`, hk, "a", "b")
	if !hk[1].Draining || !b.Self().Draining {
		t.Fatalf("b not draining: %+v / %+v", hk[1], b.Self())
	}
	if owner, mine := place(t, ctx, a, "r1", "hk"); owner != "a" || !mine {
		t.Fatalf("a.Place = %s mine=%v, want a mine=true (b drains)", owner, mine)
	}
	if owner, mine := place(t, ctx, b, "r2", "hk"); owner != "a" || mine {
		t.Fatalf("b.Place = %s mine=%v, want a (b drains)", owner, mine)
	}
	// Only draining nodes: nowhere to place.
	if err := a.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Place(ctx, "r4", []string{"hk"}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Place with every node draining: err = %v, want ErrNoNode", err)
	}
	// Rooms already owned stay with their owner.
	if owner, _ := place(t, ctx, b, "r1", "hk"); owner != "a" {
		t.Fatalf("Place of an owned room on a draining node = %s, want a", owner)
	}
	if err := b.SetDraining(ctx, false); err != nil {
		t.Fatal(err)
	}
	if owner, mine := place(t, ctx, a, "r5", "hk"); owner != "b" || mine {
		t.Fatalf("a.Place after b stopped draining = %s mine=%v, want b", owner, mine)
	}
	// Draining survives heartbeats.
	time.Sleep(3 * testHeartbeat)
	if hk, err := b.Nodes(ctx, "hk"); err != nil || !hk[len(hk)-1].Draining || hk[len(hk)-1].ID != "a" {
		t.Fatalf("Nodes = %+v (%v), want a draining, last", hk, err)
	}
}

func TestRelease(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1})
	const room = "r"
	if _, mine := place(t, ctx, b, room, "hk"); !mine {
		t.Fatal("b did not get the room")
	}
	// Only the holder's Release drops the lease.
	if err := a.Release(ctx, room); err != nil {
		t.Fatal(err)
	}
	if got := ownerID(t, ctx, a, room); got != "b" {
		t.Fatalf("Owner after a.Release = %q, want b", got)
	}
	// Place from another node does not take a held room.
	if owner, mine := place(t, ctx, a, room, "hk"); owner != "b" || mine {
		t.Fatalf("a.Place = %s mine=%v, want b", owner, mine)
	}
	if err := b.Release(ctx, room); err != nil {
		t.Fatal(err)
	}
	if got := ownerID(t, ctx, a, room); got != "" {
		t.Fatalf("Owner after b.Release = %q, want none", got)
	}
	// The room is free again: c, the only node of sg, takes it when it places the room there.
	c := startNode(t, url, nodeOpts{id: "c", region: "sg", load: 9})
	if owner, mine := place(t, ctx, c, room, "sg"); owner != "c" || !mine {
		t.Fatalf("c.Place = %s mine=%v, want c mine=true", owner, mine)
	}
	if owner, mine := place(t, ctx, b, room, "hk"); owner != "c" || mine {
		t.Fatalf("b.Place = %s mine=%v, want c", owner, mine)
	}
	// b's heartbeat must not renew (or warn about) the released lease, and
	// c's renews its own.
	time.Sleep(2 * testTTL)
	if got := ownerID(t, ctx, b, room); got != "c" {
		t.Fatalf("Owner after 2 TTLs = %q, want c", got)
	}
}

func TestCloseDeregisters(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	// A long TTL: only Close can make b vanish within the test.
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5, heartbeat: time.Second, ttl: time.Minute})
	b := startNode(t, url, nodeOpts{id: "b", region: "hk", load: 1, heartbeat: time.Second, ttl: time.Minute})
	if _, mine := place(t, ctx, b, "r", "hk"); !mine {
		t.Fatal("b did not get the room")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	hk, err := a.Nodes(ctx, "hk")
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, `Nodes("hk") right after b.Close`, hk, "a")
	rdb := rawClient(t, url)
	if n, err := rdb.Exists(ctx, nodeKeyPrefix+"b", roomKeyPrefix+"r").Result(); err != nil || n != 0 {
		t.Fatalf("b's keys remain after Close (%d, %v)", n, err)
	}
	if in, err := rdb.SIsMember(ctx, nodesKey, "b").Result(); err != nil || in {
		t.Fatalf("sfu:nodes still has b (%v, %v)", in, err)
	}
	if got := ownerID(t, ctx, a, "r"); got != "" {
		t.Fatalf("Owner = %q, want none", got)
	}
	if owner, mine := place(t, ctx, a, "r", "hk"); owner != "a" || !mine {
		t.Fatalf("a.Place = %s mine=%v, want a mine=true", owner, mine)
	}
	if _, _, err := b.Place(ctx, "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Place after Close: %v, want ErrClosed", err)
	}
	if err := b.SetDraining(ctx, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetDraining after Close: %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewRejectsDuplicateID(t *testing.T) {
	t.Parallel()
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	startNode(t, url, nodeOpts{id: "a", region: "hk"})
	_, err := New(ctx, Config{
		RedisURL: url,
		Node:     NodeInfo{ID: "a", Region: "hk", URL: "http://elsewhere:7880", Capacity: 10},
	})
	if err == nil {
		t.Fatal("New with a live node's id at another URL succeeded")
	}
	for _, cfg := range []Config{
		{RedisURL: url, Node: NodeInfo{Region: "hk", URL: "u", Capacity: 1}},
		{RedisURL: url, Node: NodeInfo{ID: "x", Region: "hk", URL: "u"}},
		{RedisURL: url, Node: NodeInfo{ID: "x", Region: "hk", URL: "u", Capacity: 1}, Heartbeat: time.Second, TTL: time.Second},
		{RedisURL: "not a url", Node: NodeInfo{ID: "x", Region: "hk", URL: "u", Capacity: 1}},
	} {
		if c, err := New(ctx, cfg); err == nil {
			c.Close()
			t.Fatalf("New(%+v) succeeded", cfg)
		}
	}
}

// setLease writes room's lease for holder as another node would, for a minute.
func setLease(ctx context.Context, rdb *redis.Client, room, holder string) error {
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, roomKeyPrefix+room, leaseNode, holder, leaseRegions, "hk")
		p.Expire(ctx, roomKeyPrefix+room, time.Minute)
		return nil
	})
	return err
}

func rawClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
