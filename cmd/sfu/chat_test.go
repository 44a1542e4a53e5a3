package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
)

// waitChat waits until tc receives a chat message with this text, and returns it.
func waitChat(t *testing.T, ctx context.Context, tc *testClient, text string) client.Message {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool { return m.Type == "chat" && m.Text == text })
	if err != nil {
		t.Fatalf("%s never got the chat message %q: %v", tc.Joined.You.Identity, text, err)
	}
	return msg
}

// noChat checks that tc has received no chat message with this text by now (after a moment for it to arrive).
func noChat(t *testing.T, ctx context.Context, tc *testClient, text string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if m, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool { return m.Type == "chat" && m.Text == text }); err == nil {
		t.Fatalf("%s got a chat message meant for someone else: %+v", tc.Joined.You.Identity, m)
	}
}

// TestChat: a message to everyone reaches everyone (its sender too, with the server's time and the sender's
// name); a private one reaches its recipient and its sender only; control characters are removed; too long,
// empty, to nobody or too fast is refused with a clear error; the public chat is in the transcript download,
// the private one is not.
func TestChat(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := joinClient(t, ctx, n, "chat", "alice")
	bob := joinClient(t, ctx, n, "chat", "bob")
	carol := joinClient(t, ctx, n, "chat", "carol")

	before := time.Now().UnixMilli()
	if err := alice.Send(map[string]any{"type": "chat", "text": "  hello\u0007 everyone 大家好\n second line  "}); err != nil {
		t.Fatal(err)
	}
	const clean = "hello everyone 大家好\n second line"
	for _, tc := range []*testClient{alice, bob, carol} {
		m := waitChat(t, ctx, tc, clean)
		if m.From != alice.ID() || m.Name != "Name of alice" || m.To != "" || m.Time < before || m.Time > time.Now().UnixMilli() {
			t.Fatalf("%s got %+v", tc.Joined.You.Identity, m)
		}
	}

	if err := alice.Send(map[string]any{"type": "chat", "text": "just for bob", "to": bob.ID()}); err != nil {
		t.Fatal(err)
	}
	if m := waitChat(t, ctx, bob, "just for bob"); m.To != bob.ID() || m.From != alice.ID() {
		t.Fatalf("bob got %+v", m)
	}
	waitChat(t, ctx, alice, "just for bob")
	noChat(t, ctx, carol, "just for bob")

	refused := func(v map[string]any, code string) {
		t.Helper()
		v["type"] = "chat"
		if err := carol.Send(v); err != nil {
			t.Fatal(err)
		}
		m := waitMessage(t, ctx, carol, "error", "chat")
		if m.Type != "error" || m.Code != code || m.Ref != "chat" {
			t.Fatalf("%.60v: got %+v, want error %s", v, m, code)
		}
	}
	refused(map[string]any{"text": strings.Repeat("長", 1001)}, "bad_request")
	refused(map[string]any{"text": " \u0007 "}, "bad_request")
	refused(map[string]any{"text": "to nobody", "to": "PA_nobody"}, "bad_request")

	// A burst over the chat rate: the first five go, the sixth is refused.
	for i := range 6 {
		if err := bob.Send(map[string]any{"type": "chat", "text": "flood " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitChat(t, ctx, carol, "flood e")
	if m := waitMessage(t, ctx, bob, "error"); m.Code != "rate_limited" || m.Ref != "chat" {
		t.Fatalf("the sixth message in a burst: %+v, want rate_limited", m)
	}
	noChat(t, ctx, carol, "flood f")

	status, vtt := fetchTranscript(t, ctx, n, "chat")
	if status != 200 || !strings.Contains(vtt, "<v.chat Name of alice>hello everyone 大家好  second line") ||
		!strings.Contains(vtt, "<v.chat Name of bob>flood a") || strings.Contains(vtt, "just for bob") {
		t.Fatalf("transcript (%d):\n%s", status, vtt)
	}
}

// waitHands waits until tc is told that the raised hands are want, in that order.
func waitHands(t *testing.T, ctx context.Context, tc *testClient, want ...string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if want == nil {
		want = []string{}
	}
	if _, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool {
		return m.Type == "hands" && slices.Equal(m.Hands, want) || m.Type == "hands" && len(m.Hands) == 0 && len(want) == 0
	}); err != nil {
		t.Fatalf("%s was never told the hands %v: %v", tc.Joined.You.Identity, want, err)
	}
}

// TestRaiseHand: hands form a queue in the order they went up, which everyone sees and a newcomer finds in
// joined; a participant lowers its own, a host lowers anyone's, leaving lowers it; others may not lower one.
func TestRaiseHand(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := joinClientToken(t, ctx, n, adminToken(t, "hands", "host"))
	bob := joinClient(t, ctx, n, "hands", "bob")
	carol := joinClient(t, ctx, n, "hands", "carol")
	hand := func(tc *testClient, up bool) {
		t.Helper()
		if err := tc.Send(map[string]any{"type": "hand", "raised": up}); err != nil {
			t.Fatal(err)
		}
	}
	hand(carol, true)
	waitHands(t, ctx, host, carol.ID())
	hand(bob, true)
	waitHands(t, ctx, host, carol.ID(), bob.ID())
	waitHands(t, ctx, bob, carol.ID(), bob.ID())

	dave := joinClient(t, ctx, n, "hands", "dave")
	if got := dave.Joined.Hands; !slices.Equal(got, []string{carol.ID(), bob.ID()}) {
		t.Fatalf("a newcomer's joined lists the hands %v, want carol's then bob's", got)
	}

	if err := dave.Send(map[string]any{"type": "admin", "action": "lower_hand", "participant": carol.ID()}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, dave, "error"); m.Code != "forbidden" {
		t.Fatalf("a participant lowering another's hand: %+v, want forbidden", m)
	}
	if err := host.Send(map[string]any{"type": "admin", "action": "lower_hand", "participant": carol.ID()}); err != nil {
		t.Fatal(err)
	}
	waitHands(t, ctx, dave, bob.ID())
	hand(carol, true) // back at the end of the queue
	waitHands(t, ctx, host, bob.ID(), carol.ID())
	hand(bob, false)
	waitHands(t, ctx, host, carol.ID())
	carol.Leave()
	waitHands(t, ctx, host)
}

// TestMakeHost: a host makes another participant a host; everyone is told (participant_updated), the new host
// is told (moderation) and gets a token that says so, and may then do what hosts do.
func TestMakeHost(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	host := joinClientToken(t, ctx, n, adminToken(t, "hosts", "host"))
	bob := joinClient(t, ctx, n, "hosts", "bob")
	carol := joinClient(t, ctx, n, "hosts", "carol")

	if err := bob.Send(map[string]any{"type": "admin", "action": "lock"}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, bob, "error"); m.Code != "forbidden" {
		t.Fatalf("before: %+v, want forbidden", m)
	}
	if err := host.Send(map[string]any{"type": "admin", "action": "set_role", "participant": bob.ID(), "admin": true}); err != nil {
		t.Fatal(err)
	}
	m := waitMessage(t, ctx, bob, "moderation")
	if m.Action != "set_role" || !m.Admin || !m.Publish {
		t.Fatalf("bob was told %+v, want set_role admin (still publishing)", m)
	}
	m = waitMessage(t, ctx, carol, "participant_updated")
	if m.Participant == nil || m.Participant.ID != bob.ID() || !m.Participant.Admin {
		t.Fatalf("carol was told %+v, want bob as a host", m)
	}
	eventually(t, 10*time.Second, "a fresh token with the admin grant", func() bool {
		claims, err := signaling.VerifyToken([]byte(testSecret), bob.Token())
		return err == nil && claims.Admin
	})
	if err := bob.Send(map[string]any{"type": "admin", "action": "lock"}); err != nil {
		t.Fatal(err)
	}
	if m := waitMessage(t, ctx, carol, "room_state"); !m.Locked {
		t.Fatalf("carol was told %+v, want the room locked by bob", m)
	}
}

// TestClusterChat: a room spread over two nodes (its owner a is full, bob is hosted on b and relayed) chats as one
// room: what the chair on a says reaches bob on b, and bob's reply the chair, each with its sender's id and name;
// a private message crosses to its one recipient; a's transcript keeps bob's public message.
func TestClusterChat(t *testing.T) {
	sp := spilledRoom(t, 60*time.Second, adminToken(t, "talk", "chair"))
	a, b, ctx, m, chair := sp.a, sp.b, sp.ctx, sp.m, sp.first
	bob := joinClientToken(t, ctx, b, regionToken(t, "talk", "bob"))
	m.publish(t, bob) // the relay shows a participant of the other node from its first track
	eventually(t, 20*time.Second, "the chair on a receives bob's media through the relay", func() bool { return receivesAny(chair, 20) })

	if err := chair.Send(map[string]any{"type": "chat", "text": "hello from a"}); err != nil {
		t.Fatal(err)
	}
	if got := waitChat(t, ctx, bob, "hello from a"); got.From != chair.ID() || got.Name != "chair" {
		t.Fatalf("bob on b got %+v, want it from the chair (%s)", got, chair.ID())
	}
	if err := bob.Send(map[string]any{"type": "chat", "text": "hello from b"}); err != nil {
		t.Fatal(err)
	}
	if got := waitChat(t, ctx, chair, "hello from b"); got.From != bob.ID() || got.Name != "bob" {
		t.Fatalf("the chair on a got %+v, want it from bob (%s)", got, bob.ID())
	}
	waitChat(t, ctx, bob, "hello from b") // bob's own, back once
	noChat(t, ctx, bob, "hello from b")   // and not a second time through the relay

	if err := chair.Send(map[string]any{"type": "chat", "text": "just for bob", "to": bob.ID()}); err != nil {
		t.Fatal(err)
	}
	if got := waitChat(t, ctx, bob, "just for bob"); got.To != bob.ID() || got.From != chair.ID() {
		t.Fatalf("bob got %+v, want the chair's private message", got)
	}
	if errs := chair.Errors(); len(errs) > 0 {
		t.Fatalf("the chair's errors: %+v", errs)
	}
	if status, vtt := fetchTranscript(t, ctx, a, "talk"); status != 200 || !strings.Contains(vtt, "<v.chat bob>hello from b") ||
		strings.Contains(vtt, "just for bob") {
		t.Fatalf("a's transcript (%d):\n%s", status, vtt)
	}
}
