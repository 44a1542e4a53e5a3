package main

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
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
	eventually(t, 5*time.Second, "a's heartbeat reports it full", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		load, err := rdb.HGet(ctx, "sfu:node:hk-a", "load").Int()
		return err == nil && load >= 1
	})
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
