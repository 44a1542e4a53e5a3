package signaling

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

const placementSecret = "placement-test-secret-0123456789"

// blockingPlacement hosts every room here; its first Fallbacks lookup blocks until release is called, as a
// lookup in a Redis that has stopped answering would.
type blockingPlacement struct {
	entered     chan struct{} // closed when the first lookup has started
	released    chan struct{}
	releaseOnce sync.Once
	first       sync.Once
	fallbacks   []string
}

func newBlockingPlacement(fallbacks ...string) *blockingPlacement {
	return &blockingPlacement{entered: make(chan struct{}), released: make(chan struct{}), fallbacks: fallbacks}
}

func (p *blockingPlacement) release() { p.releaseOnce.Do(func() { close(p.released) }) }

func (p *blockingPlacement) Region() string { return "local" }

func (p *blockingPlacement) Route(context.Context, string, []string) (Route, error) {
	return Route{}, nil
}

func (p *blockingPlacement) Admit(context.Context, string, []string) error { return nil }

func (p *blockingPlacement) SetLocked(context.Context, string, bool) error { return nil }

func (p *blockingPlacement) SetEnded(context.Context, string) error { return nil }

func (p *blockingPlacement) Fallbacks() []string {
	blocked := false
	p.first.Do(func() { blocked = true })
	if blocked {
		close(p.entered)
		<-p.released
	}
	return p.fallbacks
}

func (p *blockingPlacement) IsPeer(string) bool { return false }

// placementServer serves signaling for a fresh SFU on loopback with the placement.
func placementServer(t *testing.T, pl Placement) (*sfu.SFU, string) {
	t.Helper()
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(s, Config{Secret: []byte(placementSecret), Placement: pl})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = s.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// sendJoin opens a socket and sends a join for room as identity.
func sendJoin(t *testing.T, url, room, identity string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	tok, err := MintToken([]byte(placementSecret), Claims{Room: room, Identity: identity, Subscribe: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteJSON(map[string]string{"type": "join", "token": tok}); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readJoined reads until the joined message, within d.
func readJoined(conn *websocket.Conn, d time.Duration) (protocol.Joined, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	for i := 0; i < 16; i++ {
		var m protocol.Joined
		if err := conn.ReadJSON(&m); err != nil {
			return protocol.Joined{}, err
		}
		if m.Type == "joined" {
			return m, nil
		}
	}
	return protocol.Joined{}, context.DeadlineExceeded
}

// TestJoinNotHeldByFallbackLookup: while one participant's fallback-node lookup hangs (a slow Redis), another
// participant still joins within 3 s, and the SFU's stats (what /metrics scrapes) still answer; once the lookup
// answers, the first participant joins too, with the fallback nodes in its joined message.
func TestJoinNotHeldByFallbackLookup(t *testing.T) {
	const bound = 3 * time.Second
	pl := newBlockingPlacement("http://10.0.0.2:7880")
	s, url := placementServer(t, pl)
	t.Cleanup(pl.release) // runs before the server's clean-up, which waits for the sessions

	alice := sendJoin(t, url, "first", "alice")
	select {
	case <-pl.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("alice's join never looked up the fallback nodes")
	}

	bob := sendJoin(t, url, "second", "bob")
	start := time.Now()
	if _, err := readJoined(bob, bound); err != nil {
		t.Fatalf("bob did not get joined within %v while alice's fallback lookup hangs: %v", bound, err)
	}
	t.Logf("bob joined in %v", time.Since(start).Round(time.Millisecond))

	stats := make(chan sfu.Stats, 1)
	go func() { stats <- s.Stats() }() // ends once the lookup is released, if not before
	select {
	case st := <-stats:
		if st.Participants < 1 {
			t.Errorf("stats count %d participants, want bob at least", st.Participants)
		}
	case <-time.After(bound):
		t.Fatalf("sfu.Stats did not return within %v while alice's fallback lookup hangs", bound)
	}

	pl.release()
	j, err := readJoined(alice, 10*time.Second)
	if err != nil {
		t.Fatalf("alice did not join after the lookup answered: %v", err)
	}
	if len(j.Nodes) != 1 || j.Nodes[0] != "ws://10.0.0.2:7880/ws" {
		t.Errorf("alice's joined lists nodes %v, want the fallback ws://10.0.0.2:7880/ws", j.Nodes)
	}
}
