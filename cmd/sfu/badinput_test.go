package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap/zapcore"
)

// rawConn is a WebSocket to the node driven frame by frame, for input no well-behaved client sends.
type rawConn struct {
	t      *testing.T
	name   string
	ws     *websocket.Conn
	pingID uint64
}

func dialRaw(t *testing.T, n *node, name string) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, client.WSURL(n.baseURL()), nil)
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return &rawConn{t: t, name: name, ws: ws, pingID: 1000}
}

func (c *rawConn) write(kind int, b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(kind, b)
}

func (c *rawConn) send(kind int, b []byte) {
	c.t.Helper()
	if err := c.write(kind, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *rawConn) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(websocket.TextMessage, b)
}

// read returns the next server message, waiting at most until deadline.
func (c *rawConn) read(deadline time.Time) (client.Message, error) {
	_ = c.ws.SetReadDeadline(deadline)
	kind, b, err := c.ws.ReadMessage()
	if err != nil {
		return client.Message{}, err
	}
	var m client.Message
	if kind != websocket.TextMessage {
		return m, errors.New("server sent a binary frame")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, errors.New("server sent a frame that is not JSON: " + string(b))
	}
	return m, nil
}

// next reads until a message matches, for at most 5 s.
func (c *rawConn) next(what string, match func(client.Message) bool) client.Message {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.read(deadline)
		if err != nil {
			c.t.Fatalf("%s: waiting for %s: %v", c.name, what, err)
		}
		if match(m) {
			return m
		}
	}
}

func checkError(t *testing.T, who string, m client.Message, code, ref string) {
	t.Helper()
	if m.Type != "error" || m.Code != code {
		t.Errorf("%s: got %+v, want error %s", who, m, code)
	}
	if m.Message == "" {
		t.Errorf("%s: error %s has an empty message", who, m.Code)
	}
	if m.Ref != ref {
		t.Errorf("%s: error %s has ref %q, want %q", who, m.Code, m.Ref, ref)
	}
}

// expectError checks the answer to what was just sent: exactly one error with the code and ref, and the socket
// still open (a ping sent after it is answered by its pong, which also bounds the wait for the error).
func (c *rawConn) expectError(code, ref string) {
	c.t.Helper()
	c.pingID++
	id := c.pingID
	c.sendJSON(map[string]any{"type": "ping", "id": id})
	deadline := time.Now().Add(5 * time.Second)
	var errs []client.Message
	for {
		m, err := c.read(deadline)
		if err != nil {
			c.t.Fatalf("%s: waiting for error %s and pong %d: %v (errors so far: %+v)", c.name, code, id, err, errs)
		}
		switch m.Type {
		case "error":
			errs = append(errs, m)
			continue
		case "pong":
			if m.ID == nil || *m.ID != id {
				c.t.Fatalf("%s: unexpected pong %+v before pong %d", c.name, m, id)
			}
		case "bye":
			c.t.Fatalf("%s: server said bye %q, want error %s and the socket open", c.name, m.Reason, code)
		default:
			continue // room events
		}
		break
	}
	if len(errs) != 1 {
		c.t.Fatalf("%s: got errors %+v, want exactly one %s", c.name, errs, code)
	}
	checkError(c.t, c.name, errs[0], code, ref)
}

// expectClosed waits for the server to close the socket, reading (and returning) what comes before.
func (c *rawConn) expectClosed() []client.Message {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got []client.Message
	for {
		m, err := c.read(deadline)
		if err == nil {
			got = append(got, m)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("%s: the socket is still open after 5 s (got %+v)", c.name, got)
		}
		return got
	}
}

// healthz asserts that /healthz answers 200.
func healthz(t *testing.T, n *node) {
	t.Helper()
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(n.baseURL() + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
}

// meetingHealthy asserts that a and b still receive each other's audio and video (the counts keep rising), that
// neither has been sent an error or has been disconnected, and that the node answers /healthz.
func meetingHealthy(t *testing.T, n *node, a, b *testClient, after string) {
	t.Helper()
	type counter struct {
		what string
		st   *recvStats
		from int64
	}
	var cs []counter
	for _, p := range [][2]*testClient{{a, b}, {b, a}} {
		for _, kind := range []string{"video", "audio"} {
			st := p[0].stats(p[1].ID(), kind)
			cs = append(cs, counter{p[0].Joined.You.Identity + " gets " + kind, st, st.packets.Load()})
		}
	}
	eventually(t, 5*time.Second, "media keeps flowing after "+after, func() bool {
		for _, c := range cs {
			if c.st.packets.Load() < c.from+5 {
				return false
			}
		}
		return true
	})
	for _, tc := range []*testClient{a, b} {
		select {
		case <-tc.Done():
			t.Fatalf("%s was disconnected after %s", tc.Joined.You.Identity, after)
		default:
		}
		if errs := tc.Errors(); len(errs) > 0 {
			t.Fatalf("%s was sent errors after %s: %+v", tc.Joined.You.Identity, after, errs)
		}
	}
	healthz(t, n)
}

// TestBadInput: a hostile socket sends one malformed or out-of-place message after another and gets the
// documented error for each, its socket staying open; sockets with bad tokens or oversized frames are closed; a
// meeting of two in the same room goes on undisturbed throughout.
func TestBadInput(t *testing.T) {
	const room = "hostile"
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cs := joinPublishing(t, ctx, n, startMedia(t, ctx), room, "alice", "bob")
	a, b := cs[0], cs[1]

	m := dialRaw(t, n, "mallory")
	step := func(what string, send func(), code, ref string) {
		t.Helper()
		send()
		m.expectError(code, ref)
		meetingHealthy(t, n, a, b, what)
	}
	text := func(s string) func() { return func() { m.send(websocket.TextMessage, []byte(s)) } }

	// Before join.
	step("non-JSON text", text("hello, is this JSON?"), protocol.CodeBadMessage, "")
	// A binary frame is refused even when it holds a valid message: no pong 1 may come back.
	step("a binary frame", func() { m.send(websocket.BinaryMessage, []byte(`{"type":"ping","id":1}`)) }, protocol.CodeBadMessage, "")
	// 100 KiB: over the 64 KiB limit, under the 1 MiB one. It is a valid ping; it must not be answered.
	big := `{"type":"ping","id":2,"pad":"` + strings.Repeat("x", 100<<10) + `"}`
	step("a 100 KiB frame", text(big), protocol.CodeTooLarge, "")
	step("an unknown type", text(`{"type":"subscribe","pc":"subscribe"}`), protocol.CodeUnknownType, "")
	step("an offer before join", text(`{"type":"offer","pc":"publish","sdp":"v=0\r\n"}`), protocol.CodeNotJoined, "offer")

	// Join. Mallory may publish (so a bad offer reaches the SDP parser rather than being forbidden) but not
	// subscribe: with subscribe the server would send her a subscribe offer for alice's and bob's tracks at once,
	// and her answer below would meet a pending offer (bad_sdp) instead of none (out_of_order).
	m.sendJSON(map[string]string{"type": "join", "token": token(t, room, "mallory", true, false)})
	joined := m.next("joined", func(msg client.Message) bool {
		if msg.Type == "error" || msg.Type == "bye" {
			t.Fatalf("mallory's join refused: %+v", msg)
		}
		return msg.Type == "joined"
	})
	if joined.You == nil || joined.You.Identity != "mallory" || len(joined.Participants) != 2 {
		t.Fatalf("mallory's joined: %+v", joined)
	}
	meetingHealthy(t, n, a, b, "mallory joined")

	step("a second join", func() { m.sendJSON(map[string]string{"type": "join", "token": token(t, room, "mallory2", true, true)}) },
		protocol.CodeAlreadyJoined, "join")
	step("an offer with garbage SDP", text(`{"type":"offer","pc":"publish","sdp":"this is not SDP\r\n\u0000"}`), protocol.CodeBadSDP, "offer")
	step("an answer with no offer pending", text(`{"type":"answer","pc":"subscribe","sdp":"v=0\r\n"}`), protocol.CodeOutOfOrder, "answer")
	step("a candidate for pc bogus",
		text(`{"type":"candidate","pc":"bogus","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`),
		protocol.CodeBadRequest, "candidate")
	step("a mute of an unknown track", text(`{"type":"mute","track":"no-such-track","muted":true}`), protocol.CodeBadRequest, "mute")
	// Alice's track is not mallory's to mute.
	aliceTrack := a.Pub.GetSenders()[0].Track().ID()
	step("a mute of someone else's track", func() { m.sendJSON(map[string]any{"type": "mute", "track": aliceTrack, "muted": true}) },
		protocol.CodeBadRequest, "mute")

	// Separate sockets, each closed by the server.
	t.Run("wrong secret", func(t *testing.T) {
		c := dialRaw(t, n, "forger")
		tok, err := signaling.MintToken([]byte("not-the-secret"), signaling.Claims{Room: room, Identity: "forger", Publish: true, Subscribe: true}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c.sendJSON(map[string]string{"type": "join", "token": tok})
		got := c.expectClosed()
		if len(got) != 1 {
			t.Fatalf("got %+v before the close, want one unauthorized error", got)
		}
		checkError(t, "forger", got[0], protocol.CodeUnauthorized, "join")
	})
	meetingHealthy(t, n, a, b, "a join with a forged token")

	t.Run("expired token", func(t *testing.T) {
		c := dialRaw(t, n, "latecomer")
		tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: "latecomer", Publish: true, Subscribe: true}, -time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		c.sendJSON(map[string]string{"type": "join", "token": tok})
		got := c.expectClosed()
		if len(got) != 1 {
			t.Fatalf("got %+v before the close, want one token_expired error", got)
		}
		checkError(t, "latecomer", got[0], protocol.CodeTokenExpired, "join")
	})
	meetingHealthy(t, n, a, b, "a join with an expired token")

	t.Run("frame over 1 MiB", func(t *testing.T) {
		c := dialRaw(t, n, "flooder")
		// The server may close the socket while the frame is still being written, so a write error is fine.
		_ = c.write(websocket.TextMessage, []byte(`{"type":"ping","id":3,"pad":"`+strings.Repeat("x", 1<<20)+`"}`))
		for _, msg := range c.expectClosed() {
			if msg.Type == "pong" {
				t.Errorf("the oversized ping was answered: %+v", msg)
			}
		}
	})
	meetingHealthy(t, n, a, b, "a frame over 1 MiB")

	// Mallory, after all that, is still connected and served.
	m.sendJSON(map[string]any{"type": "ping", "id": 77})
	if p := m.next("pong 77", func(msg client.Message) bool { return msg.Type == "pong" }); p.ID == nil || *p.ID != 77 {
		t.Fatalf("mallory's pong: %+v", p)
	}
	if st := n.sfu.Stats(); st.Rooms != 1 || st.Participants != 3 {
		t.Errorf("stats %+v, want 1 room with alice, bob and mallory", st)
	}
	meetingHealthy(t, n, a, b, "everything")
}

// TestPublishForbidden: a participant whose token does not allow publishing gets forbidden for a real publish
// offer and stays connected; the same offer from a participant allowed to publish is answered.
func TestPublishForbidden(t *testing.T) {
	n := startTestNode(t)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	offerMsg := map[string]string{"type": "offer", "pc": "publish", "sdp": offer.SDP}

	join := func(identity string, publish bool) *rawConn {
		c := dialRaw(t, n, identity)
		c.sendJSON(map[string]string{"type": "join", "token": token(t, "forbidden", identity, publish, true)})
		c.next("joined", func(msg client.Message) bool {
			if msg.Type == "error" {
				t.Fatalf("%s: join refused: %+v", identity, msg)
			}
			return msg.Type == "joined"
		})
		return c
	}

	viewer := join("viewer", false)
	viewer.sendJSON(offerMsg)
	viewer.expectError(protocol.CodeForbidden, "offer")

	speaker := join("speaker", true)
	speaker.sendJSON(offerMsg)
	ans := speaker.next("the publish answer", func(msg client.Message) bool {
		if msg.Type == "error" {
			t.Fatalf("speaker's offer refused: %+v", msg)
		}
		return msg.Type == "answer"
	})
	if ans.PC != "publish" || !strings.HasPrefix(ans.SDP, "v=0") {
		t.Errorf("speaker's answer: %+v", ans)
	}
	// The viewer was never answered and is still connected.
	viewer.sendJSON(map[string]any{"type": "ping", "id": 9})
	viewer.next("pong", func(msg client.Message) bool {
		if msg.Type == "answer" || msg.Type == "error" {
			t.Fatalf("viewer got %+v", msg)
		}
		return msg.Type == "pong"
	})
}

// TestGracefulShutdown: shutting a node down with a meeting in progress says bye (reason shutdown) to every
// participant, closes their sockets, returns nil and leaves no goroutine behind.
func TestGracefulShutdown(t *testing.T) {
	baseline := settledGoroutines()
	n, err := startNode(config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"},
		Secret: testSecret, LogLevel: zapcore.WarnLevel})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = n.shutdown(ctx)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	cs := joinPublishing(t, ctx, n, media, "closing", "alice", "bob")
	a, b := cs[0], cs[1]

	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	start := time.Now()
	err = n.shutdown(sctx)
	stopped = true
	if err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	t.Logf("shutdown took %v", time.Since(start))

	for _, tc := range []*testClient{a, b} {
		who := tc.Joined.You.Identity
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		bye, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool { return m.Type == "bye" })
		wcancel()
		if err != nil {
			t.Fatalf("%s got no bye: %v", who, err)
		}
		if bye.Reason != "shutdown" {
			t.Errorf("%s: bye reason %q, want shutdown", who, bye.Reason)
		}
		select {
		case <-tc.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s's WebSocket is still open after shutdown", who)
		}
	}

	// The node no longer takes connections.
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	if ws, _, err := websocket.DefaultDialer.DialContext(dctx, client.WSURL(n.baseURL()), nil); err == nil {
		_ = ws.Close()
		t.Error("a WebSocket connected after shutdown")
	}
	dcancel()

	media.stop()
	a.Close()
	b.Close()
	eventually(t, 15*time.Second, fmt.Sprintf("goroutines return to the level before the node started (%d)", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

// settledGoroutines waits (at most 5 s) for the goroutines of earlier tests to end, and returns the count once it
// has not fallen for half a second.
func settledGoroutines() int {
	low, since := runtime.NumGoroutine(), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && time.Since(since) < 500*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n < low {
			low, since = n, time.Now()
		}
	}
	return low
}

// TestUnjoinedSocketClosed: a socket that never joins is closed after the join timeout, even while it answers
// the server's pings.
func TestUnjoinedSocketClosed(t *testing.T) {
	n := startTestNode(t)
	ws, _, err := websocket.DefaultDialer.Dial(client.WSURL(n.baseURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	start := time.Now()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil { // the default ping handler answers pings meanwhile
			if time.Since(start) > 19*time.Second {
				t.Fatalf("the unjoined socket was still open after %v", time.Since(start))
			}
			t.Logf("closed after %v: %v", time.Since(start).Round(100*time.Millisecond), err)
			return
		}
	}
}
