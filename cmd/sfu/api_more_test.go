package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
)

// apiSend is apiCall with a JSON body (nil: none) and the node's base URL given.
func apiSend(t *testing.T, base, method, path, tok string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
		}
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v: %v", method, path, resp.Status, err)
		}
	}
	return resp.StatusCode
}

// apiRoomDetail is the answer of GET /api/v1/rooms/{room}.
type apiRoomDetail struct {
	Name         string          `json:"name"`
	Participants int             `json:"participants"`
	CreatedAt    time.Time       `json:"created_at"`
	Region       string          `json:"region"`
	Node         string          `json:"node"`
	Metadata     string          `json:"metadata"`
	Settings     json.RawMessage `json:"settings"`
}

// waitMetadata waits until tc is told of metadata of the participant pid ("": of the room) and returns it.
func waitMetadata(t *testing.T, ctx context.Context, tc *testClient, pid string) string {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool {
		return m.Type == "metadata" && m.ParticipantID == pid
	})
	if err != nil {
		t.Fatalf("%s was not told of the metadata of %q: %v", tc.Joined.You.Identity, pid, err)
	}
	return msg.Metadata
}

// TestAPIRoomMetadata: GET of one room describes it; the room's metadata and a participant's, set through the
// API, reach everyone in the room as metadata events and are in what a newcomer's joined message says; metadata
// over 4 KiB is refused.
func TestAPIRoomMetadata(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := joinClient(t, ctx, n, "standup", "alice")
	bob := joinClient(t, ctx, n, "standup", "bob")
	api := apiToken(t, "")

	var rd apiRoomDetail
	if st := apiSend(t, n.baseURL(), "GET", "/api/v1/rooms/standup", api, nil, &rd); st != http.StatusOK {
		t.Fatalf("get room: %d", st)
	}
	if rd.Name != "standup" || rd.Participants != 2 || time.Since(rd.CreatedAt) > time.Minute || rd.Settings == nil {
		t.Fatalf("room %+v", rd)
	}
	var e apiError
	if st := apiSend(t, n.baseURL(), "GET", "/api/v1/rooms/nowhere", api, nil, &e); st != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("get a room the node does not host: %d %+v", st, e)
	}

	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup", api, map[string]any{"metadata": `{"topic":"plans"}`}, &rd); st != http.StatusOK || rd.Metadata != `{"topic":"plans"}` {
		t.Fatalf("set the room's metadata: %d %+v", st, rd)
	}
	for _, tc := range []*testClient{alice, bob} {
		if got := waitMetadata(t, ctx, tc, ""); got != `{"topic":"plans"}` {
			t.Errorf("%s: room metadata %q", tc.Joined.You.Identity, got)
		}
	}
	var p apiParticipantOne
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/alice", api, map[string]any{"metadata": "hand raised"}, &p); st != http.StatusOK || p.Metadata != "hand raised" {
		t.Fatalf("set alice's metadata: %d %+v", st, p)
	}
	for _, tc := range []*testClient{alice, bob} {
		if got := waitMetadata(t, ctx, tc, alice.ID()); got != "hand raised" {
			t.Errorf("%s: alice's metadata %q", tc.Joined.You.Identity, got)
		}
	}
	carol := joinClient(t, ctx, n, "standup", "carol")
	if carol.Joined.Metadata != `{"topic":"plans"}` {
		t.Errorf("carol joined a room whose metadata is %q", carol.Joined.Metadata)
	}
	found := false
	for _, q := range carol.Joined.Participants {
		if q.ID == alice.ID() {
			found = q.Metadata == "hand raised"
		}
	}
	if !found {
		t.Errorf("carol was not told alice's metadata: %+v", carol.Joined.Participants)
	}

	big := strings.Repeat("x", 4097)
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup", api, map[string]any{"metadata": big}, &e); st != http.StatusBadRequest || e.Code != "bad_request" {
		t.Errorf("room metadata of 4097 bytes: %d %+v", st, e)
	}
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/alice", api, map[string]any{"metadata": big}, &e); st != http.StatusBadRequest || e.Code != "bad_request" {
		t.Errorf("participant metadata of 4097 bytes: %d %+v", st, e)
	}
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/nobody", api, map[string]any{"metadata": "x"}, &e); st != http.StatusNotFound {
		t.Errorf("metadata of nobody: %d %+v", st, e)
	}
}

type apiParticipantOne struct {
	Identity  string `json:"identity"`
	Publish   bool   `json:"publish"`
	Subscribe bool   `json:"subscribe"`
	Admin     bool   `json:"admin"`
	Metadata  string `json:"metadata"`
}

// TestAPIMute: muting a participant's audio through the API stops it reaching the others (who are told it is
// muted) while its video goes on, and the participant is told; unmute lets it through again. A track of its own
// is muted alone.
func TestAPIMute(t *testing.T) {
	n, ctx, _, cs := meeting(t, "standup", "alice", "bob")
	alice, bob := cs[0], cs[1]
	api := apiToken(t, "")

	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"muted": true}, nil); st != http.StatusOK {
		t.Fatalf("mute alice: %d", st)
	}
	if msg := waitMessage(t, ctx, alice, "moderation"); msg.Action != "mute" {
		t.Errorf("alice was told %+v", msg)
	}
	if msg := waitMessage(t, ctx, bob, "track_muted"); msg.ParticipantID != alice.ID() || msg.Track == nil || !msg.Track.Muted || msg.Track.Kind != "audio" {
		t.Errorf("bob was told %+v", msg)
	}
	assertStops(t, bob, alice.ID(), "audio", "alice's muted audio")
	assertFlows(t, bob, alice.ID(), "video", "alice's video while her audio is muted")

	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"muted": false}, nil); st != http.StatusOK {
		t.Fatalf("unmute alice: %d", st)
	}
	assertFlows(t, bob, alice.ID(), "audio", "alice's audio after unmute")

	// One track by id: her video.
	var ps apiParticipants
	apiCall(t, n, "GET", "/api/v1/rooms/standup/participants", api, &ps)
	video := ""
	for _, p := range ps.Participants {
		for _, tr := range p.Tracks {
			if p.Identity == "alice" && tr.Kind == "video" {
				video = tr.ID
			}
		}
	}
	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"track": video, "muted": true}, nil); st != http.StatusOK {
		t.Fatalf("mute alice's video: %d", st)
	}
	assertStops(t, bob, alice.ID(), "video", "alice's muted video")
	assertFlows(t, bob, alice.ID(), "audio", "alice's audio while her video is muted")

	var e apiError
	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"track": "nope", "muted": true}, &e); st != http.StatusBadRequest {
		t.Errorf("mute a track alice does not publish: %d %+v", st, e)
	}
	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/alice/mute", api, map[string]any{"track": video}, &e); st != http.StatusBadRequest {
		t.Errorf("mute without muted: %d %+v", st, e)
	}
	if st := apiSend(t, n.baseURL(), "POST", "/api/v1/rooms/standup/participants/nobody/mute", api, map[string]any{"muted": true}, &e); st != http.StatusNotFound {
		t.Errorf("mute nobody: %d %+v", st, e)
	}
}

// assertStops checks that tc receives no more packets of kind from pid (after those on their way).
func assertStops(t *testing.T, tc *testClient, pid, kind, what string) {
	t.Helper()
	st := tc.stats(pid, kind)
	time.Sleep(500 * time.Millisecond) // packets already on their way
	before := st.packets.Load()
	time.Sleep(1500 * time.Millisecond)
	if got := st.packets.Load() - before; got != 0 {
		t.Fatalf("%s: %d packets arrived in 1.5 s (%s)", what, got, describe(tc))
	}
}

// assertFlows waits until tc receives packets of kind from pid again.
func assertFlows(t *testing.T, tc *testClient, pid, kind, what string) {
	t.Helper()
	st := tc.stats(pid, kind)
	before := st.packets.Load()
	eventually(t, 10*time.Second, what+" arrives", func() bool { return st.packets.Load() > before+20 })
}

// TestAPIUpdateRoles: taking away a participant's right to publish through the API stops its media reaching the
// others and it is told; the list shows it; giving the right back lets its media through; admin and subscribe
// change too.
func TestAPIUpdateRoles(t *testing.T) {
	n, ctx, _, cs := meeting(t, "standup", "alice", "bob")
	alice, bob := cs[0], cs[1]
	api := apiToken(t, "")

	var p apiParticipantOne
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/alice", api, map[string]any{"publish": false}, &p); st != http.StatusOK || p.Publish || !p.Subscribe {
		t.Fatalf("demote alice: %d %+v", st, p)
	}
	if msg := waitMessage(t, ctx, alice, "moderation"); msg.Action != "set_role" || msg.Publish {
		t.Errorf("alice was told %+v", msg)
	}
	assertStops(t, bob, alice.ID(), "video", "the demoted alice's video")
	assertStops(t, bob, alice.ID(), "audio", "the demoted alice's audio")
	for _, q := range (func() apiParticipants {
		var ps apiParticipants
		apiCall(t, n, "GET", "/api/v1/rooms/standup/participants", api, &ps)
		return ps
	})().Participants {
		if q.Identity == "alice" && q.Publish {
			t.Errorf("alice is listed as publishing: %+v", q)
		}
	}

	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/alice", api, map[string]any{"publish": true, "admin": true}, &p); st != http.StatusOK || !p.Publish || !p.Admin {
		t.Fatalf("promote alice: %d %+v", st, p)
	}
	assertFlows(t, bob, alice.ID(), "video", "alice's video once she may publish again")
	// As an administrator now, alice may lock the room.
	if err := alice.Send(map[string]any{"type": "admin", "action": "lock"}); err != nil {
		t.Fatal(err)
	}
	if msg := waitMessage(t, ctx, bob, "room_state", "error"); msg.Type != "room_state" || !msg.Locked {
		t.Errorf("alice, made an administrator, locked the room: bob got %+v", msg)
	}

	// Bob may no longer subscribe: alice's media stops reaching him.
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/bob", api, map[string]any{"subscribe": false}, &p); st != http.StatusOK || p.Subscribe {
		t.Fatalf("bob may not subscribe: %d %+v", st, p)
	}
	assertStops(t, bob, alice.ID(), "video", "alice's video to bob, who may not subscribe")

	var e apiError
	if st := apiSend(t, n.baseURL(), "PATCH", "/api/v1/rooms/standup/participants/alice", api, map[string]any{"publsh": true}, &e); st != http.StatusBadRequest {
		t.Errorf("an unknown field: %d %+v", st, e)
	}
}

// TestAPICreateRoom: a room created ahead of time is listed (empty) with its settings and metadata; creating it
// again is a conflict; its settings apply to those who join (its size limit), who get its metadata; left empty
// past its timeout it closes.
func TestAPICreateRoom(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api := apiToken(t, "")
	base := n.baseURL()

	var rd apiRoomDetail
	body := map[string]any{"name": "planned", "max_participants": 1, "denoise": false, "language": "en", "metadata": "agenda"}
	if st := apiSend(t, base, "POST", "/api/v1/rooms", api, body, &rd); st != http.StatusCreated || rd.Name != "planned" || rd.Metadata != "agenda" || rd.Participants != 0 {
		t.Fatalf("create: %d %+v", st, rd)
	}
	var settings map[string]any
	if err := json.Unmarshal(rd.Settings, &settings); err != nil || settings["max_participants"] != 1.0 || settings["language"] != "en" {
		t.Errorf("settings %s (%v)", rd.Settings, err)
	}
	var rooms apiRooms
	if apiCall(t, n, "GET", "/api/v1/rooms", api, &rooms); len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != "planned" || rooms.Rooms[0].Participants != 0 {
		t.Fatalf("rooms %+v", rooms)
	}
	var e apiError
	if st := apiSend(t, base, "POST", "/api/v1/rooms", api, body, &e); st != http.StatusConflict || e.Code != "already_exists" {
		t.Errorf("create again: %d %+v", st, e)
	}
	for _, bad := range []map[string]any{{"name": ""}, {"name": "x", "max_participants": -1}, {"name": "x", "colour": "red"},
		{"name": "x", "metadata": strings.Repeat("m", 4097)}, {"name": "x", "captions": "nobody"}} {
		if st := apiSend(t, base, "POST", "/api/v1/rooms", api, bad, &e); st != http.StatusBadRequest || e.Code != "bad_request" {
			t.Errorf("create %v: %d %+v", bad, st, e)
		}
	}

	alice := joinClient(t, ctx, n, "planned", "alice")
	if alice.Joined.Metadata != "agenda" {
		t.Errorf("alice joined a room whose metadata is %q", alice.Joined.Metadata)
	}
	if _, msg := rawJoin(t, n, token(t, "planned", "bob", true, true)); msg["code"] != "room_full" {
		t.Errorf("bob joins a room created for one: %v", msg)
	}
	alice.Close()
	time.Sleep(time.Second)
	if apiCall(t, n, "GET", "/api/v1/rooms", api, &rooms); len(rooms.Rooms) != 1 {
		t.Fatalf("the created room closed when alice left, before its timeout: %+v", rooms)
	}

	// A room created to stay empty for a second at most closes by itself.
	if st := apiSend(t, base, "POST", "/api/v1/rooms", api, map[string]any{"name": "brief", "empty_timeout": 1}, nil); st != http.StatusCreated {
		t.Fatalf("create brief: %d", st)
	}
	eventually(t, 10*time.Second, "the empty room closes after its timeout", func() bool {
		return apiSend(t, base, "GET", "/api/v1/rooms/brief", api, nil, &e) == http.StatusNotFound
	})
	if st := apiSend(t, base, "DELETE", "/api/v1/rooms/planned", api, nil, nil); st != http.StatusNoContent {
		t.Errorf("end the empty planned room: %d", st)
	}
	if st := apiSend(t, base, "GET", "/api/v1/rooms/planned", api, nil, &e); st != http.StatusNotFound {
		t.Errorf("the ended room is still there: %d", st)
	}
}

// TestAPIMoreRefusals: the new endpoints refuse a call without a token (401), with a participant's token
// (403, no api grant) and with an API token for another room (403), and do nothing then.
func TestAPIMoreRefusals(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinClient(t, ctx, n, "a", "alice")
	participant := token(t, "a", "mallory", true, true)
	admin := adminToken(t, "a", "chair")
	other := apiToken(t, "b")
	checkRefused(t, n, []apiEndpoint{
		{"GET", "/api/v1/rooms/a", nil},
		{"PATCH", "/api/v1/rooms/a", map[string]any{"metadata": "x"}},
		{"POST", "/api/v1/rooms/a/participants/alice/mute", map[string]any{"muted": true}},
		{"PATCH", "/api/v1/rooms/a/participants/alice", map[string]any{"publish": false, "metadata": "x"}},
		{"POST", "/api/v1/rooms", map[string]any{"name": "a2"}},
	}, []apiRefusal{
		{"no token", "", "unauthorized", http.StatusUnauthorized},
		{"a participant token", participant, "forbidden", http.StatusForbidden},
		{"an admin's participant token", admin, "forbidden", http.StatusForbidden},
		{"an API token for room b", other, "forbidden", http.StatusForbidden},
	})
	var rd apiRoomDetail
	if st := apiSend(t, n.baseURL(), "GET", "/api/v1/rooms/a", apiToken(t, "a"), nil, &rd); st != http.StatusOK || rd.Metadata != "" {
		t.Errorf("room a after the refused calls: %d %+v", st, rd)
	}
	var ps apiParticipants
	apiCall(t, n, "GET", "/api/v1/rooms/a/participants", apiToken(t, "a"), &ps)
	if len(ps.Participants) != 1 || !ps.Participants[0].Publish {
		t.Errorf("alice after the refused calls: %+v", ps)
	}
	var rooms apiRooms
	if apiCall(t, n, "GET", "/api/v1/rooms", apiToken(t, ""), &rooms); len(rooms.Rooms) != 1 {
		t.Errorf("a refused create made a room: %+v", rooms)
	}
}
