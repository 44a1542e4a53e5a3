package turn

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API's HMAC
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/transport"
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

// TestTURNAuthHandler: the server's check of a username: a minted, unexpired one is its own user ID (the quota
// counts by it) with the key of its password; an expired or malformed one is refused.
func TestTURNAuthHandler(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth := authHandler("secret", zap.NewNop(), func() time.Time { return now })
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	user, pass := Credentials("secret", "alice", now.Add(time.Minute))
	identity, key, ok := auth(&pionturn.RequestAttributes{Username: user, Realm: "edge-sfu", SrcAddr: src})
	if !ok || identity != user {
		t.Fatalf("fresh credentials: user ID %q, ok %v, want %q", identity, ok, user)
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

// TestTURNMediaPeers: permissions go to the node's media IPs only; the relay sockets carry datagrams to and from
// the media address:port pairs only; TCP relays and TCP connections are refused.
func TestTURNMediaPeers(t *testing.T) {
	client := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 4000}
	media := transport.UDPMedia{IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("203.0.113.7")}, PortMin: 7882, PortMax: 7882}
	allow := mediaPeers(media, zap.NewNop())
	for peer, want := range map[string]bool{"127.0.0.1": true, "203.0.113.7": true, "127.0.0.2": false, "10.0.0.1": false,
		"192.0.2.9": false} {
		if got := allow(client, net.ParseIP(peer)); got != want {
			t.Errorf("a permission to %s: %v, want %v", peer, got, want)
		}
	}
	if (transport.UDPMedia{IPs: media.IPs}).Allows(net.IPv4(127, 0, 0, 1), 7882) {
		t.Error("media without ports allow a peer")
	}
	ranged := transport.UDPMedia{IPs: media.IPs, PortMin: 50000, PortMax: 50100}
	for port, want := range map[int]bool{49999: false, 50000: true, 50100: true, 50101: false} {
		if got := ranged.Allows(net.IPv4(127, 0, 0, 1), port); got != want {
			t.Errorf("port %d of a media port range 50000-50100: %v, want %v", port, got, want)
		}
	}

	gen := &mediaRelays{RelayAddressGenerator: &pionturn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1),
		Address: "127.0.0.1"}, log: zap.NewNop()}
	if err := gen.Validate(); err != nil {
		t.Fatal(err)
	}
	mediaSock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mediaSock.Close()
	mediaPort := uint16(mediaSock.LocalAddr().(*net.UDPAddr).Port)
	gen.media = transport.UDPMedia{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PortMin: mediaPort, PortMax: mediaPort}
	relay, _, err := gen.AllocatePacketConn(pionturn.AllocateListenerConfig{Network: "udp4"})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := relay.WriteTo([]byte("x"), other.LocalAddr()); !errors.Is(err, errNotMedia) {
		t.Errorf("a write to another port of a media IP: %v, want errNotMedia", err)
	}
	if _, err := relay.WriteTo([]byte("media"), mediaSock.LocalAddr()); err != nil {
		t.Fatalf("a write to the media socket: %v", err)
	}
	// From the other port first, then from the media socket: the relay passes on the second only.
	_, _ = other.WriteTo([]byte("other"), relay.LocalAddr())
	time.Sleep(50 * time.Millisecond)
	_, _ = mediaSock.WriteTo([]byte("from media"), relay.LocalAddr())
	_ = relay.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	if n, from, err := relay.ReadFrom(buf); err != nil || string(buf[:n]) != "from media" {
		t.Errorf("the relay read %q from %v (%v), want the media socket's datagram only", buf[:n], from, err)
	}

	if _, _, err := gen.AllocateListener(pionturn.AllocateListenerConfig{Network: "tcp4"}); !errors.Is(err, errTCPRelay) {
		t.Errorf("a TCP relay: %v, want errTCPRelay", err)
	}
	if _, err := gen.AllocateConn(pionturn.AllocateConnConfig{Network: "tcp4", RemoteAddr: mediaSock.LocalAddr()}); !errors.Is(err, errTCPRelay) {
		t.Errorf("a TCP connection: %v, want errTCPRelay", err)
	}
}

// TestTURNQuota: a username holds at most max allocations; an ended one frees its place.
func TestTURNQuota(t *testing.T) {
	q := newQuota(2, zap.NewNop())
	ev := q.events()
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
	for i := range 2 {
		if !q.allow("u", "r", src) {
			t.Fatalf("allocation %d refused", i+1)
		}
		ev.OnAllocationCreated(src, src, "UDP", "u", "r", src, 0)
	}
	if q.allow("u", "r", src) {
		t.Error("a third allocation allowed")
	}
	if !q.allow("v", "r", src) {
		t.Error("another username refused")
	}
	ev.OnAllocationDeleted(src, src, "UDP", "u", "r")
	if !q.allow("u", "r", src) {
		t.Error("refused after one ended")
	}
	if newQuota(0, zap.NewNop()).max != DefaultMaxAllocations {
		t.Error("no max: not the default")
	}
}

// loopbackMedia is a media address on 127.0.0.1 at port.
func loopbackMedia(port int) transport.UDPMedia {
	return transport.UDPMedia{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, PortMin: uint16(port), PortMax: uint16(port)}
}

// TestTURNServer: the server allocates a relay for minted credentials, which carries datagrams to and from the
// node's media socket and nothing to a private service on another port of the same address; it refuses a TCP
// relay, an allocation beyond the quota, a wrong password, an expired username, one minted with another secret,
// one not in the REST API form and a tampered expiry; Close ends its allocations.
func TestTURNServer(t *testing.T) {
	secret := Secret("", []byte(tokenSecret))
	media := turntest.Echo(t) // stands in for the SFU's media socket
	s, err := Start(Config{Addr: "127.0.0.1:0", Realm: "edge-sfu", Media: loopbackMedia(media.Addr().(*net.UDPAddr).Port),
		MaxAllocations: 2, Secret: secret})
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
	relay, err := turntest.Allocate(t, s.Addr(), "edge-sfu", user, pass)
	if err != nil {
		t.Fatalf("allocation with minted credentials: %v", err)
	}
	if got := turntest.Exchange(t, relay, media.Addr(), "to the SFU", 2*time.Second); string(got) != "to the SFU" {
		t.Errorf("through the relay to the media socket and back: %q", got)
	}
	private := turntest.Echo(t)
	if got := turntest.Exchange(t, relay, private.Addr(), "elsewhere", time.Second); got != nil || private.Received() != 0 {
		t.Errorf("the relay reached a private service on 127.0.0.1 (%d datagrams) and carried back %q", private.Received(), got)
	}
	if err := turntest.AllocateTCP(t, s.Addr(), "edge-sfu", user, pass); err == nil {
		t.Error("a TCP relay was granted")
	}
	if _, err := turntest.Allocate(t, s.Addr(), "edge-sfu", user, pass); err != nil {
		t.Errorf("a second allocation: %v", err)
	}
	if _, err := turntest.Allocate(t, s.Addr(), "edge-sfu", user, pass); err == nil {
		t.Error("a third allocation with a quota of 2 was granted")
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
		if _, err := turntest.Allocate(t, s.Addr(), "edge-sfu", cred[0], cred[1]); err == nil {
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

// TestTURNStartRefuses: a public address that is not an IP, a relay port range upside down, or media addresses
// without their ports or IPs are refused before any socket opens.
func TestTURNStartRefuses(t *testing.T) {
	for name, cfg := range map[string]Config{
		"public address": {Addr: "127.0.0.1:0", PublicIP: "turn.example.org", Media: loopbackMedia(7882)},
		"port range":     {Addr: "127.0.0.1:0", PortMin: 50000, PortMax: 40000, Media: loopbackMedia(7882)},
		"no media ports": {Addr: "127.0.0.1:0", Media: transport.UDPMedia{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}},
		"no media IPs":   {Addr: "127.0.0.1:0", Media: transport.UDPMedia{PortMin: 7882, PortMax: 7882}},
	} {
		if s, err := Start(cfg); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("%s: started", name)
		} else if !strings.Contains(err.Error(), "TURN") {
			t.Errorf("%s: error %q does not say it is TURN's", name, err)
		}
	}
}
