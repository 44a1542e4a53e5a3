package main

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/edge-sfu/sfu/sfu/cluster"
	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling"
)

// regionToken is a participant token whose regions claim is regions.
func regionToken(t *testing.T, room, identity string, regions ...string) string {
	t.Helper()
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: identity, Name: identity,
		Publish: true, Subscribe: true, Regions: regions}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// redisClient is a client of the test's Redis, closed with the test.
func redisClient(t *testing.T, url string) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestResidencyStaysWithTheRoom: cluster issue, residency finding. A room placed on hk by a token naming hk keeps
// that policy: while the hk owner is full, a later token naming hk and sg reaching the sg node is refused there
// (it used to be hosted on sg with the room relayed to it), and so is a relay token into sg; both refusals are in
// sg's audit log with the room's stored policy, and sg hosts nothing of the room.
func TestResidencyStaysWithTheRoom(t *testing.T) {
	redis := clustertest.StartRedis(t)
	hk := clusterNode(t, redis, "hk", "hk-a", 1)
	dir := t.TempDir()
	sg := clusterNode(t, redis, "sg", "sg-a", 100, func(c *config) { c.AuditDir = dir })
	rdb := redisClient(t, redis)

	if _, msg := rawJoin(t, hk, regionToken(t, "hk-only", "alice", "hk")); msg["type"] != "joined" {
		t.Fatalf("alice on hk: %v", msg)
	}
	waitLoad(t, rdb, "hk-a", 1)

	_, msg := rawJoin(t, sg, regionToken(t, "hk-only", "bob", "hk", "sg"))
	if msg["code"] != "residency" {
		t.Fatalf("a token naming hk and sg, on sg, for the room placed in hk: %v", msg)
	}
	t.Log(msg["message"])
	relayTok, err := cluster.RelayToken([]byte(testSecret), "", "sg-a")("hk-only", []string{"hk", "sg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, msg := rawJoin(t, sg, relayTok); msg["code"] != "residency" {
		t.Fatalf("a relay token naming hk and sg, on sg: %v", msg)
	}
	eventually(t, 5*time.Second, "both refusals in sg's audit log, with the stored policy", func() bool {
		return strings.Count(readAudit(t, dir), `"kind":"residency_refused","room":"hk-only"`) == 2 &&
			strings.Count(readAudit(t, dir), `kept in regions [hk]`) == 2
	})
	if st := sg.sfu.Stats(); st.Rooms != 0 || st.Participants != 0 {
		t.Fatalf("sg hosts %+v", st)
	}
	if v := metricValue(scrape(t, sg), "sfu_rooms_relayed"); v != 0 {
		t.Fatalf("sfu_rooms_relayed on sg = %v", v)
	}
}

// TestClusterLeaseFollowsTheRoom: cluster issue, lease finding. The owner gives a room's lease back once the room
// closes (its Redis key goes, counted in /metrics), and a relay token cannot open a room that no node has open.
func TestClusterLeaseFollowsTheRoom(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100, func(c *config) { c.LeaseGrace = 200 * time.Millisecond })
	rdb := redisClient(t, redis)
	leaseExists := func(room string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := rdb.Exists(ctx, "sfu:room:"+room).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	conn, msg := rawJoin(t, a, regionToken(t, "standup", "alice"))
	if msg["type"] != "joined" {
		t.Fatalf("alice: %v", msg)
	}
	time.Sleep(time.Second) // several heartbeats past the grace: the lease of a live room stays
	if !leaseExists("standup") {
		t.Fatal("the live room has no lease")
	}
	conn.Close() // alice leaves: the room closes
	eventually(t, 10*time.Second, "the lease of the closed room is given back", func() bool { return !leaseExists("standup") })
	if v := metricValue(scrape(t, a), "sfu_cluster_leases_released_total"); v != 1 {
		t.Fatalf("sfu_cluster_leases_released_total = %v, want 1", v)
	}

	relayTok, err := cluster.RelayToken([]byte(testSecret), "", "hk-b")("standup", []string{"hk"})
	if err != nil {
		t.Fatal(err)
	}
	if _, msg := rawJoin(t, a, relayTok); msg["code"] != "not_found" {
		t.Fatalf("a relay into a room no node has open: %v", msg)
	}
	if st := a.sfu.Stats(); st.Rooms != 0 {
		t.Fatalf("the relay opened the room: %+v", st)
	}
}
