package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling/client"
)

// e2eeRooms writes room settings in which "sealed" and "talk" are end-to-end encrypted, and returns the option
// that gives them to a node.
func e2eeRooms(t *testing.T) func(*config) {
	t.Helper()
	rc := filepath.Join(t.TempDir(), "rooms.json")
	if err := os.WriteFile(rc, []byte(`{"rooms": {"sealed": {"e2ee": true}, "talk": {"e2ee": true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config) { c.RoomConfig = rc }
}

// e2eeRoomNode starts a node whose room "sealed" is end-to-end encrypted (room settings) and "open" is not.
func e2eeRoomNode(t *testing.T) *node {
	t.Helper()
	return startTestNode(t, e2eeRooms(t))
}

// joinE2EE joins room as identity with the end-to-end encryption announcement announce.
func joinE2EE(t *testing.T, ctx context.Context, n *node, room, identity, announce string) *testClient {
	t.Helper()
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	return joinClientAPI(t, ctx, n, token(t, room, identity, true, true), api, func(o *client.Options) { o.E2EE = announce })
}

// TestE2EERoomAdmission: an E2EE room takes only clients that announce E2EE (not a plain client, not WHIP, not
// WHEP), a room that is not E2EE refuses a client that would encrypt, each with a message that says why; a room its
// settings say nothing of is decided by its first participant; the announcement reaches the others (joined,
// participant_joined).
func TestE2EERoomAdmission(t *testing.T) {
	n := e2eeRoomNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	_, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "sealed", "plain", true, true), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "e2ee") || !strings.Contains(err.Error(), "end-to-end encrypted") {
		t.Errorf("a plain client joining an E2EE room: %v; want refused with code e2ee", err)
	}
	joinClient(t, ctx, n, "open", "plain") // the first participant decides: a plain room
	_, err = client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "open", "eager", true, true), client.Options{E2EE: "pk-eager"})
	if err == nil || !strings.Contains(err.Error(), "not end-to-end encrypted") {
		t.Errorf("an encrypting client joining a plain room: %v; want refused", err)
	}
	// A room the settings say nothing of is E2EE when its first participant encrypts (#e2ee= on the meeting
	// page): then it takes no plain client, and refuses to denoise.
	first := joinE2EE(t, ctx, n, "adhoc", "first", "pk-first")
	_, err = client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "adhoc", "late", true, true), client.Options{})
	if err == nil || !strings.Contains(err.Error(), "end-to-end encrypted") {
		t.Errorf("a plain client joining a room made E2EE by its first participant: %v; want refused", err)
	}
	if err := first.Send(map[string]any{"type": "denoise", "enabled": true}); err != nil {
		t.Fatal(err)
	}
	if msg := waitMessage(t, ctx, first, "error", "audio_processing"); msg.Code != "e2ee" {
		t.Errorf("denoise in a room made E2EE by its first participant: %+v; want refused (e2ee)", msg)
	}
	for room, want := range map[string]bool{"adhoc": true, "open": false} {
		var detail struct {
			E2EE bool `json:"e2ee"`
		}
		if code := apiCall(t, n, "GET", "/api/v1/rooms/"+room, apiToken(t, ""), &detail); code != http.StatusOK || detail.E2EE != want {
			t.Errorf("GET /api/v1/rooms/%s: %d, e2ee %v; want %v", room, code, detail.E2EE, want)
		}
	}
	_, err = client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "sealed", "long", true, true), client.Options{E2EE: strings.Repeat("k", 600)})
	if err == nil || !strings.Contains(err.Error(), "bad_request") {
		t.Errorf("an announcement of 600 bytes: %v; want bad_request", err)
	}

	a := joinE2EE(t, ctx, n, "sealed", "ann", "pk-ann")
	b := joinE2EE(t, ctx, n, "sealed", "bob", "pk-bob")
	if len(b.Joined.Participants) != 1 || b.Joined.Participants[0].E2EE != "pk-ann" || b.Joined.You.E2EE != "pk-bob" {
		t.Errorf("bob's joined: you %+v, participants %+v; want ann's announcement pk-ann", b.Joined.You, b.Joined.Participants)
	}
	if msg := waitMessage(t, ctx, a, "participant_joined"); msg.Participant == nil || msg.Participant.E2EE != "pk-bob" {
		t.Errorf("ann's participant_joined: %+v; want bob's announcement", msg.Participant)
	}

	// WHIP and WHEP cannot encrypt or decrypt: refused with a reason, not a silent plain stream.
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"whip", "whep"} {
		publish := kind == "whip"
		resp, body := httpOffer(t, n.baseURL()+"/"+kind+"/sealed", token(t, "sealed", kind+"-client", publish, !publish), "application/sdp", gatheredOfferFor(t, api))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "end-to-end encrypted") {
			t.Errorf("%s into an E2EE room: %s %q; want 403 saying the room is end-to-end encrypted", kind, resp.Status, body)
		}
	}
	if got := n.sfu.Stats().Participants; got != 4 {
		t.Errorf("%d participants on the node, want plain, first, ann and bob only", got)
	}
}

// TestE2EEMessages: key messages go unread to one participant or to everyone else, with the sender's id; a room
// that is not E2EE carries none; an oversized one is refused.
func TestE2EEMessages(t *testing.T) {
	n := e2eeRoomNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := joinE2EE(t, ctx, n, "sealed", "ann", "pk-ann")
	b := joinE2EE(t, ctx, n, "sealed", "bob", "pk-bob")
	c := joinE2EE(t, ctx, n, "sealed", "cat", "pk-cat")

	if err := a.Send(map[string]any{"type": "e2ee", "to": b.ID(), "data": "for bob"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(map[string]any{"type": "e2ee", "data": "for all"}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, b, "e2ee"); m.From != a.ID() || m.Data != "for bob" || m.To != b.ID() {
		t.Errorf("bob's first e2ee message: %+v; want ann's 'for bob'", m)
	}
	if m := waitMessage(t, ctx, b, "e2ee"); m.From != a.ID() || m.Data != "for all" {
		t.Errorf("bob's second e2ee message: %+v; want ann's 'for all'", m)
	}
	if m := waitMessage(t, ctx, c, "e2ee"); m.Data != "for all" {
		t.Errorf("cat's e2ee message: %+v; want only the one for all (not bob's)", m)
	}
	if err := a.Send(map[string]any{"type": "e2ee", "data": strings.Repeat("x", 50<<10)}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, a, "error", "e2ee"); m.Type != "error" || m.Code != "bad_request" {
		t.Errorf("a 50 KiB e2ee message: %+v; want bad_request", m)
	}
	if err := a.Send(map[string]any{"type": "e2ee", "to": "PA_nobody", "data": "x"}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, a, "error", "e2ee"); m.Type != "error" || m.Code != "bad_request" {
		t.Errorf("an e2ee message to nobody: %+v; want bad_request", m)
	}

	o := joinClient(t, ctx, n, "open", "otto")
	if err := o.Send(map[string]any{"type": "e2ee", "data": "x"}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, o, "error"); m.Code != "bad_request" || !strings.Contains(m.Message, "not end-to-end encrypted") {
		t.Errorf("an e2ee message in a plain room: %+v; want bad_request", m)
	}
}

// TestClusterE2EE: an E2EE room spread over two nodes. Each side sees the other's announcement (through the
// relay, from the participant's first track), and key messages cross the relay, to one participant or to all,
// with their sender's id, once.
func TestClusterE2EE(t *testing.T) {
	redis := clustertest.StartRedis(t)
	rooms := e2eeRooms(t)
	a := clusterNode(t, redis, "hk", "hk-a", 1, rooms)
	b := clusterNode(t, redis, "hk", "hk-b", 100, rooms)
	knowEachOther(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	announce := func(s string) func(*client.Options) { return func(o *client.Options) { o.E2EE = s } }
	ann := joinClientAPI(t, ctx, a, regionToken(t, "talk", "ann"), api, announce("pk-ann"))
	waitLoad(t, redisClient(t, redis), "hk-a", 1)
	bob := joinClientAPI(t, ctx, b, regionToken(t, "talk", "bob"), api, announce("pk-bob")) // a is full: bob stays on b
	m.publish(t, ann)
	m.publish(t, bob)
	eventually(t, 20*time.Second, "ann and bob receive each other's media through the relay", func() bool {
		return receivesAny(ann, 20) && receivesAny(bob, 20)
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if msg, err := client.WaitFor(wctx, ann.events, func(m client.Message) bool {
		return m.Type == "participant_joined" && m.Participant != nil && m.Participant.ID == bob.ID()
	}); err != nil || msg.Participant.E2EE != "pk-bob" {
		t.Fatalf("ann on a: bob joined as %+v (%v); want his announcement pk-bob", msg.Participant, err)
	}

	if err := ann.Send(map[string]any{"type": "e2ee", "to": bob.ID(), "data": "wrapped for bob"}); err != nil {
		t.Fatal(err)
	}
	if got := waitMessage(t, ctx, bob, "e2ee"); got.From != ann.ID() || got.To != bob.ID() || got.Data != "wrapped for bob" {
		t.Fatalf("bob on b got %+v; want ann's key message for him", got)
	}
	if err := bob.Send(map[string]any{"type": "e2ee", "data": "for everyone"}); err != nil {
		t.Fatal(err)
	}
	if got := waitMessage(t, ctx, ann, "e2ee"); got.From != bob.ID() || got.Data != "for everyone" {
		t.Fatalf("ann on a got %+v; want bob's key message", got)
	}
	time.Sleep(500 * time.Millisecond)
	for _, tc := range []*testClient{ann, bob} {
		for len(tc.events) > 0 {
			if m := <-tc.events; m.Type == "e2ee" || m.Type == "error" {
				t.Errorf("%s got another %s: %+v", tc.Joined.You.Identity, m.Type, m)
			}
		}
	}
}
