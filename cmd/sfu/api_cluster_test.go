package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// TestClusterAPI: two nodes of a region; every call made at the node that does not host the room reaches the
// owner: the room is listed and described with its node, its metadata reaches its participants, a mute stops
// a participant's audio, the room ends. A room created through the other node is placed and joined as any, and
// its settings apply. A forwarded call is never forwarded again.
func TestClusterAPI(t *testing.T) {
	redis := clustertest.StartRedis(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := clusterNode(t, redis, "hk", "hk-a", 100, func(c *config) { c.AuditDir = dirA })
	b := clusterNode(t, redis, "hk", "hk-b", 100, func(c *config) { c.AuditDir = dirB })
	knowEachOther(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	cs := joinPublishing(t, ctx, a, m, "standup", "alice", "bob")
	alice, bob := cs[0], cs[1]
	api := apiToken(t, "")

	var rooms apiRooms
	var listed struct {
		Rooms []struct {
			Name, Node string
		} `json:"rooms"`
	}
	if st := apiSend(t, b.baseURL(), "GET", "/api/v1/rooms", api, nil, &listed); st != http.StatusOK || len(listed.Rooms) != 1 ||
		listed.Rooms[0].Name != "standup" || listed.Rooms[0].Node != "hk-a" {
		t.Fatalf("rooms listed by b: %d %+v", st, listed)
	}
	var rd apiRoomDetail
	if st := apiSend(t, b.baseURL(), "GET", "/api/v1/rooms/standup", api, nil, &rd); st != http.StatusOK || rd.Node != "hk-a" || rd.Participants != 2 || rd.Region != "hk" {
		t.Fatalf("room described by b: %d %+v", st, rd)
	}
	var e apiError
	req, _ := http.NewRequest("GET", b.baseURL()+"/api/v1/rooms/standup", nil)
	req.Header.Set("Authorization", "Bearer "+api)
	req.Header.Set("X-Sfu-Api-Forwarded", "hk-a")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a forwarded call at b, which does not host the room, was forwarded again: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	if st := apiSend(t, b.baseURL(), "GET", "/api/v1/rooms/standup", token(t, "standup", "mallory", true, true), nil, &e); st != http.StatusForbidden {
		t.Errorf("a participant token at b: %d %+v", st, e)
	}

	if st := apiSend(t, b.baseURL(), "PATCH", "/api/v1/rooms/standup", api, map[string]any{"metadata": "from b"}, nil); st != http.StatusOK {
		t.Fatalf("metadata through b: %d", st)
	}
	if got := waitMetadata(t, ctx, bob, ""); got != "from b" {
		t.Errorf("bob got room metadata %q", got)
	}
	if st := apiSend(t, b.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"muted": true}, nil); st != http.StatusOK {
		t.Fatalf("mute alice through b: %d", st)
	}
	assertStops(t, bob, alice.ID(), "audio", "alice's audio muted through b")
	if st := apiSend(t, b.baseURL(), "DELETE", "/api/v1/rooms/standup", api, nil, nil); st != http.StatusNoContent {
		t.Fatalf("end the room through b: %d", st)
	}
	waitBye(t, bob, "room_ended")
	// Both nodes audit a forwarded call: b that it forwarded it, a what it did.
	const mute = `"pattern":"POST /api/v1/rooms/{room}/participants/{identity}/mute"`
	eventually(t, 5*time.Second, "both nodes audit the forwarded mute", func() bool {
		return strings.Contains(readAudit(t, dirA), mute) && strings.Contains(readAudit(t, dirB), mute)
	})
	if log := readAudit(t, dirB); !strings.Contains(log, `"forwarded_to":"`+a.baseURL()+`"`) {
		t.Errorf("b's audit log does not say where it forwarded the calls:\n%s", log)
	}
	if log := readAudit(t, dirA); !strings.Contains(log, `"target":"alice"`) {
		t.Errorf("a's audit log does not say what the forwarded mute did:\n%s", log)
	}

	// A room created through b is placed (here on either node), listed by both, and joined with its settings.
	body := map[string]any{"name": "planned", "metadata": "agenda", "max_participants": 1}
	if st := apiSend(t, b.baseURL(), "POST", "/api/v1/rooms", api, body, &rd); st != http.StatusCreated || rd.Metadata != "agenda" {
		t.Fatalf("create through b: %d %+v", st, rd)
	}
	for _, n := range []*node{a, b} {
		if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms", api, body, &e); st != http.StatusConflict || e.Code != "already_exists" {
			t.Errorf("create again at %s: %d %+v", n.baseURL(), st, e)
		}
		if apiCall(t, n, "GET", "/api/v1/rooms", api, &rooms); len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != "planned" {
			t.Errorf("rooms listed at %s: %+v", n.baseURL(), rooms)
		}
	}
	host := a
	if rd.Node == "hk-b" {
		host = b
	}
	for _, n := range []*node{a, b} { // whichever node a participant reaches, it joins the created room
		carol := joinClient(t, ctx, n, "planned", "carol")
		if carol.Joined.Metadata != "agenda" {
			t.Errorf("carol joined through %s a room whose metadata is %q", n.baseURL(), carol.Joined.Metadata)
		}
		if _, msg := rawJoin(t, host, token(t, "planned", "dave", true, true)); msg["code"] != "room_full" {
			t.Errorf("dave joins a room created for one: %v", msg)
		}
		carol.Close()
	}
}
