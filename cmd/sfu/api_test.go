package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
)

// apiToken mints a token with the api grant: node-wide when room is "", else for that room only.
func apiToken(t testing.TB, room string) string {
	t.Helper()
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: "api", API: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiCall sends one server API request with tok ("": no Authorization header) and decodes a JSON answer into
// out (if not nil); it returns the status.
// apiEndpoint is one call of the API: method, path and JSON body (nil: none).
type apiEndpoint struct {
	method, path string
	body         any
}

// apiRefusal is a token an endpoint must refuse, with the code and status it answers.
type apiRefusal struct {
	what, tok, code string
	status          int
}

// checkRefused calls every endpoint with every refused token and checks each answer is the refusal, with a message.
func checkRefused(t *testing.T, n *node, endpoints []apiEndpoint, refusals []apiRefusal) {
	t.Helper()
	for _, ep := range endpoints {
		for _, c := range refusals {
			var e apiError
			if st := apiSend(t, n.baseURL(), ep.method, ep.path, c.tok, ep.body, &e); st != c.status || e.Code != c.code || e.Message == "" {
				t.Errorf("%s %s with %s: %d %+v, want %d %s", ep.method, ep.path, c.what, st, e, c.status, c.code)
			}
		}
	}
}

func apiCall(t *testing.T, n *node, method, path, tok string, out any) int {
	t.Helper()
	return apiSend(t, n.baseURL(), method, path, tok, nil, out)
}

type apiRooms struct {
	Rooms []struct {
		Name         string    `json:"name"`
		Participants int       `json:"participants"`
		CreatedAt    time.Time `json:"created_at"`
	} `json:"rooms"`
}

type apiParticipants struct {
	Participants []struct {
		ID       string `json:"id"`
		Identity string `json:"identity"`
		Name     string `json:"name"`
		Tracks   []struct {
			ID     string `json:"id"`
			Kind   string `json:"kind"`
			Source string `json:"source"`
			Muted  bool   `json:"muted"`
		} `json:"tracks"`
		Publish   bool      `json:"publish"`
		Subscribe bool      `json:"subscribe"`
		Admin     bool      `json:"admin"`
		JoinedAt  time.Time `json:"joined_at"`
		Remote    bool      `json:"remote"`
	} `json:"participants"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// identities lists the identities of a room's participants, as the API gives them.
func identities(t *testing.T, n *node, room, tok string) []string {
	t.Helper()
	var ps apiParticipants
	if st := apiCall(t, n, "GET", "/api/v1/rooms/"+room+"/participants", tok, &ps); st != http.StatusOK {
		t.Fatalf("participants of %s: status %d", room, st)
	}
	var ids []string
	for _, p := range ps.Participants {
		ids = append(ids, p.Identity)
	}
	return ids
}

// waitBye waits for the bye tc is sent, and checks its reason.
func waitBye(t *testing.T, tc *testClient, reason string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-tc.events:
			if m.Type == "bye" {
				if m.Reason != reason {
					t.Fatalf("%s: bye %q, want %q", tc.Joined.You.Identity, m.Reason, reason)
				}
				return
			}
		case <-timeout:
			t.Fatalf("%s got no bye %q (the client: %v)", tc.Joined.You.Identity, reason, tc.Err())
		}
	}
}

// TestAPIMeeting: an API token lists the rooms of the node and the participants of a live meeting (with their
// tracks), removes one (who gets bye kicked and cannot come back) and ends the room (everyone gets bye
// room_ended); every call is in the audit log.
func TestAPIMeeting(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) { c.AuditDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	cs := joinPublishing(t, ctx, n, m, "standup", "alice", "bob")
	carol := joinClient(t, ctx, n, "standup", "carol")
	api := apiToken(t, "")

	var rooms apiRooms
	if st := apiCall(t, n, "GET", "/api/v1/rooms", api, &rooms); st != http.StatusOK {
		t.Fatalf("list rooms: status %d", st)
	}
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != "standup" || rooms.Rooms[0].Participants != 3 ||
		time.Since(rooms.Rooms[0].CreatedAt) > time.Minute {
		t.Fatalf("rooms %+v", rooms)
	}

	var ps apiParticipants
	if st := apiCall(t, n, "GET", "/api/v1/rooms/standup/participants", api, &ps); st != http.StatusOK {
		t.Fatalf("list participants: status %d", st)
	}
	if len(ps.Participants) != 3 {
		t.Fatalf("participants %+v", ps)
	}
	for _, p := range ps.Participants {
		if p.ID == "" || p.Name != "Name of "+p.Identity || !p.Publish || !p.Subscribe || p.Admin || time.Since(p.JoinedAt) > time.Minute {
			t.Errorf("participant %+v", p)
		}
		want := 2 // alice and bob publish audio and video, carol nothing
		if p.Identity == "carol" {
			want = 0
		}
		if len(p.Tracks) != want {
			t.Errorf("%s has tracks %+v, want %d", p.Identity, p.Tracks, want)
		}
		for _, tr := range p.Tracks {
			if tr.ID == "" || (tr.Kind != "audio" && tr.Kind != "video") {
				t.Errorf("%s: track %+v", p.Identity, tr)
			}
		}
	}

	// Remove bob: he is kicked, disappears from the list and cannot come back with his token.
	if st := apiCall(t, n, "DELETE", "/api/v1/rooms/standup/participants/bob", api, nil); st != http.StatusNoContent {
		t.Fatalf("remove bob: status %d", st)
	}
	waitBye(t, cs[1], "kicked")
	eventually(t, 5*time.Second, "bob leaves the list", func() bool {
		return !strings.Contains(strings.Join(identities(t, n, "standup", api), ","), "bob")
	})
	if _, msg := rawJoin(t, n, token(t, "standup", "bob", true, true)); msg["code"] != "kicked" {
		t.Errorf("bob rejoins after his removal: %v", msg)
	}
	var e apiError
	if st := apiCall(t, n, "DELETE", "/api/v1/rooms/standup/participants/bob", api, &e); st != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("remove bob again: %d %+v", st, e)
	}
	if st := apiCall(t, n, "GET", "/api/v1/rooms/nowhere/participants", api, &e); st != http.StatusNotFound || e.Code != "not_found" {
		t.Errorf("participants of a room the node does not host: %d %+v", st, e)
	}

	// End the room: everyone gets bye room_ended, and the node no longer hosts it.
	if st := apiCall(t, n, "DELETE", "/api/v1/rooms/standup", api, nil); st != http.StatusNoContent {
		t.Fatalf("end the room: status %d", st)
	}
	waitBye(t, cs[0], "room_ended")
	waitBye(t, carol, "room_ended")
	eventually(t, 5*time.Second, "the room closes", func() bool {
		var rs apiRooms
		apiCall(t, n, "GET", "/api/v1/rooms", api, &rs)
		return len(rs.Rooms) == 0
	})
	if st := apiCall(t, n, "DELETE", "/api/v1/rooms/standup", api, &e); st != http.StatusNotFound {
		t.Errorf("end a room the node does not host: %d %+v", st, e)
	}

	eventually(t, 5*time.Second, "the API calls are audited", func() bool {
		return strings.Contains(readAudit(t, dir), `"pattern":"DELETE /api/v1/rooms/{room}"`)
	})
	log := readAudit(t, dir)
	for _, want := range []string{`"kind":"api"`, `"method":"GET"`, `"pattern":"GET /api/v1/rooms"`,
		`"pattern":"DELETE /api/v1/rooms/{room}/participants/{identity}"`, `"target":"bob"`, `"status":204`, `"status":404`} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit log has no %s:\n%s", want, log)
		}
	}
}

// TestAPIRefusals: no token or a bad one gets 401, a participant token 403, a room-scoped API token 403 on another
// room (and sees only its own in the list); an API token cannot join a room over /ws, WHIP or WHEP.
func TestAPIRefusals(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) { c.AuditDir = dir })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinClient(t, ctx, n, "a", "alice")
	joinClient(t, ctx, n, "b", "bob")

	bad, err := signaling.MintToken([]byte("another secret"), signaling.Claims{Identity: "api", API: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	participant := token(t, "a", "mallory", true, true)
	admin, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: "a", Identity: "chair", Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkRefused(t, n, []apiEndpoint{
		{"GET", "/api/v1/rooms", nil}, {"GET", "/api/v1/rooms/a/participants", nil},
		{"DELETE", "/api/v1/rooms/a/participants/alice", nil}, {"DELETE", "/api/v1/rooms/a", nil},
	}, []apiRefusal{
		{"no token", "", "unauthorized", http.StatusUnauthorized},
		{"a bad token", bad, "unauthorized", http.StatusUnauthorized},
		{"a participant token", participant, "forbidden", http.StatusForbidden},
		{"an admin's participant token", admin, "forbidden", http.StatusForbidden},
	})
	if got := identities(t, n, "a", apiToken(t, "")); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("alice was removed by a refused call: %v", got)
	}

	// A token for room a acts on a only.
	scoped := apiToken(t, "a")
	var rooms apiRooms
	if st := apiCall(t, n, "GET", "/api/v1/rooms", scoped, &rooms); st != http.StatusOK || len(rooms.Rooms) != 1 || rooms.Rooms[0].Name != "a" {
		t.Errorf("rooms seen by a token for a: %d %+v", st, rooms)
	}
	for _, ep := range []struct{ method, path string }{
		{"GET", "/api/v1/rooms/b/participants"}, {"DELETE", "/api/v1/rooms/b/participants/bob"}, {"DELETE", "/api/v1/rooms/b"},
	} {
		var e apiError
		if st := apiCall(t, n, ep.method, ep.path, scoped, &e); st != http.StatusForbidden || e.Code != "forbidden" {
			t.Errorf("%s %s with a token for room a: %d %+v", ep.method, ep.path, st, e)
		}
	}
	if got := identities(t, n, "a", scoped); len(got) != 1 {
		t.Errorf("participants of a with its token: %v", got)
	}

	// An API token is no participant's: refused over /ws, WHIP and WHEP, node-wide or for the room.
	for _, tok := range []string{apiToken(t, ""), scoped} {
		if _, msg := rawJoin(t, n, tok); msg["type"] != "error" || msg["code"] != "unauthorized" {
			t.Errorf("an API token joins over /ws: %v", msg)
		}
		for _, kind := range []string{"whip", "whep"} {
			req, _ := http.NewRequest("POST", n.baseURL()+"/"+kind+"/a", strings.NewReader("v=0\r\n"))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/sdp")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
				t.Errorf("an API token over %s: %s", kind, resp.Status)
			}
		}
	}

	eventually(t, 5*time.Second, "the refusals are audited", func() bool {
		return strings.Contains(readAudit(t, dir), `"kind":"api"`)
	})
	if log := readAudit(t, dir); !strings.Contains(log, `"refused":true`) || !strings.Contains(log, `"status":403`) || !strings.Contains(log, `"status":401`) {
		t.Errorf("the refused API calls are not audited as refused:\n%s", log)
	}
}

// TestTokenCmdAPI: `sfu token -api` mints an API token without -identity, node-wide or, with -room, for one room.
func TestTokenCmdAPI(t *testing.T) {
	clearSFUEnv(t)
	for _, room := range []string{"", "standup"} {
		args := []string{"-secret", "cli-secret", "-api"}
		if room != "" {
			args = append(args, "-room", room)
		}
		out, err := runTokenCmd(t, args...)
		if err != nil {
			t.Fatalf("tokenCmd %v: %v", args, err)
		}
		c, err := signaling.Keys{Default: []byte("cli-secret")}.VerifyAPI(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("the API token does not verify as one: %v", err)
		}
		if !c.API || c.Room != room || c.Identity != "api" || c.Publish || c.Subscribe || c.Admin {
			t.Errorf("claims %+v", c)
		}
		if _, err := signaling.VerifyToken([]byte("cli-secret"), strings.TrimSpace(out)); err == nil {
			t.Error("an API token verifies as a participant's")
		}
	}
	if _, err := runTokenCmd(t, "-secret", "s", "-api", "-publish"); err == nil {
		t.Error("-api with -publish: want an error (an API token grants no participant rights)")
	}
}
