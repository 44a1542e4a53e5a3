package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/gorilla/websocket"
)

// Pen test finding 8: HTTP and WebSocket exhaustion.

// smallDialer opens test sockets that cost the test process little, so that a measurement sees the server's
// share.
var smallDialer = websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256, HandshakeTimeout: 5 * time.Second}

// dialUnjoined opens a WebSocket that does not join; it returns the handshake's HTTP status (101 when open)
// and the socket, which the test closes.
func dialUnjoined(t *testing.T, n *node) (int, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := smallDialer.DialContext(ctx, client.WSURL(n.baseURL()), nil)
	if resp != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return resp.StatusCode, nil
	}
	t.Cleanup(func() { _ = ws.Close() })
	return resp.StatusCode, ws
}

// pingPong sends a ping message on ws and waits (5 s at most) for its pong.
func pingPong(t *testing.T, ws *websocket.Conn, id int) {
	t.Helper()
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteJSON(map[string]any{"type": "ping", "id": id}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if m := readUntil(t, ws, "pong"); m["id"] != float64(id) {
		t.Fatalf("pong %v, want id %d", m, id)
	}
}

// dialAccepted opens an unjoined socket once the server has freed a place for it (5 s at most, a try every 50 ms):
// the server frees it just after it sends joined, or once it has seen a close.
func dialAccepted(t *testing.T, n *node, after string) *websocket.Conn {
	t.Helper()
	for i := 0; ; i++ {
		status, ws := dialUnjoined(t, n)
		if status == http.StatusSwitchingProtocols {
			return ws
		}
		if i == 100 {
			t.Fatalf("5 s after %s: %d, want 101", after, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIdleConnectionClosed: a kept-alive HTTP connection that sends nothing more is closed after the idle
// timeout.
func TestIdleConnectionClosed(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.HTTPIdleTimeout = 300 * time.Millisecond })
	conn, err := net.DialTimeout("tcp", n.addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+n.addr.String()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %s, close %v: want 200 on a kept-alive connection", resp.Status, resp.Close)
	}
	idle := time.Now()
	_, err = br.ReadByte()
	switch {
	case errors.Is(err, io.EOF):
		t.Logf("the server closed the idle connection after %v", time.Since(idle).Round(10*time.Millisecond))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		t.Fatalf("the kept-alive connection was still open after %v idle (idle timeout 300 ms)", time.Since(idle).Round(10*time.Millisecond))
	default:
		t.Fatalf("idle connection: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSlowBodyCutOff: a WHIP offer dribbled a byte at a time is cut off at the body deadline, with 408.
func TestSlowBodyCutOff(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.HTTPBodyTimeout = 500 * time.Millisecond })
	conn, err := net.DialTimeout("tcp", n.addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /whip/slow HTTP/1.1\r\nHost: " + n.addr.String() + "\r\nContent-Type: application/sdp\r\n" +
		"Authorization: Bearer " + token(t, "slow", "dribbler", true, false) + "\r\nContent-Length: 4000\r\n\r\n"
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() { // owned by the test: ends when the server answers or closes, or when conn is closed below
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		_ = resp.Body.Close()
		answered <- answer{status: resp.StatusCode}
	}()
	start := time.Now()
	var a answer
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
dribble:
	for i := 0; i < 60; i++ { // 6 s at most, 60 of the 4000 bytes
		select {
		case a = <-answered:
			break dribble
		case <-tick.C:
		}
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("v")); err != nil {
			a = <-answered // the server closed: its answer, or why there was none, is on the way
			break
		}
	}
	took := time.Since(start)
	if a.status == 0 && a.err == nil {
		_ = conn.Close()
		<-answered
		t.Fatalf("the server was still reading a body dribbled at 10 bytes a second after %v (body timeout 500 ms)", took.Round(10*time.Millisecond))
	}
	if a.status != http.StatusRequestTimeout {
		t.Fatalf("after %v: %d %v, want 408 Request Timeout", took.Round(10*time.Millisecond), a.status, a.err)
	}
	t.Logf("cut off after %v with %d", took.Round(10*time.Millisecond), a.status)
	healthz(t, n)
}

// TestUnjoinedSocketCap: one address may hold MaxUnjoinedPerIP sockets open before they join; one more
// gets 429, while a meeting on the node carries on. A socket that joins, or closes, frees its place. Over the
// node, MaxUnjoined sockets are held at most; one more gets 503.
func TestUnjoinedSocketCap(t *testing.T) {
	const perIP = 20
	n := startTestNode(t, func(c *config) { c.MaxUnjoinedPerIP, c.MaxUnjoined = perIP, 1000 }) // the flags' defaults
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	cs := joinPublishing(t, ctx, n, m, "capped", "alice", "bob")

	var socks []*websocket.Conn
	for i := range perIP {
		status, ws := dialUnjoined(t, n)
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("unjoined socket %d of %d: %d, want 101", i+1, perIP, status)
		}
		socks = append(socks, ws)
	}
	if status, ws := dialUnjoined(t, n); status != http.StatusTooManyRequests {
		if ws != nil {
			_ = ws.Close()
		}
		t.Fatalf("unjoined socket %d from 127.0.0.1: %d, want 429 Too Many Requests", perIP+1, status)
	}
	meetingHealthy(t, n, cs[0], cs[1], fmt.Sprintf("%d unjoined sockets and a refused one", perIP))
	pingPong(t, socks[0], 1) // an unjoined socket within the cap is served

	// Joining frees a place.
	if err := socks[0].WriteJSON(map[string]any{"type": "join", "token": token(t, "capped", "carol", false, true)}); err != nil {
		t.Fatal(err)
	}
	if msg := readUntil(t, socks[0], "joined", "error"); msg["type"] != "joined" {
		t.Fatalf("carol's join: %v", msg)
	}
	_ = dialAccepted(t, n, "one of the unjoined sockets joined").Close()
	// Closing frees a place.
	_ = socks[1].Close()
	_ = dialAccepted(t, n, "one of the unjoined sockets closed").Close()
	for _, ws := range socks {
		_ = ws.Close()
	}

	t.Run("node", func(t *testing.T) {
		n := startTestNode(t, func(c *config) { c.MaxUnjoinedPerIP, c.MaxUnjoined = 20, 3 })
		for i := range 3 {
			if status, _ := dialUnjoined(t, n); status != http.StatusSwitchingProtocols {
				t.Fatalf("unjoined socket %d of 3: %d, want 101", i+1, status)
			}
		}
		if status, ws := dialUnjoined(t, n); status != http.StatusServiceUnavailable {
			if ws != nil {
				_ = ws.Close()
			}
			t.Fatalf("unjoined socket 4 with a node cap of 3: %d, want 503 Service Unavailable", status)
		}
		healthz(t, n)
	})
}

// TestUnjoinedSocketMemory measures what an open socket that has not joined costs: heap and goroutines, over
// 200 of them (the test's own client ends included). The bound is loose: a socket must not hold a message
// buffer or a send queue before it joins.
func TestUnjoinedSocketMemory(t *testing.T) {
	const sockets = 200
	n := startTestNode(t, func(c *config) { c.MaxUnjoinedPerIP = 1000 })
	// One socket first, so that what is built once (pools, the HTTP server's first connection) is not counted.
	_, warm := dialUnjoined(t, n)
	pingPong(t, warm, 1)
	before, gBefore := heapAfterGC(), settledGoroutines()
	start := time.Now()
	socks := make([]*websocket.Conn, 0, sockets)
	for i := range sockets {
		status, ws := dialUnjoined(t, n)
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("socket %d: %d, want 101", i+1, status)
		}
		pingPong(t, ws, i) // the server's read loop is running
		socks = append(socks, ws)
	}
	if took := time.Since(start); took > 8*time.Second { // the server closes unjoined sockets after 10 s
		t.Fatalf("opening %d sockets took %v: too slow to measure before the join timeout", sockets, took)
	}
	after, gAfter := heapAfterGC(), runtime.NumGoroutine()
	for _, ws := range socks {
		_ = ws.Close()
	}
	heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / sockets
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / sockets
	t.Logf("per unjoined socket, over %d (client end included): heap %+.1f KiB, stacks %+.1f KiB, goroutines %+.2f",
		sockets, float64(heap)/1024, float64(stack)/1024, float64(gAfter-gBefore)/sockets)
	if heap > 32<<10 {
		t.Errorf("an unjoined socket holds %.1f KiB of heap; want under 32 KiB", float64(heap)/1024)
	}
	eventually(t, 10*time.Second, "the closed sockets' goroutines end", func() bool { return runtime.NumGoroutine() <= gBefore+5 })
}

func heapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
