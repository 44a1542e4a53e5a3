package turn

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API's HMAC
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/turn/turntest"
)

const tokenSecret = "test-secret-0123456789"

// TestTURNCredentials: minted credentials are TURN REST API ones, "<expiry>:<identity>" and
// base64(HMAC-SHA1(secret, username)), with the secret derived from the token secret unless one is configured.
func TestTURNCredentials(t *testing.T) {
	m := &Minter{Secret: Secret("", []byte(tokenSecret)), URLs: []string{"turn:192.0.2.1:3478?transport=udp"},
		TTL: time.Hour, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	ice := m.ICEServers("alice:smith")
	if len(ice) != 1 || len(ice[0].URLs) != 1 || ice[0].URLs[0] != "turn:192.0.2.1:3478?transport=udp" {
		t.Fatalf("ICE servers %+v", ice)
	}
	if ice[0].Username != "1800003600:alice:smith" {
		t.Errorf("username %q, want expiry:identity", ice[0].Username)
	}
	mac := hmac.New(sha1.New, []byte(m.Secret))
	mac.Write([]byte(ice[0].Username))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); ice[0].Credential != want {
		t.Errorf("credential %v, want %s", ice[0].Credential, want)
	}
	if m.Secret == tokenSecret || m.Secret == Secret("", []byte("another secret")) {
		t.Error("the TURN secret should be derived from, and differ with, the token secret")
	}
	if s := Secret("coturn-static-auth-secret", []byte(tokenSecret)); s != "coturn-static-auth-secret" {
		t.Errorf("the configured secret is ignored: %q", s)
	}
	if got := (*Minter)(nil).ICEServers("x"); got != nil {
		t.Errorf("no TURN: %v", got)
	}
	if got := (&Minter{Secret: "s"}).ICEServers("x"); got != nil {
		t.Errorf("no TURN URLs: %v", got)
	}
	noTTL := &Minter{Secret: "s", URLs: []string{"turn:192.0.2.1:3478"}, Now: m.Now}
	if u := noTTL.ICEServers("bob")[0].Username; u != strconv.FormatInt(1_800_000_000+int64(DefaultTTL/time.Second), 10)+":bob" {
		t.Errorf("username %q without a TTL, want one that expires after DefaultTTL", u)
	}
}

// TestTURNAuthHandler: the server's check of a username: a minted, unexpired one gives its identity and the key of
// its password; an expired or malformed one is refused.
func TestTURNAuthHandler(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth := authHandler("secret", zap.NewNop(), func() time.Time { return now })
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	user, pass := Credentials("secret", "alice", now.Add(time.Minute))
	identity, key, ok := auth(&pionturn.RequestAttributes{Username: user, Realm: "edge-sfu", SrcAddr: src})
	if !ok || identity != "alice" {
		t.Fatalf("fresh credentials: identity %q, ok %v", identity, ok)
	}
	if want := pionturn.GenerateAuthKey(user, "edge-sfu", pass); string(key) != string(want) {
		t.Error("the key is not the one derived from the minted password")
	}
	expired, _ := Credentials("secret", "alice", now.Add(-time.Second))
	for name, u := range map[string]string{"expired": expired, "no expiry": "alice", "bad expiry": "soon:alice", "empty": ""} {
		if _, _, ok := auth(&pionturn.RequestAttributes{Username: u, Realm: "edge-sfu", SrcAddr: src}); ok {
			t.Errorf("%s username %q accepted", name, u)
		}
	}
}

// TestTURNMediaPeers: relays may reach the node's public and ICE addresses only; with no ICE address, any address
// of this machine.
func TestTURNMediaPeers(t *testing.T) {
	client := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 4000}
	allow := mediaPeers([]string{"203.0.113.7"}, []string{"127.0.0.1"}, zap.NewNop())
	for peer, want := range map[string]bool{"127.0.0.1": true, "203.0.113.7": true, "127.0.0.2": false, "10.0.0.1": false,
		"192.0.2.9": false} {
		if got := allow(client, net.ParseIP(peer)); got != want {
			t.Errorf("a permission to %s: %v, want %v", peer, got, want)
		}
	}
	local := mediaPeers(nil, nil, zap.NewNop())
	if !local(client, net.IPv4(127, 0, 0, 1)) {
		t.Error("with no ICE address, a permission to this machine's loopback address is refused")
	}
	if local(client, net.ParseIP("198.51.100.1")) {
		t.Error("with no ICE address, a permission to an address that is not this machine's is granted")
	}
}

// TestTURNServer: the server allocates a relay for minted credentials, which relays to the node's address only; it
// refuses a wrong password, an expired username, one minted with another secret, one not in the REST API form
// and a tampered expiry; Close ends its allocations.
func TestTURNServer(t *testing.T) {
	secret := Secret("", []byte(tokenSecret))
	s, err := Start(Config{Addr: "127.0.0.1:0", Realm: "edge-sfu", ICEIPs: []string{"127.0.0.1"}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close(context.Background())
		}
	})
	port := s.Addr().(*net.UDPAddr).Port
	if want := "turn:127.0.0.1:" + strconv.Itoa(port) + "?transport=udp"; s.URL() != want {
		t.Fatalf("URL %q, want %q", s.URL(), want)
	}
	ice := (&Minter{Secret: secret, URLs: []string{s.URL()}, TTL: time.Hour}).ICEServers("alice")
	user, pass := ice[0].Username, ice[0].Credential.(string)
	if err := turntest.Allocate(t, s.Addr(), "edge-sfu", user, pass); err != nil {
		t.Fatalf("allocation with minted credentials: %v", err)
	}

	expiredUser, expiredPass := Credentials(secret, "alice", time.Now().Add(-time.Minute))
	otherUser, otherPass := Credentials("another secret", "alice", time.Now().Add(time.Hour))
	for name, cred := range map[string][2]string{
		"wrong password":  {user, "d3JvbmcgcGFzc3dvcmQ="},
		"expired":         {expiredUser, expiredPass},
		"other secret":    {otherUser, otherPass},
		"not REST API":    {"alice", pass},
		"tampered expiry": {strconv.FormatInt(time.Now().Add(48*time.Hour).Unix(), 10) + ":alice", pass},
	} {
		if err := turntest.Allocate(t, s.Addr(), "edge-sfu", cred[0], cred[1]); err == nil {
			t.Errorf("%s: allocation succeeded", name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed = true
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := s.AllocationCount(); n != 0 {
		t.Errorf("%d allocations after Close", n)
	}
}

// TestTURNStartRefuses: a public address that is not an IP, or a relay port range upside down, is refused before
// any socket opens.
func TestTURNStartRefuses(t *testing.T) {
	for name, cfg := range map[string]Config{
		"public address": {Addr: "127.0.0.1:0", PublicIP: "turn.example.org"},
		"port range":     {Addr: "127.0.0.1:0", PortMin: 50000, PortMax: 40000},
	} {
		if s, err := Start(cfg); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("%s: started", name)
		} else if !strings.Contains(err.Error(), "TURN") {
			t.Errorf("%s: error %q does not say it is TURN's", name, err)
		}
	}
}
