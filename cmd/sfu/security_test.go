package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
)

// adminToken mints a token with the admin right.
func adminToken(t *testing.T, room, identity string) string {
	t.Helper()
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: identity, Name: identity,
		Publish: true, Subscribe: true, Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawJoin opens a socket, joins with tok and returns it after the first answer (joined or an error).
func rawJoin(t *testing.T, n *node, tok string) (*websocket.Conn, map[string]any) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(client.WSURL(n.baseURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.WriteJSON(map[string]any{"type": "join", "token": tok}); err != nil {
		t.Fatal(err)
	}
	return conn, readUntil(t, conn, "joined", "error")
}

// readUntil reads messages until one of the types comes (5 s at most).
func readUntil(t *testing.T, conn *websocket.Conn, types ...string) map[string]any {
	t.Helper()
	return readUntilWithin(t, conn, 5*time.Second, types...)
}

// TestRolesAndAdminActions: a subscribe-only token cannot publish; a participant without the admin right
// cannot kick, mute or lock; an administrator can mute (the audio stops reaching the others until unmute),
// take away the right to publish, lock the room (newcomers are refused, administrators get in), kick, and end
// the room.
func TestRolesAndAdminActions(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := startMedia(t, ctx)

	// Subscribe only: the offer is refused.
	viewer := joinClientToken(t, ctx, n, token(t, "roles", "viewer", false, true))
	tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = viewer.Publish(pctx, tr)
	pcancel()
	if err == nil || !hasError(viewer.Errors(), "forbidden") {
		t.Fatalf("a subscribe-only token published: %v %v", err, viewer.Errors())
	}

	alice := joinClient(t, ctx, n, "roles", "alice")
	bob := joinClient(t, ctx, n, "roles", "bob")
	publishTone(t, m, alice)
	eventually(t, 10*time.Second, "bob hears alice", func() bool { return bob.stats(alice.ID(), "audio").packets.Load() > 20 })

	// Not an administrator.
	for _, action := range []string{"kick", "mute", "lock", "end"} {
		if err := bob.Send(map[string]any{"type": "admin", "action": action, "participant": alice.ID()}); err != nil {
			t.Fatal(err)
		}
		if msg := waitMessage(t, ctx, bob, "error"); msg.Code != "forbidden" || msg.Ref != "admin" {
			t.Fatalf("%s by a non-admin: %+v", action, msg)
		}
	}

	admin := joinClientToken(t, ctx, n, adminToken(t, "roles", "chair"))
	send := func(v map[string]any) {
		t.Helper()
		v["type"] = "admin"
		if err := admin.Send(v); err != nil {
			t.Fatal(err)
		}
	}
	// Mute: alice's audio stops reaching bob, and alice is told.
	send(map[string]any{"action": "mute", "participant": alice.ID()})
	if msg := waitMessage(t, ctx, alice, "moderation"); msg.Type != "moderation" {
		t.Fatalf("alice was not told: %+v", msg)
	}
	time.Sleep(300 * time.Millisecond)
	before := bob.stats(alice.ID(), "audio").packets.Load()
	time.Sleep(time.Second)
	if got := bob.stats(alice.ID(), "audio").packets.Load() - before; got > 2 {
		t.Fatalf("bob received %d audio packets from muted alice in a second", got)
	}
	send(map[string]any{"action": "unmute", "participant": alice.ID()})
	eventually(t, 5*time.Second, "alice heard again after unmute", func() bool { return bob.stats(alice.ID(), "audio").packets.Load() > before+20 })

	// Lock: a newcomer is refused, an administrator gets in.
	send(map[string]any{"action": "lock"})
	if msg := waitMessage(t, ctx, bob, "room_state"); msg.Type != "room_state" {
		t.Fatalf("no room_state: %+v", msg)
	}
	if _, msg := rawJoin(t, n, token(t, "roles", "latecomer", true, true)); msg["code"] != "room_locked" {
		t.Fatalf("a newcomer in a locked room: %v", msg)
	}
	if _, msg := rawJoin(t, n, adminToken(t, "roles", "cochair")); msg["type"] != "joined" {
		t.Fatalf("an administrator in a locked room: %v", msg)
	}

	// Kick bob: he gets bye "kicked".
	send(map[string]any{"action": "kick", "participant": bob.ID()})
	select {
	case <-bob.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob was not disconnected")
	}

	// End the room: everyone's session ends.
	send(map[string]any{"action": "end"})
	for _, c := range []*testClient{alice, admin} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a participant's session outlived the room's end")
		}
	}
}

// TestDataChannelNeedsRight: an offer with a data channel is refused without the publish_data right.
func TestDataChannelNeedsRight(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := joinClient(t, ctx, n, "data", "alice")
	if _, err := c.Pub.CreateDataChannel("chat", nil); err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if err := c.NegotiatePublish(pctx); err == nil || !hasError(c.Errors(), "forbidden") {
		t.Fatalf("a data channel without publish_data: %v %v", err, c.Errors())
	}
}

// TestTrackAndMessageLimits: an offer with more tracks than allowed gets limit_exceeded; a client sending more
// than 50 messages a second gets rate_limited and its extra messages are dropped, and the session goes on.
func TestTrackAndMessageLimits(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := joinClient(t, ctx, n, "limits", "alice")
	for i := range 9 {
		tr, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "t"+string(rune('a'+i)), "s")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Pub.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if err := c.NegotiatePublish(pctx); err == nil || !hasError(c.Errors(), "limit_exceeded") {
		t.Fatalf("9 tracks: %v %v", err, c.Errors())
	}

	conn, joined := rawJoin(t, n, token(t, "limits", "chatty", true, true))
	if joined["type"] != "joined" {
		t.Fatal(joined)
	}
	msgs := make(chan map[string]any, 1024)
	go func() { // ends when the socket closes at the test's end
		defer close(msgs)
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			msgs <- m
		}
	}()
	for i := range 300 {
		if err := conn.WriteJSON(map[string]any{"type": "ping", "id": i}); err != nil {
			t.Fatal(err)
		}
	}
	pongs, limited := 0, 0
	quiet := time.After(2 * time.Second)
collect:
	for {
		select {
		case m := <-msgs:
			switch {
			case m["type"] == "pong":
				pongs++
			case m["code"] == "rate_limited":
				limited++
			}
		case <-quiet:
			break collect
		}
	}
	t.Logf("300 pings at once: %d answered, %d rate_limited errors", pongs, limited)
	if limited == 0 || pongs >= 300 || pongs < 90 {
		t.Fatalf("300 pings at once: %d pongs, %d rate_limited errors", pongs, limited)
	}
	if err := conn.WriteJSON(map[string]any{"type": "ping", "id": 1000}); err != nil { // the bucket has refilled
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("the socket closed after the burst")
			}
			if m["type"] == "pong" && m["id"] == float64(1000) {
				return
			}
		case <-deadline:
			t.Fatal("no pong after the burst")
		}
	}
}

// TestICERestart: a client restarts ICE on both connections, as after a network change, and media keeps
// flowing both ways without a new join.
func TestICERestart(t *testing.T) {
	_, ctx, _, cs := meeting(t, "restart", "alice", "bob")
	alice, bob := cs[0], cs[1]
	ufrag := func(pc *webrtc.PeerConnection) string {
		d := pc.RemoteDescription()
		if d == nil {
			return ""
		}
		for _, line := range strings.Split(d.SDP, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
				return v
			}
		}
		return ""
	}
	pubBefore, subBefore := ufrag(alice.Pub), ufrag(alice.Sub)
	if err := alice.RestartICE(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "new ICE credentials on both of alice's connections", func() bool {
		return ufrag(alice.Pub) != pubBefore && ufrag(alice.Sub) != subBefore && ufrag(alice.Sub) != ""
	})
	a0, b0 := alice.stats(bob.ID(), "video").packets.Load(), bob.stats(alice.ID(), "video").packets.Load()
	defer func() {
		t.Logf("after: alice got %d (from %d), bob got %d (from %d); alice publish ICE %s, conn %s", alice.stats(bob.ID(), "video").packets.Load(), a0, bob.stats(alice.ID(), "video").packets.Load(), b0, alice.Pub.ICEConnectionState(), alice.Pub.ConnectionState())
	}()
	eventually(t, 20*time.Second, "media both ways after the restart", func() bool {
		return alice.stats(bob.ID(), "video").packets.Load() > a0+30 && bob.stats(alice.ID(), "video").packets.Load() > b0+30
	})
}

func hasError(errs []client.Message, code string) bool {
	for _, e := range errs {
		if e.Code == code {
			return true
		}
	}
	return false
}
