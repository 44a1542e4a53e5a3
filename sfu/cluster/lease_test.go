package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling"
)

// hostedSet stands for the SFU's rooms: the rooms a test says the node hosts.
type hostedSet struct {
	mu    sync.Mutex
	rooms map[string]bool
}

func (h *hostedSet) set(room string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rooms == nil {
		h.rooms = map[string]bool{}
	}
	h.rooms[room] = on
}

func (h *hostedSet) has(room string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[room]
}

// TestResidencyIsTheRoom's: a room placed on hk with the policy [hk] keeps it. A later token naming hk and sg
// reaching the sg node while the hk owner is full is refused there (it used to be hosted on sg and relayed), and
// so is a relay into sg; a room placed with [hk, sg] may be hosted on sg with a relay, and a token may narrow
// that policy but never widen it.
func TestResidencyIsTheRooms(t *testing.T) {
	url := clustertest.StartRedis(t)
	hk := startPlacement(t, url, "hk-a", "hk", 1)
	sg := startPlacement(t, url, "sg-a", "sg", 10)
	ctx := testCtx(t, 20*time.Second)

	for _, room := range []string{"hk-only", "both"} {
		claim := []string{"hk"}
		if room == "both" {
			claim = []string{"hk", "sg"}
		}
		if r, err := hk.Route(ctx, room, claim); err != nil || r.Redirect != "" {
			t.Fatalf("%s placed on hk: %+v %v", room, r, err)
		}
	}
	hk.load.Store(1)
	eventually(t, 5*time.Second, "sg sees hk full", func() bool {
		nodes, err := sg.c.Nodes(ctx, "hk")
		return err == nil && slices.ContainsFunc(nodes, func(n NodeInfo) bool { return n.ID == "hk-a" && n.Load == 1 })
	})

	_, err := sg.Route(ctx, "hk-only", []string{"hk", "sg"})
	if !errors.Is(err, signaling.ErrResidency) {
		t.Fatalf("a widening token on sg for the hk-only room: %v, want ErrResidency", err)
	}
	t.Log(err)
	if err := sg.Admit(ctx, "hk-only", []string{"hk", "sg"}); !errors.Is(err, signaling.ErrResidency) {
		t.Fatalf("a relay into sg of the hk-only room: %v, want ErrResidency", err)
	}
	if r, err := sg.Route(ctx, "both", nil); err != nil || r.Release == nil {
		t.Fatalf("a token without regions on sg for the hk+sg room: %+v %v, want hosted with a relay", r, err)
	} else {
		r.Release()
	}
	if _, err := sg.Route(ctx, "both", []string{"hk"}); !errors.Is(err, signaling.ErrResidency) {
		t.Fatalf("a token narrowed to hk on sg: %v, want ErrResidency", err)
	}
	if err := sg.Admit(ctx, "ended", []string{"sg"}); err == nil {
		t.Fatal("a relay into a room no node holds is admitted: it would recreate an ended room")
	}
}

// startHostingPlacement is startPlacement whose cluster asks hosted whether the node still hosts a room.
func startHostingPlacement(t *testing.T, url, id string, hosted *hostedSet) *testPlacement {
	t.Helper()
	return startPlacementWith(t, url, id, "hk", 100, func(c *Config) {
		c.Hosts = hosted.has
		c.ReleaseGrace = 2 * testHeartbeat
	})
}

// TestLeaseReleasedWhenRoomCloses: the owner gives the room's lease back once it no longer hosts the room (after
// a grace that covers the join under way), so another node may place it; while it hosts the room, it keeps it.
func TestLeaseReleasedWhenRoomCloses(t *testing.T) {
	url := clustertest.StartRedis(t)
	var hosted hostedSet
	a := startHostingPlacement(t, url, "hk-a", &hosted)
	b := startPlacement(t, url, "hk-b", "hk", 100)
	ctx := testCtx(t, 20*time.Second)
	rdb := rawClient(t, url)

	if r, err := a.Route(ctx, "standup", nil); err != nil || r.Redirect != "" {
		t.Fatalf("placed on a: %+v %v", r, err)
	}
	hosted.set("standup", true)
	time.Sleep(6 * testHeartbeat)
	if n, err := rdb.Exists(ctx, roomKeyPrefix+"standup").Result(); err != nil || n != 1 {
		t.Fatalf("the lease of a live room: exists=%d %v", n, err)
	}
	hosted.set("standup", false) // the last participant left
	eventually(t, 5*time.Second, "the lease is released", func() bool {
		n, err := rdb.Exists(ctx, roomKeyPrefix+"standup").Result()
		return err == nil && n == 0
	})
	if v := a.metric(t, "sfu_cluster_leases_released_total"); v != 1 {
		t.Errorf("sfu_cluster_leases_released_total = %v, want 1", v)
	}
	if l, err := b.c.PlaceRoom(ctx, "standup", []string{"hk"}); err != nil || l.Owner.ID != "hk-b" || !l.Mine {
		t.Fatalf("after the release, b places the room: %+v %v", l, err)
	}
}

// TestManyLeases: 5,000 rooms placed on one node are renewed in time (no lease lost or taken back over several
// heartbeats), and when they close the Redis keys go back to zero.
func TestManyLeases(t *testing.T) {
	url := clustertest.StartRedis(t)
	var hosted hostedSet
	// The default heartbeat and TTL: the renewals of 5,000 leases must fit in a production heartbeat.
	a := startPlacementWith(t, url, "hk-a", "hk", 100, func(c *Config) {
		c.Hosts, c.ReleaseGrace, c.Heartbeat, c.TTL = hosted.has, 2*DefaultHeartbeat, DefaultHeartbeat, DefaultTTL
	})
	ctx := testCtx(t, 120*time.Second)
	rdb := rawClient(t, url)
	const rooms = 5000
	for i := range rooms {
		room := fmt.Sprintf("room-%d", i)
		hosted.set(room, true)
		if _, err := a.c.PlaceRoom(ctx, room, []string{"hk"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * DefaultTTL)
	keys, err := rdb.Keys(ctx, roomKeyPrefix+"*").Result()
	if err != nil || len(keys) != rooms {
		t.Fatalf("%d lease keys after %v, want %d (%v)", len(keys), 3*DefaultTTL, rooms, err)
	}
	if lost, retaken := a.metric(t, "sfu_cluster_leases_lost_total"), a.metric(t, "sfu_cluster_leases_retaken_total"); lost != 0 || retaken != 0 {
		t.Fatalf("leases lost %v, taken back %v: the renewals were late", lost, retaken)
	}
	for i := range rooms {
		hosted.set(fmt.Sprintf("room-%d", i), false)
	}
	eventually(t, 30*time.Second, "every lease key is gone", func() bool {
		keys, err := rdb.Keys(ctx, roomKeyPrefix+"*").Result()
		return err == nil && len(keys) == 0
	})
}
