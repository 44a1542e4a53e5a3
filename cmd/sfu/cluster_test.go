package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/edge-sfu/sfu/signaling/client"
	"go.uber.org/zap/zapcore"
)

// clusterNode starts a node of region in the cluster on redis.
func clusterNode(t *testing.T, redis, region, id string, capacity int, more ...func(*config)) *node {
	t.Helper()
	return startTestNode(t, append([]func(*config){func(c *config) {
		c.Redis, c.Region, c.NodeID, c.Capacity = redis, region, id, capacity
	}}, more...)...)
}

// knowEachOther waits until every node lists the others among its fallback nodes, which come from the snapshot
// of the region its heartbeat refreshes (up to a second old).
func knowEachOther(t *testing.T, nodes ...*node) {
	t.Helper()
	eventually(t, 5*time.Second, "the nodes list each other as fallbacks", func() bool {
		for _, n := range nodes {
			if len(n.place.Fallbacks()) < len(nodes)-1 {
				return false
			}
		}
		return true
	})
}

// waitLoad waits until the node's heartbeat has told Redis (through rdb) that it hosts at least load participants:
// from then on placement sees it as the other nodes will.
func waitLoad(t *testing.T, rdb *goredis.Client, nodeID string, load int) {
	t.Helper()
	eventually(t, 5*time.Second, nodeID+"'s heartbeat reports its load", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := rdb.HGet(ctx, "sfu:node:"+nodeID, "load").Int()
		return err == nil && n >= load
	})
}

// spill is a region of two nodes on a new Redis, a taking one participant and b a hundred, whose first
// participant (first) has joined a and filled it: from then on joins through b stay on b and the room is relayed.
type spill struct {
	a, b  *node
	ctx   context.Context // ends with the test, within its timeout
	m     *mediaRun
	first *testClient
}

// spilledRoom starts a spill whose first participant joins a with firstToken.
func spilledRoom(t *testing.T, timeout time.Duration, firstToken string) *spill {
	t.Helper()
	redis := clustertest.StartRedis(t)
	sp := &spill{a: clusterNode(t, redis, "hk", "hk-a", 1), b: clusterNode(t, redis, "hk", "hk-b", 100)}
	knowEachOther(t, sp.a, sp.b)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	sp.ctx, sp.m = ctx, startMedia(t, ctx)
	sp.first = joinClientToken(t, ctx, sp.a, firstToken)
	waitLoad(t, redisClient(t, redis), "hk-a", 1)
	return sp
}

// sfuParticipants is how many participants a node hosts.
func sfuParticipants(n *node) int { return n.sfu.Stats().Participants }

// receivesAny reports whether tc gets at least min packets of both kinds from someone other than itself.
func receivesAny(tc *testClient, min int64) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var audio, video bool
	for k, st := range tc.received {
		switch {
		case strings.HasSuffix(k, "/audio") && st.packets.Load() >= min:
			audio = true
		case strings.HasSuffix(k, "/video") && st.packets.Load() >= min:
			video = true
		}
	}
	return audio && video
}

// TestClusterRedirect: two nodes of a region; a participant who reaches the node that does not own the room
// is redirected to the owner, so both are on one node.
func TestClusterRedirect(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	alice := joinClient(t, ctx, a, "standup", "alice")
	bob := joinClient(t, ctx, b, "standup", "bob") // follows the redirect to a
	m.publish(t, alice)
	m.publish(t, bob)
	eventually(t, 10*time.Second, "alice and bob receive each other", func() bool { return receivesFrom(alice, bob.ID(), 20) && receivesFrom(bob, alice.ID(), 20) })
	if sfuParticipants(a) != 2 || sfuParticipants(b) != 0 {
		t.Fatalf("participants: %d on a, %d on b; want both on the owner a", sfuParticipants(a), sfuParticipants(b))
	}
	if len(bob.Joined.Nodes) != 1 || !strings.Contains(bob.Joined.Nodes[0], b.addr.String()) {
		t.Fatalf("joined.nodes %v, want the other node %s", bob.Joined.Nodes, b.addr)
	}
}

// TestClusterRelay: when the owner is full, a participant who reaches another node is hosted there and the
// room is relayed between the two nodes: they see and hear each other through the relay.
func TestClusterRelay(t *testing.T) {
	sp := spilledRoom(t, 60*time.Second, token(t, "big", "alice", true, true))
	a, b, ctx, m, alice := sp.a, sp.b, sp.ctx, sp.m, sp.first
	bob := joinClient(t, ctx, b, "big", "bob")
	m.publish(t, alice)
	m.publish(t, bob)
	eventually(t, 20*time.Second, "alice and bob receive each other's audio and video through the relay", func() bool {
		return receivesAny(alice, 30) && receivesAny(bob, 30)
	})
	if v := metricValue(scrape(t, b), "sfu_rooms_relayed"); v != 1 {
		t.Fatalf("sfu_rooms_relayed on b = %v, want 1", v)
	}
	t.Logf("a hosts %d participants (alice and b's relay), b hosts %d (bob and its relay)", sfuParticipants(a), sfuParticipants(b))
}

// TestResidency: a node of another region refuses a room whose policy names hk, with an audit record and a
// count in /metrics, and hosts nothing of it.
func TestResidency(t *testing.T) {
	redis := clustertest.StartRedis(t)
	hk := clusterNode(t, redis, "hk", "hk-a", 100)
	dir := t.TempDir()
	sg := clusterNode(t, redis, "sg", "sg-a", 100, func(c *config) { c.AuditDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: "hk-only", Identity: "alice", Publish: true,
		Subscribe: true, Regions: []string{"hk"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, msg := rawJoin(t, sg, tok)
	if msg["code"] != "residency" {
		t.Fatalf("a join of an hk room on an sg node: %v", msg)
	}
	t.Log(msg["message"])
	if v := metricValue(scrape(t, sg), "sfu_residency_refusals_total"); v != 1 {
		t.Fatalf("sfu_residency_refusals_total = %v", v)
	}
	eventually(t, 5*time.Second, "a residency_refused record (the log writes in the background)", func() bool {
		return strings.Contains(readAudit(t, dir), `"kind":"residency_refused","room":"hk-only"`)
	})
	if rep, err := audit.Verify(dir); err != nil || !rep.OK() {
		t.Fatalf("audit: %v %+v", err, rep)
	}
	// The same token on the hk node is fine, and the sg node never has the room.
	if _, err := client.Dial(ctx, client.WSURL(hk.baseURL()), tok, client.Options{}); err != nil {
		t.Fatalf("the hk node: %v", err)
	}
	if st := sg.sfu.Stats(); st.Rooms != 0 || st.Participants != 0 {
		t.Fatalf("the sg node hosts %+v", st)
	}
}

// TestOwnerFailover: the owner of a room dies; its participants reconnect to the surviving node of the region
// (as the browser does, from joined.nodes) and are back in the room, receiving each other, within 10 s.
func TestOwnerFailover(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	alice := joinClient(t, ctx, a, "failover", "alice")
	bob := joinClient(t, ctx, b, "failover", "bob") // redirected to a
	fallbacks := alice.Joined.Nodes
	if len(fallbacks) == 0 {
		t.Fatal("joined lists no other node")
	}

	// Kill a: its heartbeat stops as in a crash, and its connections go.
	a.place.Abandon()
	killed := time.Now()
	_ = a.shutdown(ctx)
	for _, c := range []*testClient{alice, bob} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a client did not notice its node die")
		}
	}
	var wg sync.WaitGroup
	back := make([]*testClient, 2)
	for i, id := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			back[i] = rejoin(t, ctx, fallbacks, token(t, "failover", id, true, true))
		}()
	}
	wg.Wait()
	if back[0] == nil || back[1] == nil {
		t.Fatal("a participant could not rejoin")
	}
	m.publish(t, back[0])
	m.publish(t, back[1])
	eventually(t, 10*time.Second, "alice and bob receive each other again", func() bool {
		return receivesFrom(back[0], back[1].ID(), 10) && receivesFrom(back[1], back[0].ID(), 10)
	})
	took := time.Since(killed)
	t.Logf("back in the room, receiving each other, %v after the owner died", took.Round(100*time.Millisecond))
	if sfuParticipants(b) != 2 {
		t.Fatalf("b hosts %d participants", sfuParticipants(b))
	}
	if took > 10*time.Second {
		t.Errorf("failover took %v, want at most 10 s", took)
	}
}

// rejoin tries the nodes in turn, as the browser client does after its node went away, until one admits it.
func rejoin(t *testing.T, ctx context.Context, urls []string, tok string) *testClient {
	api, err := loopbackAPI()
	if err != nil {
		t.Error(err)
		return nil
	}
	for ctx.Err() == nil {
		for _, u := range urls {
			tc := &testClient{events: make(chan client.Message, 1024), received: map[string]*recvStats{}}
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			c, err := client.Dial(dctx, u, tok, client.Options{API: api, Events: tc.events, OnTrack: tc.count})
			cancel()
			if err == nil {
				tc.Client = c
				t.Cleanup(c.Close)
				return tc
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return nil
}

// TestDrain: SIGTERM's shutdown drains a node: it stops taking rooms and sends its participants, with a
// redirect, to another node of the region, where they continue.
func TestDrain(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	alice := joinClient(t, ctx, a, "drain", "alice")
	bob := joinClient(t, ctx, a, "drain", "bob")
	_ = a.shutdown(ctx)
	var urls []string
	for _, c := range []*testClient{alice, bob} {
		msg := waitMessage(t, ctx, c, "redirect")
		if !strings.Contains(msg.URL, b.addr.String()) || msg.Reason != "draining" {
			t.Fatalf("redirect %+v, want to b (%s) for draining", msg, b.addr)
		}
		urls = append(urls, msg.URL)
	}
	alice2 := rejoin(t, ctx, urls[:1], token(t, "drain", "alice", true, true))
	bob2 := rejoin(t, ctx, urls[1:], token(t, "drain", "bob", true, true))
	m.publish(t, alice2)
	m.publish(t, bob2)
	eventually(t, 10*time.Second, "alice and bob continue on b", func() bool {
		return receivesFrom(alice2, bob2.ID(), 10) && receivesFrom(bob2, alice2.ID(), 10)
	})
	if sfuParticipants(b) != 2 {
		t.Fatalf("b hosts %d", sfuParticipants(b))
	}
}

// TestClusterWHIP: WHIP and WHEP keep to the same rules: a POST to a node that does not own the room is
// redirected (307, as RFC 9725 clients follow) to the owner's endpoint, and a node outside the room's regions
// refuses it.
func TestClusterWHIP(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	sg := clusterNode(t, redis, "sg", "sg-a", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinClient(t, ctx, a, "broadcast", "host") // a owns the room
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(n *node, tok string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "POST", n.baseURL()+"/whip/broadcast", strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := post(b, token(t, "broadcast", "obs", true, false))
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != a.baseURL()+"/whip/broadcast" {
		t.Fatalf("WHIP to the non-owner: %s, Location %q; want 307 to %s", resp.Status, resp.Header.Get("Location"), a.baseURL())
	}
	hkOnly, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: "broadcast", Identity: "obs", Publish: true, Regions: []string{"hk"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if resp := post(sg, hkOnly); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("WHIP of an hk room to the sg node: %s", resp.Status)
	}
}

// TestClusterStartFailureReleases: a node whose Redis cannot be reached does not start, and gives back what it
// had opened by then: its HTTP, media and TURN ports can be bound again at once, and no goroutine is left.
func TestClusterStartFailureReleases(t *testing.T) {
	baseline := settledGoroutines()
	tcpPort := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	udpPort := func() string {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	nowhere := tcpPort() // closed again: nothing listens there
	cfg := config{Addr: tcpPort(), UDPAddr: udpPort(), TURNAddr: udpPort(), TURNRealm: "edge-sfu", TURNCredential: time.Hour,
		ICEIPs: []string{"127.0.0.1"}, Secret: testSecret, LogLevel: zapcore.FatalLevel,
		Redis: "redis://" + nowhere + "/0", Region: "hk", NodeID: "hk-a", Capacity: 10}
	if n, err := startNode(cfg); err == nil {
		_ = n.shutdown(context.Background())
		t.Fatal("a node started without its Redis")
	} else if !strings.Contains(err.Error(), "redis") {
		t.Fatalf("start-up error %q does not name Redis", err)
	}
	if l, err := net.Listen("tcp", cfg.Addr); err != nil {
		t.Errorf("the HTTP port is still taken: %v", err)
	} else {
		l.Close()
	}
	for name, addr := range map[string]string{"media": cfg.UDPAddr, "TURN": cfg.TURNAddr} {
		if c, err := net.ListenPacket("udp4", addr); err != nil {
			t.Errorf("the %s port is still taken: %v", name, err)
		} else {
			c.Close()
		}
	}
	eventually(t, 15*time.Second, fmt.Sprintf("goroutines return to the level before the start (%d)", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

// TestClusterKickBan: pen-test finding 12 in a cluster. A participant kicked on node a cannot rejoin the room
// through node b while the ban lasts (the kicked token's exp plus the leeway): b, which hosts it (the owner a is
// full, so b relays the room), refuses it with "kicked" from the ban a shared through Redis. Another identity
// joins through b, and after the ban the kicked identity does too.
func TestClusterKickBan(t *testing.T) {
	redisURL := clustertest.StartRedis(t)
	a := clusterNode(t, redisURL, "hk", "hk-a", 1) // full with the chair: joins through b stay on b
	b := clusterNode(t, redisURL, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	admin, joined := rawJoin(t, a, adminToken(t, "banned", "chair"))
	if joined["type"] != "joined" {
		t.Fatalf("admin on a: %v", joined)
	}
	waitLoad(t, redisClient(t, redisURL), "hk-a", 1)

	const life = 3 * time.Second
	minted := time.Now()
	victimTok := kickMallory(t, a, admin, "banned", life)
	refusedKicked(t, b, "the kicked token again", victimTok)
	refusedKicked(t, b, "a new token for the kicked identity", tokenFor(t, "banned", "mallory", "", time.Hour))
	if time.Since(minted) > life {
		t.Fatalf("the refusals took %v, longer than the kicked token's life: the test proved nothing", time.Since(minted))
	}
	if _, msg := rawJoin(t, b, tokenFor(t, "banned", "bob", "", time.Hour)); msg["type"] != "joined" {
		t.Fatalf("another identity through b: %v", msg)
	}
	if sfuParticipants(b) < 1 {
		t.Fatalf("b hosts %d participants: bob was not hosted on b", sfuParticipants(b))
	}

	// The ban ends when the kicked token can no longer be used: its exp plus the verifier's leeway.
	deadline := minted.Add(life + 15*time.Second)
	for i := 0; ; i++ {
		_, msg := rawJoin(t, b, tokenFor(t, "banned", "mallory", "", time.Hour))
		if msg["type"] == "joined" {
			if since := time.Since(minted); since < life {
				t.Fatalf("joined again %v after minting, before the kicked token's exp", since)
			}
			t.Logf("mallory joined through b again %v after its token was minted", time.Since(minted).Round(100*time.Millisecond))
			break
		}
		if msg["code"] != "kicked" || time.Now().After(deadline) || i > 60 {
			t.Fatalf("after the ban, attempt %d: %v", i, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
