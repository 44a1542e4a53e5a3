package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-sfu/sfu/media/audio/audiotest"
	"go.uber.org/zap/zapcore"
)

// testNodeConfig is startTestNode's configuration, for tests that expect startNode to fail.
func testNodeConfig() config {
	return config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}, Secret: testSecret,
		LogLevel: zapcore.WarnLevel}
}

// TestRNNoiseDirMissing: a configured RNNoise folder that does not hold the module stops the node at start, with
// the flag and the folder named, rather than failing the first room that asks for RNNoise.
func TestRNNoiseDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rnnoise-wasm")
	cfg := testNodeConfig()
	cfg.RNNoiseDir = dir
	n, err := startNode(cfg)
	if err == nil {
		_ = n.shutdown(t.Context())
		t.Fatal("the node started without the RNNoise module it was given")
	}
	if !strings.Contains(err.Error(), "-rnnoise-dir") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q: want -rnnoise-dir and %s named", err, dir)
	}
}

// TestRNNoiseDirDefault: without -rnnoise-dir the node finds the module wherever it is started from: beside its
// executable (an installed node) or in the source tree it was built from (make run, go test).
func TestRNNoiseDirDefault(t *testing.T) {
	want := audiotest.RNNoiseDir(t)
	if _, err := os.Stat(filepath.Join(want, "rnnoise.wasm")); err != nil {
		t.Fatalf("RNNoise is not installed (%v): run make deps", err)
	}
	t.Chdir(t.TempDir())
	dir, searched := findRNNoise()
	if dir != want {
		t.Errorf("found %q (searched %q), want %q", dir, searched, want)
	}
}

// TestAuditDirDefaults: the audit log's default folder is absolute: /var/lib/sfu/audit for a real node, the
// user's state folder for a -dev node; a folder that cannot be made stops the node at start with the flag named.
func TestAuditDirDefaults(t *testing.T) {
	clearSFUEnv(t)
	c, err := parseConfig([]string{"-secret", "s"})
	if err != nil || c.AuditDir != "/var/lib/sfu/audit" {
		t.Errorf("audit dir %q %v, want /var/lib/sfu/audit", c.AuditDir, err)
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	if c, err = parseConfig([]string{"-dev"}); err != nil || c.AuditDir != filepath.Join(state, "sfu", "audit") {
		t.Errorf("-dev audit dir %q %v, want %q", c.AuditDir, err, filepath.Join(state, "sfu", "audit"))
	}
	if c, err = parseConfig([]string{"-dev", "-audit-dir", ""}); err != nil || c.AuditDir != "" {
		t.Errorf("-dev -audit-dir '': %q %v, want no audit log", c.AuditDir, err)
	}

	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testNodeConfig()
	cfg.AuditDir = filepath.Join(file, "audit")
	n, err := startNode(cfg)
	if err == nil {
		_ = n.shutdown(t.Context())
		t.Fatal("the node started with an audit folder it cannot make")
	}
	if !strings.Contains(err.Error(), "-audit-dir") || !strings.Contains(err.Error(), cfg.AuditDir) {
		t.Errorf("error %q: want -audit-dir and %s named", err, cfg.AuditDir)
	}
}
