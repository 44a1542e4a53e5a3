package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/audit"
)

// TestAuditTrailAndKeyRotation: a node with two token keys admits a token signed with the rotated key (named
// by its kid) and one with the default secret, refuses an unknown kid; the audit log records the failure, the
// joins, an admin action, a role change and a leave, its chain verifies, and a changed line is detected.
func TestAuditTrailAndKeyRotation(t *testing.T) {
	dir := t.TempDir()
	n := startTestNode(t, func(c *config) {
		c.AuditDir = dir
		c.Keys = map[string][]byte{"2026-11": []byte("the new key")}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rotated, err := signaling.MintTokenWithKey("2026-11", []byte("the new key"), signaling.Claims{Room: "audited", Identity: "chair",
		Publish: true, Subscribe: true, Admin: true}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chair := joinClientToken(t, ctx, n, rotated)
	bob := joinClient(t, ctx, n, "audited", "bob") // the default secret
	unknown, _ := signaling.MintTokenWithKey("2020-01", []byte("the new key"), signaling.Claims{Room: "audited", Identity: "eve"}, time.Hour)
	if _, msg := rawJoin(t, n, unknown); msg["code"] != "unauthorized" {
		t.Fatalf("a token with an unknown kid: %v", msg)
	}
	if err := chair.Send(map[string]any{"type": "admin", "action": "set_role", "participant": bob.ID(), "publish": false}); err != nil {
		t.Fatal(err)
	}
	if err := chair.Send(map[string]any{"type": "admin", "action": "kick", "participant": bob.ID()}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bob was not kicked")
	}
	chair.Close()
	eventually(t, 5*time.Second, "the leaves are recorded", func() bool {
		return strings.Count(readAudit(t, dir), `"kind":"leave"`) >= 2
	})
	log := readAudit(t, dir)
	for _, want := range []string{`"kind":"auth_failure"`, `"kind":"join","room":"audited","identity":"chair"`, `"kind":"join","room":"audited","identity":"bob"`,
		`"kind":"role_change"`, `"kind":"admin"`, `"action":"kick"`, `"kind":"leave"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit log has no %s:\n%s", want, log)
		}
	}
	rep, err := audit.Verify(dir)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	t.Logf("%d records, chain intact", rep.Records)

	// Change bob's identity in his join record: verify finds it, and so does `sfu audit verify`.
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	b, _ := os.ReadFile(files[0])
	if err := os.WriteFile(files[0], bytes.Replace(b, []byte(`"identity":"bob"`), []byte(`"identity":"rob"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := auditCmd([]string{"verify", "-dir", dir}, &out); err == nil || !strings.Contains(out.String(), "hash mismatch") {
		t.Fatalf("a changed line went unnoticed: %v\n%s", err, out.String())
	}
}

func readAudit(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}
