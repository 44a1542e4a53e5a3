package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/audit"
)

func writeAuditLog(t *testing.T, dir string) {
	t.Helper()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	l, err := audit.Open(dir, audit.Options{Now: func() time.Time { now = now.Add(3 * time.Hour); return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if err := l.Write(audit.Record{Kind: audit.KindJoin, Room: "r", Identity: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAuditVerifyCmd(t *testing.T) {
	dir := t.TempDir()
	writeAuditLog(t, dir)

	var out bytes.Buffer
	if err := auditCmd([]string{"verify", "-dir", dir}, &out); err != nil {
		t.Fatalf("good log: %v\n%s", err, out.String())
	}
	for _, want := range []string{"files:     2", "records:   6 (seq 1 to 6)", "last hash: ", "chain intact"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// SFU_AUDIT_DIR is the default directory.
	t.Setenv("SFU_AUDIT_DIR", dir)
	out.Reset()
	if err := auditCmd([]string{"verify"}, &out); err != nil || !strings.Contains(out.String(), "records:   6") {
		t.Fatalf("env dir: %v\n%s", err, out.String())
	}

	// Tamper with a line.
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no audit files")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], bytes.Replace(b, []byte(`"bob"`), []byte(`"bib"`), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = auditCmd([]string{"verify", "-dir", dir}, &out)
	if err == nil {
		t.Fatalf("tampered log verified:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "PROBLEM: "+filepath.Base(files[0])+":3: hash mismatch") {
		t.Fatalf("tampered line not reported (%v):\n%s", err, out.String())
	}

	if err := auditCmd([]string{"list"}, &out); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
	if err := auditCmd([]string{"verify", "-dir", filepath.Join(dir, "missing")}, &out); err == nil {
		t.Fatal("missing dir accepted")
	}
}

// TestAuditHeadCmd: `sfu audit head` prints the seq and hash of the last record, which verify reports too.
func TestAuditHeadCmd(t *testing.T) {
	dir := t.TempDir()
	writeAuditLog(t, dir)
	rep, err := audit.Verify(dir)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	var out bytes.Buffer
	if err := auditCmd([]string{"head", "-dir", dir}, &out); err != nil {
		t.Fatalf("head: %v\n%s", err, out.String())
	}
	fields := strings.Fields(out.String())
	if len(fields) < 2 || fields[0] != "6" || fields[1] != rep.LastHash {
		t.Fatalf("head printed %q, want seq 6 and hash %s", out.String(), rep.LastHash)
	}
	t.Setenv("SFU_AUDIT_DIR", dir)
	out.Reset()
	if err := auditCmd([]string{"head"}, &out); err != nil || !strings.Contains(out.String(), rep.LastHash) {
		t.Fatalf("head with SFU_AUDIT_DIR: %v %q", err, out.String())
	}
	if err := auditCmd([]string{"head", "-dir", t.TempDir()}, &out); err == nil {
		t.Fatal("head of an empty log: no error")
	}
}
