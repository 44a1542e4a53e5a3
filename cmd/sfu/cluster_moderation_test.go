package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling/client"
)

// TestClusterLockAndEnd: cluster issue, "moderation is per node". The owner a is full, so participants who reach
// b are hosted there and the room is relayed. A lock on a refuses newcomers through b too (a fresh room on b as
// well as one b already relays), an unlock lets them in, and an end on a ends the sessions on b and the room on
// both nodes: the relay does not bring it back.
func TestClusterLockAndEnd(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 1)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	rdb := redisClient(t, redis)
	chair, joined := rawJoin(t, a, adminToken(t, "board", "chair"))
	if joined["type"] != "joined" {
		t.Fatalf("chair on a: %v", joined)
	}
	waitLoad(t, rdb, "hk-a", 1)
	admin := func(action string) {
		t.Helper()
		if err := chair.WriteJSON(map[string]any{"type": "admin", "action": action}); err != nil {
			t.Fatal(err)
		}
	}

	admin("lock")
	readUntil(t, chair, "room_state")
	if _, msg := rawJoin(t, b, regionToken(t, "board", "carol")); msg["code"] != "room_locked" {
		t.Fatalf("carol through b while the room is locked (b has no part of it yet): %v", msg)
	}
	time.Sleep(300 * time.Millisecond)
	if v := metricValue(scrape(t, b), "sfu_rooms_relayed"); v != 0 { // carol's socket is still open
		t.Fatalf("b relays the room for a refused join: sfu_rooms_relayed = %v", v)
	}
	admin("unlock")
	readUntil(t, chair, "room_state")
	bob, msg := rawJoin(t, b, regionToken(t, "board", "bob"))
	if msg["type"] != "joined" {
		t.Fatalf("bob through b after the unlock: %v", msg)
	}
	eventually(t, 20*time.Second, "b relays the room", func() bool { return metricValue(scrape(t, b), "sfu_rooms_relayed") == 1 })

	admin("lock")
	readUntil(t, chair, "room_state")
	eventually(t, 10*time.Second, "dave is refused through b while the room is locked", func() bool {
		_, msg := rawJoin(t, b, regionToken(t, "board", "dave"))
		return msg["code"] == "room_locked"
	})

	admin("end")
	if bye := readUntil(t, bob, "bye"); bye["reason"] != "room_ended" {
		t.Fatalf("bob's bye on b: %v", bye)
	}
	eventually(t, 10*time.Second, "the room is gone from both nodes", func() bool {
		return sfuParticipants(a) == 0 && sfuParticipants(b) == 0 && metricValue(scrape(t, b), "sfu_rooms_relayed") == 0
	})
	time.Sleep(2 * time.Second) // the relay's retry would have brought it back by now
	if st, sb := a.sfu.Stats(), b.sfu.Stats(); st.Rooms != 0 || sb.Rooms != 0 {
		t.Fatalf("after the end: a %+v, b %+v", st, sb)
	}
}

// TestLostLeaseMovesTheRoom: cluster issue, leases. When the owner finds its room's lease held by another node (a
// split: Redis lost the lease and the other node placed the room meanwhile), the room moves there cleanly: its
// participants are redirected to the new owner (reason room_moved), the event is in the audit log and counted.
func TestLostLeaseMovesTheRoom(t *testing.T) {
	redis := clustertest.StartRedis(t)
	dir := t.TempDir()
	a := clusterNode(t, redis, "hk", "hk-a", 100, func(c *config) { c.AuditDir = dir })
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	rdb := redisClient(t, redis)
	alice, msg := rawJoin(t, a, regionToken(t, "moving", "alice"))
	if msg["type"] != "joined" {
		t.Fatalf("alice on a: %v", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.HSet(ctx, "sfu:room:moving", "node", "hk-b").Err(); err != nil { // b took the room
		t.Fatal(err)
	}
	redirect := readUntil(t, alice, "redirect")
	if redirect["reason"] != "room_moved" || redirect["url"] != "ws://"+b.addr.String()+"/ws" {
		t.Fatalf("alice: %v, want a redirect to b", redirect)
	}
	if v := metricValue(scrape(t, a), "sfu_cluster_leases_lost_total"); v != 1 {
		t.Fatalf("sfu_cluster_leases_lost_total = %v", v)
	}
	eventually(t, 5*time.Second, "the move is in a's audit log", func() bool {
		return strings.Contains(readAudit(t, dir), `"kind":"room_moved","room":"moving"`)
	})
	eventually(t, 5*time.Second, "a no longer hosts the room", func() bool { return a.sfu.Stats().Rooms == 0 })
}

// TestClusterAdminReachesOtherNode: cluster issue, "moderation is per node". The owner a is full, so bob is hosted
// on b and relayed. The chair on a sees bob (the relay shows him as himself) and mutes him by his id, and the
// server API on a removes him: the relay carries both to b, where bob is told he is muted, then gets bye kicked
// and cannot come back through b.
func TestClusterAdminReachesOtherNode(t *testing.T) {
	sp := spilledRoom(t, 60*time.Second, adminToken(t, "board", "chair"))
	a, b, ctx, m, chair := sp.a, sp.b, sp.ctx, sp.m, sp.first
	bobTok := regionToken(t, "board", "bob")
	bob := joinClientToken(t, ctx, b, bobTok)
	m.publish(t, bob)
	eventually(t, 20*time.Second, "the chair on a receives bob's media through the relay", func() bool { return receivesAny(chair, 20) })

	if err := chair.Send(map[string]any{"type": "admin", "action": "mute", "participant": bob.ID()}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, bob.events, func(m client.Message) bool { return m.Type == "moderation" && m.Action == "mute" }); err != nil {
		t.Fatalf("bob on b is not told he is muted: %v (the chair's errors: %v)", err, chair.Errors())
	}
	// The server API, asked on a (which hosts the room), removes bob too: the relay carries the kick.
	if st := apiCall(t, a, "DELETE", "/api/v1/rooms/board/participants/bob", apiToken(t, ""), nil); st != http.StatusNoContent {
		t.Fatalf("remove bob through a's API: status %d", st)
	}
	waitBye(t, bob, "kicked")
	if _, msg := rawJoin(t, b, bobTok); msg["code"] != "kicked" {
		t.Fatalf("bob back through b after the kick on a: %v", msg)
	}
}
