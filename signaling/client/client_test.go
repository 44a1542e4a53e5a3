package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/signaling/protocol"
)

// TestByeAfterFailedOffer: a subscribe offer the client cannot apply (here it is not SDP; in CI it was an answer
// written to a server that had already closed) must not stop the client from reading on, so the server's goodbye
// that follows still reaches the application.
func TestByeAfterFailedOffer(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var join protocol.Request
		if ws.ReadJSON(&join) != nil {
			return
		}
		_ = ws.WriteJSON(map[string]any{"type": protocol.TypeJoined, "you": map[string]string{"id": "PA_1", "identity": "alice"}})
		_ = ws.WriteJSON(protocol.SDP{Type: protocol.TypeOffer, PC: protocol.PCSubscribe, SDP: "not sdp"})
		_ = ws.WriteJSON(protocol.Bye{Type: protocol.TypeBye, Reason: "room_ended"})
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for ws.ReadJSON(&join) == nil { // until the client closes
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make(chan Message, 16)
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), "token", Options{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := WaitFor(ctx, events, func(m Message) bool { return m.Type == protocol.TypeBye })
	if err != nil {
		t.Fatalf("no bye after a failed offer: %v (the client's read loop: %v)", err, c.Err())
	}
	if m.Reason != "room_ended" {
		t.Errorf("bye %q", m.Reason)
	}
	if c.Err() == nil || !strings.Contains(c.Err().Error(), "subscribe offer") {
		t.Errorf("the failed offer is not reported: %v", c.Err())
	}
}
