package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRoomFull: with -max-participants 2, a third participant gets room_full; a rejoin of a participant already
// in gets in (it replaces its old session).
func TestRoomFull(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.MaxParticipants = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinClient(t, ctx, n, "small", "alice")
	joinClient(t, ctx, n, "small", "bob")
	if _, msg := rawJoin(t, n, token(t, "small", "carol", true, true)); msg["code"] != "room_full" {
		t.Fatalf("a third participant: %v", msg)
	} else {
		t.Log(msg["message"])
	}
	if _, msg := rawJoin(t, n, token(t, "small", "bob", true, true)); msg["type"] != "joined" {
		t.Fatalf("bob rejoining a full room: %v", msg)
	}
}

// TestRoomFullIdentityCase: identities are case-sensitive: in a full room, "ALICE" and "Alice" are newcomers,
// refused with room_full, not rejoins of alice that replace her.
func TestRoomFullIdentityCase(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.MaxParticipants = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinClient(t, ctx, n, "small", "alice")
	joinClient(t, ctx, n, "small", "bob")
	for _, id := range []string{"ALICE", "Alice", "BOB"} {
		if _, msg := rawJoin(t, n, token(t, "small", id, true, true)); msg["code"] != "room_full" {
			t.Fatalf("%s joining a full room with alice and bob in it: %v", id, msg)
		}
	}
	_, msg := rawJoin(t, n, token(t, "small", "alice", true, true))
	if msg["type"] != "joined" {
		t.Fatalf("alice rejoining a full room: %v", msg)
	}
	if others, _ := msg["participants"].([]any); len(others) != 1 {
		t.Fatalf("alice rejoined a room of %d others, want bob alone: %v", len(others), msg["participants"])
	}
}

// TestRoomSizeFromRoomConfig: a room whose settings give max_participants takes that many whatever the node's
// limit; other rooms keep the node's; a negative size does not load.
func TestRoomSizeFromRoomConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rooms.json")
	if err := os.WriteFile(path, []byte(`{"rooms": {"allhands": {"max_participants": 3}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, func(c *config) { c.MaxParticipants = 1; c.RoomConfig = path })
	for _, who := range []string{"ann", "ben", "cat"} {
		if _, msg := rawJoin(t, n, token(t, "allhands", who, true, true)); msg["type"] != "joined" {
			t.Fatalf("%s joining the all-hands room of 3: %v", who, msg)
		}
	}
	if _, msg := rawJoin(t, n, token(t, "allhands", "dan", true, true)); msg["code"] != "room_full" {
		t.Fatalf("a fourth in the all-hands room of 3: %v", msg)
	}
	if _, msg := rawJoin(t, n, token(t, "other", "ann", true, true)); msg["type"] != "joined" {
		t.Fatalf("first in another room: %v", msg)
	}
	if _, msg := rawJoin(t, n, token(t, "other", "ben", true, true)); msg["code"] != "room_full" {
		t.Fatalf("a second in a room under the node's limit of 1: %v", msg)
	}
	if err := os.WriteFile(path, []byte(`{"default": {"max_audio_streams": -1}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadRoomConfig(path); err == nil {
		t.Fatal("a negative max_audio_streams was accepted")
	}
}

// TestPublishBitrateLimit: a participant publishing 3.15 Mbit/s of simulcast against a 2 Mbit/s limit is told
// (limit_exceeded), its top layer stops being forwarded, and dynacast tells it to stop sending that layer.
func TestPublishBitrateLimit(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.MaxPublishBitrate = 2_000_000 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	viewer := joinClient(t, ctx, n, "bitrate", "viewer")
	var mu sync.Mutex
	var wanted [][]string
	pub := publishSimulcast(t, ctx, n, m, "bitrate", func(rids []string) {
		mu.Lock()
		defer mu.Unlock()
		wanted = append(wanted, rids)
	})
	eventually(t, 10*time.Second, "the viewer receives video", func() bool { return viewer.stats(pub.ID(), "video").packets.Load() > 50 })
	eventually(t, 15*time.Second, "the publisher is told it is over the limit", func() bool { return hasError(pub.Errors(), "limit_exceeded") })
	for _, e := range pub.Errors() {
		if e.Code == "limit_exceeded" {
			t.Log(e.Message)
		}
	}
	eventually(t, 15*time.Second, "the top layer is no longer wanted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(wanted) > 0 && !slices.Contains(wanted[len(wanted)-1], "f")
	})
	mu.Lock()
	t.Logf("layers wanted over time: %v", wanted)
	mu.Unlock()
	eventually(t, 10*time.Second, "no subscriber on the top layer", func() bool {
		for _, s := range n.sfu.Subscribers() {
			if s.VideosByLayer[3] > 0 {
				return false
			}
		}
		return true
	})
}
