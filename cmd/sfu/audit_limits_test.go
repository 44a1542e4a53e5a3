package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/gorilla/websocket"
)

// rawGet sends a GET with path written as is on the request line (no escaping) and returns the status code.
func rawGet(t *testing.T, n *node, path string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, n.addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// auditLines is the audit log's records, each as its line and decoded.
func auditLines(t *testing.T, dir string) (lines []string, recs []map[string]any) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(readAudit(t, dir)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %.200s: %v", l, err)
		}
		lines, recs = append(lines, l), append(recs, m)
	}
	return lines, recs
}

// TestAuditBoundedRecords: an unauthenticated GET /transcript/ of 60,000 '<' and a participant's refused admin
// message with a 60 KB track each write one small record that carries the original length.
func TestAuditBoundedRecords(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) { c.AuditDir = dir })

	if code := rawGet(t, n, "/transcript/"+strings.Repeat("<", 60000)); code != http.StatusUnauthorized {
		t.Fatalf("transcript without a token: %d, want 401", code)
	}
	conn, msg := rawJoin(t, n, token(t, "bounded", "mallory", true, true))
	if msg["type"] != "joined" {
		t.Fatalf("join: %v", msg)
	}
	// Written by hand: encoding/json would send each '<' as 6 bytes, over the message limit.
	admin := `{"type":"admin","action":"mute","participant":"nobody","track":"` + strings.Repeat("<", 60000) + `"}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(admin)); err != nil {
		t.Fatal(err)
	}
	if m := readUntil(t, conn, "error"); m["code"] != "forbidden" {
		t.Fatalf("a non-admin's admin message: %v", m)
	}
	eventually(t, 5*time.Second, "the refused admin message is recorded", func() bool {
		return strings.Contains(readAudit(t, dir), `"kind":"admin"`)
	})
	lines, recs := auditLines(t, dir)
	found := map[string]bool{}
	for i, l := range lines {
		if len(l) >= 2048 {
			t.Errorf("record %d is %d bytes (kind %v), want < 2 KB", i, len(l), recs[i]["kind"])
		}
		kind := recs[i]["kind"]
		if kind != audit.KindAuthFailure && kind != audit.KindAdmin {
			continue
		}
		if !strings.Contains(l, ":60000") {
			t.Errorf("the %v record does not carry the original length 60000: %.600s", kind, l)
		}
		found[kind.(string)] = true
	}
	if !found[audit.KindAuthFailure] || !found[audit.KindAdmin] {
		t.Fatalf("records found: %v", found)
	}
	if rep, err := audit.Verify(dir); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// TestAuditRefusedRoom: requests whose token does not verify leave no room name of the client's choosing in the
// audit log, on the transcript, WHIP and WebSocket endpoints.
func TestAuditRefusedRoom(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) { c.AuditDir = dir })
	// A well-formed token signed with another secret.
	forged, err := signaling.MintToken([]byte("another secret"), signaling.Claims{Room: "secret-room-ws", Identity: "eve"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code := rawGet(t, n, "/transcript/secret-room-a?token="+forged); code != http.StatusUnauthorized {
		t.Fatalf("transcript: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, n.baseURL()+"/whip/secret-room-b", strings.NewReader("v=0"))
	req.Header.Set("Authorization", "Bearer "+forged)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("whip: %d", resp.StatusCode)
	}
	if _, msg := rawJoin(t, n, forged); msg["code"] != "unauthorized" {
		t.Fatalf("ws join: %v", msg)
	}
	eventually(t, 5*time.Second, "three auth failures recorded", func() bool {
		return strings.Count(readAudit(t, dir), `"kind":"auth_failure"`) >= 3
	})
	if log := readAudit(t, dir); strings.Contains(log, "secret-room") {
		t.Fatalf("a refused request's room is in the audit log:\n%s", log)
	}
}

// TestAuditCollapsedRefusals: 1,000 identical refusals from one source write a few records and one summary
// with the count of the others.
func TestAuditCollapsedRefusals(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) { c.AuditDir = dir })
	const total = 1000
	const maxWritten = audit.DefaultRefusalBurst
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < total; i++ {
		resp, err := client.Get(n.baseURL() + "/transcript/r?token=bad")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.shutdown(ctx); err != nil { // closes the log: the window's summary is written
		t.Fatal(err)
	}
	_, recs := auditLines(t, dir)
	written, suppressed := 0, 0.0
	for _, r := range recs {
		switch r["kind"] {
		case audit.KindAuthFailure:
			written++
		case audit.KindSuppressed:
			d, _ := r["detail"].(map[string]any)
			if d["kind"] == audit.KindAuthFailure {
				c, _ := d["count"].(float64)
				suppressed += c
			}
		}
	}
	if written > maxWritten || written+int(suppressed) != total {
		t.Fatalf("%d auth_failure records and %v suppressed, want at most %d and %d in all", written, suppressed,
			maxWritten, total)
	}
	var size int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += st.Size()
	}
	if size > 16<<10 {
		t.Fatalf("the audit log is %d bytes after %d refusals, want at most 16 KB", size, total)
	}
	t.Logf("%d refusals: %d records, %d suppressed, %d bytes", total, written, int(suppressed), size)
	if rep, err := audit.Verify(dir); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
