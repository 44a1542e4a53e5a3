package cluster

import (
	"strconv"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// TestForgedRegistrationIgnored: cluster issue, "Redis is trusted blindly". Anything that can write to Redis could
// register a node (its URL then gets redirected clients, with their join tokens, and relays, with relay tokens)
// or add a URL to the region's list of past nodes (whose pages may open a node's socket). Registrations are signed
// with the cluster secret: a hash without a valid signature is not a node, and an unsigned URL is not a peer.
func TestForgedRegistrationIgnored(t *testing.T) {
	url := clustertest.StartRedis(t)
	ctx := testCtx(t, 10*time.Second)
	a := startNode(t, url, nodeOpts{id: "a", region: "hk", load: 5, capacity: 10})
	rdb := rawClient(t, url)

	// The forger writes what a real node writes, with a signature it made up: empty, then a wrong one.
	for _, sig := range []string{"", "00ff"} {
		fields := map[string]any{fieldID: "evil", fieldRegion: "hk", fieldURL: "http://evil.test", fieldCapacity: "1000",
			fieldLoad: "0", fieldDraining: "0"}
		if sig != "" {
			fields[fieldSig] = sig
		}
		if err := rdb.HSet(ctx, nodeKeyPrefix+"evil", fields).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.SAdd(ctx, nodesKey, "evil").Err(); err != nil {
			t.Fatal(err)
		}
		nodes, err := a.Nodes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "nodes with a forged registration (sig "+strconv.Quote(sig)+")", nodes, "a")
		if owner, mine := place(t, ctx, a, "room-"+sig, "hk"); owner != "a" || !mine {
			t.Fatalf("a new room is placed on %s (mine=%v), want a: the forged idle node must not attract it", owner, mine)
		}
	}

	if err := rdb.HSet(ctx, urlsKeyPrefix+"hk", "http://evil.test", strconv.FormatInt(time.Now().Unix(), 10)).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.KnownURL(ctx, "hk", "http://evil.test", time.Hour); err != nil || ok {
		t.Fatalf("a forged past node URL is known: %v %v", ok, err)
	}
	if ok, err := a.KnownURL(ctx, "hk", "http://a.test:7880", time.Hour); err != nil || !ok {
		t.Fatalf("a's own signed URL is not known: %v %v", ok, err)
	}
}

// TestSentinel: cluster issue, "only redis.NewClient". A node given a Sentinel's address and the master's name
// (redis://sentinel:port/0?master_name=NAME) registers and places rooms on the master the Sentinel names.
func TestSentinel(t *testing.T) {
	master := clustertest.StartRedis(t)
	sentinel := clustertest.StartSentinel(t, master, "sfu-master")
	ctx := testCtx(t, 10*time.Second)
	tp := startPlacementWith(t, sentinel, "hk-a", "hk", 10, func(*Config) {})
	if r, err := tp.Route(ctx, "standup", nil); err != nil || r.Redirect != "" {
		t.Fatalf("route through the Sentinel: %+v %v", r, err)
	}
	rdb := rawClient(t, master)
	if v, err := rdb.HGet(ctx, roomKeyPrefix+"standup", leaseNode).Result(); err != nil || v != "hk-a" {
		t.Fatalf("the lease on the master: %q %v", v, err)
	}
	if n, err := rdb.Exists(ctx, nodeKeyPrefix+"hk-a").Result(); err != nil || n != 1 {
		t.Fatalf("the registration on the master: %d %v", n, err)
	}
}
