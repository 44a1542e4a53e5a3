package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

// writeConfig writes a -config file into a new folder and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sfu.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigFilePrecedence: a value in the file applies when neither a flag nor a variable gives one; a variable
// beats the file, and a flag beats both. SFU_CONFIG names the file as -config does.
func TestConfigFilePrecedence(t *testing.T) {
	clearSFUEnv(t)
	path := writeConfig(t, `
# a comment
addr: 127.0.0.1:9001
udp: 127.0.0.1:9101
log-level: warn
secret: file-secret
max-participants: 7
metrics-detail: true
public-ip: [203.0.113.7, 198.51.100.2]
sfu-latency-budget: 8ms
`)
	c, err := parseConfig([]string{"-config", path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9001" || c.UDPAddr != "127.0.0.1:9101" || c.LogLevel != zapcore.WarnLevel || c.Secret != "file-secret" ||
		c.MaxParticipants != 7 || !c.MetricsDetail || !reflect.DeepEqual(c.PublicIPs, []string{"203.0.113.7", "198.51.100.2"}) ||
		c.SFUBudget.String() != "8ms" || c.TCPAddr != ":7881" {
		t.Errorf("from the file: %+v", c)
	}

	t.Setenv("SFU_ADDR", "127.0.0.1:9002")
	t.Setenv("SFU_UDP", "127.0.0.1:9102")
	t.Setenv("SFU_LOG_LEVEL", "error")
	if c, err = parseConfig([]string{"-config", path}); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9002" || c.UDPAddr != "127.0.0.1:9102" || c.LogLevel != zapcore.ErrorLevel || c.Secret != "file-secret" {
		t.Errorf("the environment should beat the file: addr %q udp %q level %v secret %q", c.Addr, c.UDPAddr, c.LogLevel, c.Secret)
	}

	t.Setenv("SFU_CONFIG", path)
	if c, err = parseConfig([]string{"-addr", "127.0.0.1:9003", "-log-level", "debug", "-max-participants", "9"}); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9003" || c.UDPAddr != "127.0.0.1:9102" || c.LogLevel != zapcore.DebugLevel || c.MaxParticipants != 9 ||
		c.Secret != "file-secret" || c.ConfigFile != path {
		t.Errorf("a flag should beat the environment and the file (file from SFU_CONFIG): addr %q udp %q level %v max %d secret %q file %q",
			c.Addr, c.UDPAddr, c.LogLevel, c.MaxParticipants, c.Secret, c.ConfigFile)
	}
}

// TestConfigFileDev: -dev in the file is a development node, and an address the file gives is not replaced by
// -dev's loopback default.
func TestConfigFileDev(t *testing.T) {
	clearSFUEnv(t)
	c, err := parseConfig([]string{"-config", writeConfig(t, "dev: true\naddr: 127.0.0.2:8080\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Dev || c.Addr != "127.0.0.2:8080" || c.UDPAddr != "127.0.0.1:7882" {
		t.Errorf("dev %v addr %q udp %q, want a dev node on the file's address, the rest on loopback", c.Dev, c.Addr, c.UDPAddr)
	}
}

// TestConfigFileErrors: an unknown key, a bad value, a missing file: each refused with the file and the key named.
func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // substrings of the error
	}{
		{"unknown key", "secret: s\nudp-port-rnage: 50000-50100\n", []string{"udp-port-rnage", "unknown", "line 2"}},
		{"a file naming a file", "secret: s\nconfig: other.yaml\n", []string{"config", "another"}},
		{"bad number", "secret: s\nmax-participants: lots\n", []string{"max-participants", "lots", "line 2"}},
		{"bad duration", "secret: s\nturn-ttl: forever\n", []string{"turn-ttl", "forever"}},
		{"a list for a number", "secret: s\nmax-participants: [1, 2]\n", []string{"max-participants", "list"}},
		{"a mapping for a flag", "secret: s\naddr: {host: x}\n", []string{"addr"}},
		{"a key twice", "secret: s\naddr: :1\naddr: :2\n", []string{"addr", "twice"}},
		{"not a mapping", "- addr\n", []string{"mapping"}},
		{"not yaml", "addr: [\n", []string{"sfu.yaml"}},
		{"room settings twice", "secret: s\nroom-config: rooms.json\nrooms:\n  a: {e2ee: true}\n", []string{"room-config", "rooms"}},
		{"bad room settings", "secret: s\nrooms:\n  a: {max_participants: -1}\n", []string{"max_participants"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearSFUEnv(t)
			path := writeConfig(t, tt.text)
			c, err := parseConfig([]string{"-config", path})
			if err == nil {
				t.Fatalf("parseConfig accepted it: %+v", c)
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	clearSFUEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := parseConfig([]string{"-config", missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing config file: %v, want an error naming it", err)
	}
}

// TestConfigFileRelativePaths: a relative path in the file is relative to the file's folder, wherever the node is
// started from; on the command line it stays as given (the shell's working directory).
func TestConfigFileRelativePaths(t *testing.T) {
	clearSFUEnv(t)
	path := writeConfig(t, `
secret: s
audit-dir: audit
rnnoise-dir: ../rnnoise
room-config: rooms.json
tls-cert: /etc/ssl/node.pem
tls-key: node.key
captions-grammar: ""
`)
	dir := filepath.Dir(path)
	c, err := parseConfig([]string{"-config", path})
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditDir != filepath.Join(dir, "audit") || c.RNNoiseDir != filepath.Join(filepath.Dir(dir), "rnnoise") ||
		c.RoomConfig != filepath.Join(dir, "rooms.json") || c.TLSCert != "/etc/ssl/node.pem" || c.TLSKey != filepath.Join(dir, "node.key") ||
		c.CaptionsGrammar != "" {
		t.Errorf("paths from %s: audit %q rnnoise %q rooms %q cert %q key %q grammar %q", path, c.AuditDir, c.RNNoiseDir, c.RoomConfig,
			c.TLSCert, c.TLSKey, c.CaptionsGrammar)
	}
	if c, err = parseConfig([]string{"-config", path, "-audit-dir", "here/audit"}); err != nil || c.AuditDir != "here/audit" {
		t.Errorf("-audit-dir on the command line: %q %v, want it as given", c.AuditDir, err)
	}
	// The file may be named by a relative path: its folder is still where its paths start.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil {
		t.Skip("no relative path to the temporary folder:", err)
	}
	if c, err = parseConfig([]string{"-config", rel}); err != nil || c.AuditDir != filepath.Join(dir, "audit") {
		t.Errorf("-config %s: audit %q %v, want %q", rel, c.AuditDir, err, filepath.Join(dir, "audit"))
	}
}

// TestConfigFileRooms: room settings can live in the file, as in a -room-config file (beside an empty room-config,
// as in the sample); -room-config on the command line replaces them.
func TestConfigFileRooms(t *testing.T) {
	clearSFUEnv(t)
	path := writeConfig(t, `
secret: s
room-config: ""
room-defaults:
  denoise: false
  max_audio_streams: 5
rooms:
  town-hall:
    max_participants: 1000
    e2ee: false
  secret-plans:
    e2ee: true
`)
	c, err := parseConfig([]string{"-config", path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Rooms == nil {
		t.Fatal("no room settings from the file")
	}
	th, sp, other := c.Rooms.settings("town-hall"), c.Rooms.settings("secret-plans"), c.Rooms.settings("standup")
	if th.MaxParticipants == nil || *th.MaxParticipants != 1000 || th.E2EE || !sp.E2EE || sp.MaxParticipants != nil ||
		other.MaxAudioStreams == nil || *other.MaxAudioStreams != 5 {
		t.Errorf("room settings: town-hall %+v, secret-plans %+v, others %+v", th, sp, other)
	}
	var denoise struct {
		Denoise *bool `json:"denoise"`
	}
	if err := other.Decode(&denoise); err != nil || denoise.Denoise == nil || *denoise.Denoise {
		t.Errorf("a worker's key in room-defaults: %+v %v, want denoise false", denoise, err)
	}

	rc := filepath.Join(t.TempDir(), "rooms.json")
	if err := os.WriteFile(rc, []byte(`{"rooms": {"x": {"e2ee": true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = parseConfig([]string{"-config", path, "-room-config", rc}); err != nil || c.Rooms != nil || c.RoomConfig != rc {
		t.Errorf("-room-config beside a file with rooms: rooms %v room-config %q %v, want the flag's file only", c.Rooms, c.RoomConfig, err)
	}
}

// repeated is a flag that may be given several times, each adding a value.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// TestConfigFileLists: a YAML list gives a repeatable flag each of its items, and a comma-separated flag its items
// joined by commas.
func TestConfigFileLists(t *testing.T) {
	var hooks repeated
	var ips string
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.Var(&hooks, "webhook-url", "repeatable")
	fs.StringVar(&ips, "public-ip", "", "comma-separated")
	fs.String("config", "", "the file")
	path := writeConfig(t, "webhook-url:\n  - https://a.example/hook\n  - https://b.example/hook\npublic-ip: [192.0.2.1, 192.0.2.2]\n")
	if _, _, err := layerConfig(fs, []string{"-config", path}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(hooks), []string{"https://a.example/hook", "https://b.example/hook"}) || ips != "192.0.2.1,192.0.2.2" {
		t.Errorf("webhook-url %q public-ip %q", hooks, ips)
	}
	hooks, ips = nil, ""
	if _, _, err := layerConfig(fs, []string{"-config", path, "-webhook-url", "https://c.example/hook"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(hooks), []string{"https://c.example/hook"}) {
		t.Errorf("-webhook-url on the command line and a list in the file: %q, want the command line's only", hooks)
	}
}
