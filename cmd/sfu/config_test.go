package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"go.uber.org/zap/zapcore"
)

// configEnv lists the environment variable of every flag of parseConfig.
var configEnv = []string{"SFU_ADDR", "SFU_UDP", "SFU_UDP_PORT_RANGE", "SFU_PUBLIC_IP", "SFU_ICE_IP", "SFU_ICE_SERVERS",
	"SFU_SECRET", "SFU_LOG_LEVEL", "SFU_DEV", "SFU_METRICS_ADDR", "SFU_METRICS_DETAIL", "SFU_TCP", "SFU_TOKEN_AUDIENCE", "SFU_MAX_TOKEN_TTL"}

// clearSFUEnv unsets every SFU_* variable for the test (t.Setenv restores them afterwards).
func clearSFUEnv(t *testing.T) {
	t.Helper()
	for _, k := range configEnv {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{"addr": "SFU_ADDR", "udp-port-range": "SFU_UDP_PORT_RANGE",
		"public-ip": "SFU_PUBLIC_IP", "log-level": "SFU_LOG_LEVEL"} {
		if got := envName(flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func TestParseConfigDefaults(t *testing.T) {
	clearSFUEnv(t)
	c, err := parseConfig([]string{"-secret", "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7880" || c.UDPAddr != ":7882" || c.UDPPortRange != "" || len(c.PublicIPs) != 0 || len(c.ICEIPs) != 0 ||
		len(c.ICEServers) != 0 || c.Dev || c.LogLevel != zapcore.InfoLevel ||
		c.LatencyBudget != 150*time.Millisecond || c.SFUBudget != 5*time.Millisecond ||
		c.MetricsAddr != "127.0.0.1:7889" || c.MetricsDetail {
		t.Errorf("defaults %+v, want addr :7880, udp :7882, metrics on 127.0.0.1:7889, log level info and nothing else", c)
	}
}

// TestDevModeIsExplicit: a node without a secret does not start unless -dev says it is a development node; -dev
// keeps every listener on loopback unless one is given; metrics are not on the public listener.
func TestDevModeIsExplicit(t *testing.T) {
	clearSFUEnv(t)
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "-dev") {
		t.Fatalf("no secret and no -dev: %v, want a refusal that names -dev", err)
	}
	t.Setenv("SFU_SECRET", " ") // a misspelt variable leaves it empty; a blank one is not a secret either
	if _, err := startNode(config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", LogLevel: zapcore.WarnLevel}); err == nil {
		t.Fatal("startNode without a secret and without Dev started")
	}
	clearSFUEnv(t)
	c, err := parseConfig([]string{"-dev"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7880" || c.UDPAddr != "127.0.0.1:7882" || c.TCPAddr != "127.0.0.1:7881" ||
		!reflect.DeepEqual(c.ICEIPs, []string{"127.0.0.1"}) || c.MetricsAddr != "127.0.0.1:7889" {
		t.Errorf("-dev: addr %q udp %q tcp %q ice %v metrics %q, want all on 127.0.0.1", c.Addr, c.UDPAddr, c.TCPAddr, c.ICEIPs, c.MetricsAddr)
	}
	c, err = parseConfig([]string{"-dev", "-addr", ":8080"})
	if err != nil || c.Addr != ":8080" || c.UDPAddr != "127.0.0.1:7882" {
		t.Errorf("-dev -addr :8080: %q %q %v, want the given address and the rest on loopback", c.Addr, c.UDPAddr, err)
	}
	t.Setenv("SFU_UDP", ":9999")
	if c, err = parseConfig([]string{"-dev"}); err != nil || c.UDPAddr != ":9999" {
		t.Errorf("-dev with SFU_UDP: %q %v, want the variable's address", c.UDPAddr, err)
	}
}

func TestParseConfigEnv(t *testing.T) {
	clearSFUEnv(t)
	t.Setenv("SFU_ADDR", "127.0.0.1:9000")
	t.Setenv("SFU_UDP", "")
	t.Setenv("SFU_UDP_PORT_RANGE", "50000-50100")
	t.Setenv("SFU_PUBLIC_IP", " 203.0.113.7, 198.51.100.2 ,,")
	t.Setenv("SFU_ICE_IP", "10.0.0.5")
	t.Setenv("SFU_ICE_SERVERS", "stun:stun.example.org:3478,turn:turn.example.org:3478")
	t.Setenv("SFU_SECRET", "s3cret")
	t.Setenv("SFU_LOG_LEVEL", "debug")
	t.Setenv("SFU_LATENCY_BUDGET", "250ms")
	t.Setenv("SFU_SFU_LATENCY_BUDGET", "8ms")
	c, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config{Addr: "127.0.0.1:9000", UDPAddr: "", UDPPortRange: "50000-50100", MetricsAddr: "127.0.0.1:7889",
		PublicIPs: []string{"203.0.113.7", "198.51.100.2"}, ICEIPs: []string{"10.0.0.5"},
		ICEServers: []string{"stun:stun.example.org:3478", "turn:turn.example.org:3478"},
		Secret:     "s3cret", LogLevel: zapcore.DebugLevel, LatencyBudget: 250 * time.Millisecond, SFUBudget: 8 * time.Millisecond,
		AudioProcessors: []string{"speex"},
		Captions:        "pocketsphinx", CaptionsLang: "en", CaptionsTimeout: 10 * time.Second,
		Translators: []string{"opencc", "apertium"}, ApertiumPairs: []string{"eng-spa"},
		TCPAddr: ":7881", TURNRealm: "edge-sfu", TURNCredential: 12 * time.Hour,
		AuditDir: "/var/lib/sfu/audit", AuditRetention: 365 * 24 * time.Hour, MaxParticipants: 100, MaxAudioStreams: 3, MaxPublishBitrate: 8_000_000, MaxConcurrentJoins: 50, MaxWorkerStreams: 32,
		MaxUnjoinedPerIP: 20, MaxUnjoined: 1000, HTTPIdleTimeout: 2 * time.Minute, HTTPBodyTimeout: 10 * time.Second,
		TokenAudience: "edge-sfu", MaxTokenTTL: 24 * time.Hour, Region: "local", Capacity: 100}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config from the environment:\n got %+v\nwant %+v", c, want)
	}
}

func TestParseConfigFlagBeatsEnv(t *testing.T) {
	clearSFUEnv(t)
	t.Setenv("SFU_ADDR", "127.0.0.1:9000")
	t.Setenv("SFU_LOG_LEVEL", "not-a-level") // never parsed: the flag wins
	t.Setenv("SFU_PUBLIC_IP", "203.0.113.7")
	t.Setenv("SFU_UDP", "127.0.0.1:9002")
	c, err := parseConfig([]string{"-secret", "s", "-addr", "127.0.0.1:9100", "-log-level", "warn", "-public-ip", "192.0.2.1,192.0.2.2", "-udp="})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9100" || c.LogLevel != zapcore.WarnLevel || c.UDPAddr != "" ||
		!reflect.DeepEqual(c.PublicIPs, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("flags should win over the environment: %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // substring of the error
	}{
		{"bad log level flag", nil, []string{"-log-level", "loud"}, "log level"},
		{"bad log level env", map[string]string{"SFU_LOG_LEVEL": "loud"}, nil, "loud"},
		{"reversed port range flag", nil, []string{"-udp", "", "-udp-port-range", "9-1"}, "9-1"},
		{"reversed port range env", map[string]string{"SFU_UDP": "", "SFU_UDP_PORT_RANGE": "9-1"}, nil, "9-1"},
		{"port range without dash", map[string]string{"SFU_UDP": "", "SFU_UDP_PORT_RANGE": "5000"}, nil, "5000"},
		{"port range from 0", map[string]string{"SFU_UDP": "", "SFU_UDP_PORT_RANGE": "0-10"}, nil, "0-10"},
		{"port range over 65535", map[string]string{"SFU_UDP": "", "SFU_UDP_PORT_RANGE": "60000-70000"}, nil, "60000-70000"},
		{"unknown flag", nil, []string{"-nope"}, "nope"},
		{"stray argument", nil, []string{"serve"}, "serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSFUEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := parseConfig(tt.args)
			if err == nil {
				t.Fatalf("parseConfig accepted it: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestParseConfigPortRangeIgnoredWithUDP: with a UDP mux address the port range is not used, so it is not checked.
func TestParseConfigPortRangeIgnoredWithUDP(t *testing.T) {
	clearSFUEnv(t)
	t.Setenv("SFU_UDP_PORT_RANGE", "9-1")
	c, err := parseConfig([]string{"-secret", "s"})
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if c.UDPAddr != ":7882" {
		t.Errorf("udp %q", c.UDPAddr)
	}
}

// runTokenCmd runs tokenCmd with its output going to a temporary file and returns what it printed.
func runTokenCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "token")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmdErr := tokenCmd(args, f)
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(out), cmdErr
}

func TestTokenCmd(t *testing.T) {
	clearSFUEnv(t)
	out, err := runTokenCmd(t, "-secret", "cli-secret", "-room", "standup", "-identity", "alice", "-name", "  Alice  ",
		"-publish", "-subscribe", "-admin", "-ttl", "2h")
	if err != nil {
		t.Fatalf("tokenCmd: %v", err)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("output %q: want the token on one line", out)
	}
	c, err := signaling.VerifyToken([]byte("cli-secret"), strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if c.Room != "standup" || c.Identity != "alice" || c.Name != "Alice" || !c.Publish || !c.Subscribe || !c.Admin {
		t.Errorf("claims %+v", c)
	}
	if left := time.Until(c.ExpiresAt.Time); left < 2*time.Hour-time.Minute || left > 2*time.Hour+time.Minute {
		t.Errorf("token expires in %v, want 2h", left)
	}
	if _, err := signaling.VerifyToken([]byte("other-secret"), strings.TrimSpace(out)); err == nil {
		t.Error("the token verifies with another secret")
	}

	// Rights default to none; the secret can come from SFU_SECRET.
	t.Setenv("SFU_SECRET", "env-secret")
	out, err = runTokenCmd(t, "-room", "r", "-identity", "bob")
	if err != nil {
		t.Fatalf("tokenCmd with SFU_SECRET: %v", err)
	}
	c, err = signaling.VerifyToken([]byte("env-secret"), strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("the printed token does not verify with SFU_SECRET: %v", err)
	}
	if c.Room != "r" || c.Identity != "bob" || c.Name != "bob" || c.Publish || c.Subscribe || c.Admin {
		t.Errorf("claims %+v, want no rights and the identity as name", c)
	}
}

func TestTokenCmdErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"-room", "r", "-identity", "i"}, "secret"},
		{"no room", []string{"-secret", "s", "-identity", "i"}, "-room"},
		{"no identity", []string{"-secret", "s", "-room", "r"}, "-identity"},
		{"zero ttl", []string{"-secret", "s", "-room", "r", "-identity", "i", "-ttl", "0s"}, "ttl"},
		{"negative ttl", []string{"-secret", "s", "-room", "r", "-identity", "i", "-ttl", "-1h"}, "ttl"},
		{"name too long", []string{"-secret", "s", "-room", "r", "-identity", "i", "-name", strings.Repeat("n", 65)}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSFUEnv(t)
			t.Setenv("SFU_SECRET", "")
			out, err := runTokenCmd(t, tt.args...)
			if err == nil {
				t.Fatalf("tokenCmd succeeded, printing %q", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q on error", out)
			}
		})
	}
}

func TestParseConfigDropPrivateCandidates(t *testing.T) {
	clearSFUEnv(t)
	c, err := parseConfig([]string{"-secret", "s", "-drop-private-candidates"})
	if err != nil || !c.DropPrivate {
		t.Fatalf("-drop-private-candidates: %v, DropPrivate %v", err, c.DropPrivate)
	}
}
