package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/gorilla/websocket"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to dir, and returns the files and a
// pool that trusts the certificate.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// wsJoin opens the signaling WebSocket at wsURL with dialer, sends join with tok and returns the first answer.
func wsJoin(t *testing.T, dialer *websocket.Dialer, wsURL, tok string) client.Message {
	t.Helper()
	conn, resp, err := dialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	_ = resp.Body.Close()
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteJSON(map[string]string{"type": "join", "token": tok}); err != nil {
		t.Fatal(err)
	}
	var m client.Message
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatalf("read joined: %v", err)
	}
	return m
}

// TestTLSNode: with -tls-cert and -tls-key the node serves HTTPS and wss:// on -addr, and plain HTTP there
// fails.
func TestTLSNode(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir(), "sfu")
	n := startTestNode(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	base := "https://" + n.addr.String()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" || resp.TLS == nil {
		t.Fatalf("GET /healthz: %s %q (TLS %v)", resp.Status, body, resp.TLS != nil)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/healthz"); err == nil {
		t.Error("a client that does not trust the certificate got through")
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.addr.String() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP is served on a TLS address")
		}
	}

	wss := client.WSURL(base)
	if !strings.HasPrefix(wss, "wss://") {
		t.Fatalf("WSURL(%q) = %q", base, wss)
	}
	m := wsJoin(t, &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 10 * time.Second},
		wss, token(t, "secure", "alice", true, true))
	if m.Type != "joined" || m.Room != "secure" || m.You == nil || m.You.Identity != "alice" {
		t.Fatalf("join over wss: %+v", m)
	}
}

// TestTLSCertificateReload: a renewed certificate written over the files is served from the next handshake
// on, without a restart; a broken renewal keeps the previous one.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool1 := selfSigned(t, dir, "first")
	n := startTestNode(t, func(c *config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	get := func(pool *x509.CertPool) error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get("https://" + n.addr.String() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(pool1); err != nil {
		t.Fatal(err)
	}
	newCert, newKey, pool2 := selfSigned(t, dir, "second")
	time.Sleep(10 * time.Millisecond) // a later modification time on coarse clocks
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := get(pool2); err != nil {
		t.Fatalf("the renewed certificate is not served: %v", err)
	}
	if err := get(pool1); err == nil {
		t.Error("the old certificate is still served")
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := get(pool2); err != nil {
		t.Fatalf("a broken renewal dropped the working certificate: %v", err)
	}
}

// TestOriginAllowList: the WebSocket takes no Origin (non-browser clients) and the node's own origin by
// default, refuses others with 403 and a reason, and takes those of -allowed-origins, or any with "*".
func TestOriginAllowList(t *testing.T) {
	dial := func(n *node, origin string) (int, string) {
		t.Helper()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, resp, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).Dial(client.WSURL(n.baseURL()), h)
		if err == nil {
			conn.Close()
			return resp.StatusCode, ""
		}
		if resp == nil {
			t.Fatalf("dial with Origin %q: %v", origin, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	const upgraded = http.StatusSwitchingProtocols

	def := startTestNode(t)
	for origin, want := range map[string]int{
		"":                                  upgraded,
		"http://" + def.addr.String():       upgraded,
		"http://evil.example":               http.StatusForbidden,
		"https://meet.example.org":          http.StatusForbidden,
		"null":                              http.StatusForbidden,
		"http://" + def.addr.String() + "x": http.StatusForbidden,
	} {
		code, body := dial(def, origin)
		if code != want {
			t.Errorf("default: Origin %q: %d %q, want %d", origin, code, body, want)
		}
		if code == http.StatusForbidden && (!strings.Contains(body, "origin") || !strings.Contains(body, origin)) {
			t.Errorf("default: Origin %q refused without a clear reason: %q", origin, body)
		}
	}
	if m := wsJoin(t, &websocket.Dialer{}, client.WSURL(def.baseURL()), token(t, "r", "cli", true, true)); m.Type != "joined" {
		t.Errorf("a client without Origin could not join: %+v", m)
	}

	listed := startTestNode(t, func(c *config) {
		c.AllowedOrigins = []string{"https://meet.example.org", "HTTPS://Other.Example.org:443/"}
	})
	for origin, want := range map[string]int{
		"":                                  upgraded,
		"http://" + listed.addr.String():    upgraded,
		"https://meet.example.org":          upgraded,
		"https://other.example.org":         upgraded,
		"http://meet.example.org":           http.StatusForbidden, // another scheme is another origin
		"https://meet.example.org:8443":     http.StatusForbidden,
		"https://evil.example":              http.StatusForbidden,
		"https://meet.example.org.evil.com": http.StatusForbidden,
	} {
		if code, body := dial(listed, origin); code != want {
			t.Errorf("allow-list: Origin %q: %d %q, want %d", origin, code, body, want)
		}
	}

	anyNode := startTestNode(t, func(c *config) { c.AllowedOrigins = []string{"*"} })
	for _, origin := range []string{"", "https://evil.example", "null"} {
		if code, body := dial(anyNode, origin); code != upgraded {
			t.Errorf("*: Origin %q: %d %q", origin, code, body)
		}
	}
}

// securityEnv are the environment variables of the TLS, origin, ICE-TCP and TURN flags.
var securityEnv = []string{"SFU_TLS_CERT", "SFU_TLS_KEY", "SFU_ALLOWED_ORIGINS", "SFU_TCP", "SFU_TURN", "SFU_TURN_REALM",
	"SFU_TURN_PUBLIC_IP", "SFU_TURN_RELAY_PORT_RANGE", "SFU_TURN_SECRET", "SFU_TURN_URLS", "SFU_TURN_TTL"}

func clearSecurityEnv(t *testing.T) {
	t.Helper()
	clearSFUEnv(t)
	for _, k := range securityEnv {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfigSecurity: the defaults (ICE-TCP on :7881, no TLS, no TURN) and the flags and variables that change
// them.
func TestConfigSecurity(t *testing.T) {
	clearSecurityEnv(t)
	c, err := parseConfig([]string{"-secret", "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSCert != "" || c.TLSKey != "" || c.AllowedOrigins != nil || c.TCPAddr != ":7881" || c.TURNAddr != "" ||
		c.TURNRealm != "edge-sfu" || c.TURNPublicIP != "" || c.TURNPortRange != "" || c.TURNSecret != "" ||
		c.TURNURLs != nil || c.TURNCredential != 12*time.Hour {
		t.Errorf("defaults: %+v", c)
	}

	t.Setenv("SFU_TLS_CERT", "/etc/sfu/cert.pem")
	t.Setenv("SFU_TLS_KEY", "/etc/sfu/key.pem")
	t.Setenv("SFU_ALLOWED_ORIGINS", "https://meet.example.org, https://www.example.org")
	t.Setenv("SFU_TCP", "")
	t.Setenv("SFU_TURN", ":3478")
	t.Setenv("SFU_TURN_REALM", "example.org")
	t.Setenv("SFU_TURN_PUBLIC_IP", "203.0.113.7")
	t.Setenv("SFU_TURN_RELAY_PORT_RANGE", "40000-40999")
	t.Setenv("SFU_TURN_TTL", "2h")
	c, err = parseConfig([]string{"-secret", "s", "-tcp", "10.0.0.5:443", "-turn-urls", "turns:turn.example.org:5349", "-turn-secret", "s"})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{c.TLSCert, c.TLSKey, c.AllowedOrigins, c.TCPAddr, c.TURNAddr, c.TURNRealm, c.TURNPublicIP, c.TURNPortRange,
		c.TURNURLs, c.TURNSecret, c.TURNCredential}
	want := []any{"/etc/sfu/cert.pem", "/etc/sfu/key.pem", []string{"https://meet.example.org", "https://www.example.org"},
		"10.0.0.5:443", ":3478", "example.org", "203.0.113.7", "40000-40999", []string{"turns:turn.example.org:5349"}, "s",
		2 * time.Hour}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("from flags and environment:\n got %v\nwant %v", got, want)
	}
}

func TestConfigSecurityErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"-tls-cert", "c.pem"}, "-tls-key"},
		{"key without cert", []string{"-tls-key", "k.pem"}, "-tls-cert"},
		{"origin with a path", []string{"-allowed-origins", "https://meet.example.org/room"}, "meet.example.org/room"},
		{"origin without scheme", []string{"-allowed-origins", "meet.example.org"}, "meet.example.org"},
		{"tcp without port", []string{"-tcp", "7881"}, "-tcp"},
		{"turn without port", []string{"-turn", "3478"}, "-turn"},
		{"turn public ip", []string{"-turn", ":3478", "-turn-public-ip", "turn.example.org"}, "turn.example.org"},
		{"turn relay ports", []string{"-turn", ":3478", "-turn-relay-port-range", "9-1"}, "9-1"},
		{"turn urls not turn", []string{"-turn-urls", "stun:x:3478", "-turn-secret", "s"}, "stun:x:3478"},
		{"turn urls without secret", []string{"-turn-urls", "turn:x:3478"}, "-turn-secret"},
		{"turn ttl", []string{"-turn", ":3478", "-turn-ttl", "0s"}, "-turn-ttl"},
		{"turn without media ports", []string{"-turn", ":3478", "-udp", ""}, "-udp-port-range"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearSecurityEnv(t)
			c, err := parseConfig(tt.args)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}
