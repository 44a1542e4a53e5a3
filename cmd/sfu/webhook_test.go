package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/webhook"
	"go.uber.org/zap"
)

const testWebhookSecret = "webhook-secret-of-the-test"

// hookReceiver is an application's webhook endpoint on loopback: it verifies each request's signature and keeps
// the events it accepted, in the order they came, and every request's delivery id.
type hookReceiver struct {
	t   *testing.T
	url string
	// fail answers 500 to the first try of the first event it matches.
	fail func(webhook.Event) bool

	mu       sync.Mutex
	accepted []webhook.Event
	tries    map[string]int // by delivery id
	failedID string         // the delivery answered 500
}

func startHookReceiver(t *testing.T, fail func(webhook.Event) bool) *hookReceiver {
	rc := &hookReceiver{t: t, fail: fail, tries: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve)) // on 127.0.0.1
	t.Cleanup(srv.Close)
	rc.url = srv.URL + "/hooks?key=k"
	return rc
}

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	sig := r.Header.Get(webhook.SignatureHeader)
	if err := webhook.Verify([]byte(testWebhookSecret), sig, body, time.Now(), webhook.DefaultTolerance); err != nil {
		rc.t.Errorf("webhook signature: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if webhook.Verify([]byte(testSecret), sig, body, time.Now(), webhook.DefaultTolerance) == nil {
		rc.t.Error("webhook signed with the token secret, not -webhook-secret")
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("webhook body: %v: %s", err, body)
		return
	}
	id := r.Header.Get(webhook.DeliveryHeader)
	if id == "" || id != ev.ID || r.Header.Get(webhook.EventHeader) != ev.Event {
		rc.t.Errorf("webhook headers: delivery %q event %q; body id %q event %q", id, r.Header.Get(webhook.EventHeader), ev.ID, ev.Event)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries[id]++
	if rc.failedID == "" && rc.fail != nil && rc.fail(ev) {
		rc.failedID = id
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	rc.accepted = append(rc.accepted, ev)
}

func (rc *hookReceiver) events() []webhook.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.accepted)
}

// describeHooks is one line per event: its name, participant, track and reason.
func describeHooks(evs []webhook.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + ev.Event)
		if ev.Participant != nil {
			b.WriteString(" " + ev.Participant.Identity)
		}
		if ev.Track != nil {
			b.WriteString(" " + ev.Track.Kind)
		}
		if ev.Reason != "" {
			b.WriteString(" (" + ev.Reason + ")")
		}
		if ev.Limit != nil {
			b.WriteString(" " + ev.Limit.Name)
		}
	}
	return b.String()
}

// TestWebhooks: a meeting on a node with a webhook URL. The application's endpoint gets every event of the room,
// signed with the webhook secret, in the order it happened: room_started, each participant_joined before its
// track_published, a refused join as limit_reached (room_full), each participant's track_unpublished before its
// participant_left with the reason (left, kicked), and room_finished last. The first participant_joined is
// answered 500: it comes again with the same delivery id, and nothing of the room overtakes it.
func TestWebhooks(t *testing.T) {
	rc := startHookReceiver(t, func(ev webhook.Event) bool { return ev.Event == webhook.ParticipantJoined })
	n := startTestNode(t, func(c *config) {
		c.WebhookURLs, c.WebhookSecret, c.webhookBackoff = []string{rc.url}, testWebhookSecret, 20*time.Millisecond
		c.MaxParticipants, c.Region, c.NodeID = 2, "hk", "node-1"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	const room = "hooked"
	cs := joinPublishing(t, ctx, n, m, room, "alice", "bob")
	alice, bob := cs[0], cs[1]

	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, room, "carol", true, true), client.Options{API: api}); err == nil {
		c.Close()
		t.Fatal("a third participant joined a room of max 2")
	}
	bob.Leave()
	eventually(t, 10*time.Second, "alice sees bob leave", func() bool {
		var ps apiParticipants
		apiCall(t, n, http.MethodGet, "/api/v1/rooms/"+room+"/participants", apiToken(t, ""), &ps)
		return len(ps.Participants) == 1
	})
	if st := apiCall(t, n, http.MethodDelete, "/api/v1/rooms/"+room+"/participants/alice", apiToken(t, ""), nil); st != http.StatusOK && st != http.StatusNoContent {
		t.Fatalf("remove alice: %d", st)
	}
	select {
	case <-alice.Done():
	case <-ctx.Done():
		t.Fatal("alice was not removed")
	}
	eventually(t, 10*time.Second, "room_finished delivered", func() bool {
		evs := rc.events()
		return len(evs) > 0 && evs[len(evs)-1].Event == webhook.RoomFinished
	})
	m.stop()

	evs := rc.events()
	t.Logf("events:%s", describeHooks(evs))
	// Everything happened in one room, this node's, in the room's one life.
	sid := evs[0].Room.SID
	for _, ev := range evs {
		if ev.Room == nil || ev.Room.Name != room || ev.Room.SID != sid || ev.Node != (webhook.Node{ID: "node-1", Region: "hk"}) ||
			ev.ID == "" || ev.CreatedAt.IsZero() {
			t.Fatalf("event %s of room %+v from node %+v, id %q at %v: want room %s (%s) of node-1 in hk", ev.Event, ev.Room, ev.Node, ev.ID, ev.CreatedAt, room, sid)
		}
	}
	if evs[0].Event != webhook.RoomStarted || evs[len(evs)-1].Event != webhook.RoomFinished {
		t.Fatalf("the room's events do not start with room_started and end with room_finished:%s", describeHooks(evs))
	}
	// Per participant: joined, then its tracks published, then unpublished, then left with the reason.
	for _, who := range []struct{ identity, reason string }{{"alice", "kicked"}, {"bob", "left"}} {
		var seq []string
		for _, ev := range evs {
			if ev.Participant != nil && ev.Participant.Identity == who.identity && ev.Event != webhook.LimitReached {
				seq = append(seq, ev.Event)
				if ev.Event == webhook.ParticipantLeft && ev.Reason != who.reason {
					t.Errorf("%s left with reason %q, want %q", who.identity, ev.Reason, who.reason)
				}
				if ev.Participant.Session != "websocket" || ev.Participant.SID == "" || ev.Participant.JoinedAt.IsZero() {
					t.Errorf("%s: participant %+v", ev.Event, ev.Participant)
				}
			}
		}
		want := []string{webhook.ParticipantJoined, webhook.TrackPublished, webhook.TrackPublished,
			webhook.TrackUnpublished, webhook.TrackUnpublished, webhook.ParticipantLeft}
		if !slices.Equal(seq, want) {
			t.Errorf("%s's events %v, want %v", who.identity, seq, want)
		}
	}
	if i := slices.IndexFunc(evs, func(ev webhook.Event) bool { return ev.Event == webhook.LimitReached }); i < 0 ||
		evs[i].Limit == nil || evs[i].Limit.Name != "room_full" || evs[i].Participant == nil || evs[i].Participant.Identity != "carol" {
		t.Errorf("no limit_reached room_full for carol:%s", describeHooks(evs))
	}
	bobLeft := slices.IndexFunc(evs, func(ev webhook.Event) bool {
		return ev.Event == webhook.ParticipantLeft && ev.Participant.Identity == "bob"
	})
	aliceLeft := slices.IndexFunc(evs, func(ev webhook.Event) bool {
		return ev.Event == webhook.ParticipantLeft && ev.Participant.Identity == "alice"
	})
	if bobLeft > aliceLeft {
		t.Errorf("bob's leave came after alice's kick:%s", describeHooks(evs))
	}

	// The event answered 500 came again with its delivery id, and was accepted in its place.
	rc.mu.Lock()
	failedID, tries := rc.failedID, rc.tries[rc.failedID]
	rc.mu.Unlock()
	if failedID == "" || tries != 2 {
		t.Fatalf("the delivery answered 500 (%q) was tried %d times, want 2", failedID, tries)
	}
	if evs[1].ID != failedID || evs[1].Event != webhook.ParticipantJoined || evs[1].Participant.Identity != "alice" {
		t.Errorf("the retried participant_joined of alice is not the room's second event:%s", describeHooks(evs))
	}
	metrics := scrape(t, n)
	if v := metricValue(metrics, "sfu_webhook_failed_attempts_total"); v != 1 {
		t.Errorf("sfu_webhook_failed_attempts_total %v, want 1", v)
	}
	if v := metricValue(metrics, "sfu_webhook_delivered_total"); v != float64(len(evs)) {
		t.Errorf("sfu_webhook_delivered_total %v, want %d", v, len(evs))
	}
	if strings.Contains(metrics, room) {
		t.Error("/metrics names the room")
	}
}

// The receiver answers 503 to everything: joins are not held up, and the node's shutdown gives up on the events
// it could not deliver after its drain bound, not after their minute of retries.
func TestWebhooksReceiverDown(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	n := startTestNode(t, func(c *config) { c.WebhookURLs = []string{down.URL} })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range []string{"a", "b", "c"} {
		joinClient(t, ctx, n, "down", id)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	done := make(chan error, 1)
	go func() { done <- n.shutdown(sctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(webhookDrain + 10*time.Second): // the events' own retries would take about a minute
		t.Fatal("shutdown still waits for the webhook receiver")
	}
}

func TestWebhookFlags(t *testing.T) {
	t.Setenv("SFU_WEBHOOK_URL", "http://127.0.0.1:1/a, http://127.0.0.1:1/b")
	c, err := parseConfig([]string{"-dev"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.WebhookURLs, []string{"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}) {
		t.Errorf("from the environment: %q", c.WebhookURLs)
	}
	c, err = parseConfig([]string{"-dev", "-webhook-url", "http://127.0.0.1:1/x", "-webhook-url", "https://example.org/y", "-webhook-secret", "s"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.WebhookURLs, []string{"http://127.0.0.1:1/x", "https://example.org/y"}) || c.WebhookSecret != "s" {
		t.Errorf("flags given twice: %q %q", c.WebhookURLs, c.WebhookSecret)
	}
	if _, err := startWebhooks(config{WebhookURLs: []string{"ftp://example.org"}}, []byte("k"), zap.NewNop()); err == nil {
		t.Error("an ftp webhook URL was taken")
	}
}
