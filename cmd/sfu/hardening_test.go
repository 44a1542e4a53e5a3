package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// wsStatus opens the node's WebSocket with the headers and returns the HTTP status of the handshake (101 when
// it upgraded) and the body of a refusal.
func wsStatus(t *testing.T, n *node, h http.Header) (int, string) {
	t.Helper()
	conn, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial(client.WSURL(n.baseURL()), h)
	if err == nil {
		conn.Close()
		return resp.StatusCode, ""
	}
	if resp == nil {
		t.Fatalf("dial with %v: %v", h, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestOriginNotFromHost: the node's own origins come from its configuration (its public URL; loopback names at
// its port for a node on loopback), never from the request's Host header, which a DNS-rebinding page controls.
func TestOriginNotFromHost(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.PublicURL = "https://meet.example.org" })
	_, port, _ := strings.Cut(n.addr.String(), ":")
	const upgraded = http.StatusSwitchingProtocols
	for _, c := range []struct {
		host, origin string
		want         int
	}{
		{"evil.example:" + port, "http://evil.example:" + port, http.StatusForbidden}, // DNS rebinding
		{"evil.example", "http://evil.example", http.StatusForbidden},
		{"", "http://" + n.addr.String(), upgraded}, // the node's own address
		{"evil.example:" + port, "http://127.0.0.1:" + port, upgraded},
		{"", "http://localhost:" + port, upgraded}, // on loopback: localhost at its port
		{"", "https://[::1]:" + port, upgraded},
		{"", "http://localhost:1", http.StatusForbidden}, // another port is another service
		{"", "https://meet.example.org", upgraded},       // the public URL
		{"", "https://meet.example.org:8443", http.StatusForbidden},
	} {
		h := http.Header{"Origin": {c.origin}}
		if c.host != "" {
			h.Set("Host", c.host)
		}
		if code, body := wsStatus(t, n, h); code != c.want {
			t.Errorf("Host %q, Origin %q: %d %q, want %d", c.host, c.origin, code, body, c.want)
		}
	}
}

// TestDisplayNameCleaned: a token's name loses its control, bidi and other format characters, its whitespace is
// collapsed, and the others see the cleaned name.
func TestDisplayNameCleaned(t *testing.T) {
	n := startTestNode(t)
	bob, joined := rawJoin(t, n, token(t, "names", "bob", false, true))
	if joined["type"] != "joined" {
		t.Fatal(joined)
	}
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: "names", Identity: "mallory",
		Name: "A\u202Egnp.exe\u0007", Publish: true, Subscribe: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, you := rawJoin(t, n, tok)
	if p, _ := you["you"].(map[string]any); p == nil || p["name"] != "Agnp.exe" {
		t.Errorf("mallory's own joined: %v", you["you"])
	}
	seen := readUntil(t, bob, "participant_joined")
	if p, _ := seen["participant"].(map[string]any); p == nil || p["name"] != "Agnp.exe" {
		t.Errorf("bob sees %v, want the name Agnp.exe", seen["participant"])
	}
	_, later := rawJoin(t, n, token(t, "names", "carol", false, true))
	list, _ := later["participants"].([]any)
	found := false
	for _, x := range list {
		if p, _ := x.(map[string]any); p["identity"] == "mallory" {
			found = true
			if p["name"] != "Agnp.exe" {
				t.Errorf("carol's joined lists mallory as %q", p["name"])
			}
		}
	}
	if !found {
		t.Errorf("carol's joined: %v", later)
	}
}

// TestSecurityHeaders: the pages, the scripts and the style sheet carry a Content-Security-Policy that forbids
// framing, and the other headers that keep them from being framed, sniffed or leaking the address. The client's
// modules come as JavaScript: with nosniff a browser refuses a module script of any other type.
func TestSecurityHeaders(t *testing.T) {
	n := startTestNode(t)
	for _, path := range []string{"/", "/room/x", "/room/x?token=abc", "/static/main.js", "/static/protocol.js", "/static/style.css", "/static/index.js"} {
		resp, err := http.Get(n.baseURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", path, resp.Status)
			continue
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: Content-Security-Policy %q allows inline code", path, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", path, k, got, v)
			}
		}
		if strings.HasSuffix(path, ".js") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("%s: Content-Type %q, want text/javascript", path, resp.Header.Get("Content-Type"))
		}
	}
}

// TestTranscriptTokenInHeaderOnly: the transcript takes its token from the Authorization header only: a token in
// the address ends up in histories, proxies' logs and Referer headers.
func TestTranscriptTokenInHeaderOnly(t *testing.T) {
	n := startTestNode(t)
	tok := token(t, "tx", "reader", false, true)
	if code := rawGet(t, n, "/transcript/tx?token="+tok); code != http.StatusUnauthorized {
		t.Errorf("a token in the query: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, n.baseURL()+"/transcript/tx", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Errorf("a token in the header: %s", resp.Status)
	}
}

// TestEveryFrameRateLimited: binary frames and frames over the message size count against the socket's rate
// limit as text does: a flood of them gets rate_limited and most of it is dropped without an answer.
func TestEveryFrameRateLimited(t *testing.T) {
	n := startTestNode(t)
	const frames = 300
	for _, c := range []struct {
		what, code string
		kind       int
		frame      []byte
	}{
		{"binary", protocol.CodeBadMessage, websocket.BinaryMessage, []byte(`{"type":"ping","id":1}`)},
		{"oversized", protocol.CodeTooLarge, websocket.TextMessage, []byte(`{"type":"ping","pad":"` + strings.Repeat("x", protocol.MaxMessageSize) + `"}`)},
	} {
		t.Run(c.what, func(t *testing.T) {
			m := dialRaw(t, n, c.what)
			start := time.Now()
			for i := 0; i < frames; i++ {
				if err := m.write(c.kind, c.frame); err != nil {
					break // a server that closes the socket on the flood is fine too
				}
			}
			// What the rate lets through while the frames go out (slowly under the race detector), and half a
			// second's more for those still being read.
			allowed := signaling.MessageBurst + int((time.Since(start).Seconds()+0.5)*signaling.MaxMessagesPerSecond)
			refused, limited := 0, 0
			deadline := time.Now().Add(2 * time.Second)
			for {
				msg, err := m.read(deadline)
				if err != nil {
					break
				}
				switch msg.Code {
				case c.code:
					refused++
				case protocol.CodeRateLimited:
					limited++
				}
			}
			t.Logf("%d %s frames at once: %d %s, %d rate_limited", frames, c.what, refused, c.code, limited)
			if limited == 0 || refused > min(allowed, frames-1) {
				t.Errorf("%d %s frames at once: %d %s errors (at most %d allowed) and %d rate_limited, want the flood rate-limited",
					frames, c.what, refused, c.code, allowed, limited)
			}
		})
	}
}
