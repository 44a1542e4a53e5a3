package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API specifies HMAC-SHA1
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// turnSecret is the TURN REST API shared secret: the operator's -turn-secret, else one derived from the token
// secret, HMAC-SHA256(secret, "turn") in hex, so a token secret never leaves the node as it is.
func turnSecret(cfg config, tokenSecret []byte) string {
	if cfg.TURNSecret != "" {
		return cfg.TURNSecret
	}
	m := hmac.New(sha256.New, tokenSecret)
	m.Write([]byte("turn"))
	return hex.EncodeToString(m.Sum(nil))
}

// turnCredentials mints short-lived TURN credentials, TURN REST API style (draft-uberti-behave-turn-rest, as
// coturn's use-auth-secret): username "<unix expiry>:<identity>", password base64(HMAC-SHA1(secret, username)).
func turnCredentials(secret, identity string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + identity
	return username, turnPassword(secret, username)
}

func turnPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// turnAuth checks minted credentials: an unexpired username, and the key derived from its password. A wrong
// password is found out by the server, whose check of the request's integrity fails with the key returned.
func turnAuth(secret string, log *zap.Logger, now func() time.Time) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		expiry, identity, _ := strings.Cut(ra.Username, ":")
		t, err := strconv.ParseInt(expiry, 10, 64)
		if err != nil || now().Unix() > t {
			log.Debug("TURN: refused an expired or malformed username", zap.String("username", ra.Username),
				zap.Stringer("from", ra.SrcAddr))
			return "", nil, false
		}
		return identity, turn.GenerateAuthKey(ra.Username, ra.Realm, turnPassword(secret, ra.Username)), true
	}
}

// turnMinter gives each joining participant credentials for the TURN URLs: the built-in server's and any
// external one's (-turn-urls).
type turnMinter struct {
	secret string
	urls   []string
	ttl    time.Duration
	now    func() time.Time
}

// iceServers returns the TURN server entry of identity's joined message; none when there are no TURN URLs.
func (m *turnMinter) iceServers(identity string) []webrtc.ICEServer {
	if m == nil || len(m.urls) == 0 {
		return nil
	}
	user, pass := turnCredentials(m.secret, identity, m.now().Add(m.ttl))
	return []webrtc.ICEServer{{URLs: m.urls, Username: user, Credential: pass, CredentialType: webrtc.ICECredentialTypePassword}}
}

// turnServer is the built-in TURN server (pion/turn) on one UDP socket.
type turnServer struct {
	srv  *turn.Server
	conn *watchedConn
	url  string // turn:HOST:PORT?transport=udp as clients are told
	addr net.Addr
}

// startTURN opens the TURN socket and serves it. Relays are bound on the -turn host (every interface when it
// has none) and advertised at the TURN public address.
func startTURN(cfg config, secret string, log *zap.Logger) (*turnServer, error) {
	public := cfg.TURNPublicIP
	host, _, _ := net.SplitHostPort(cfg.TURNAddr)
	switch {
	case public != "":
	case len(cfg.PublicIPs) > 0:
		public = cfg.PublicIPs[0]
	case net.ParseIP(host) != nil && !net.ParseIP(host).IsUnspecified():
		public = host
	default:
		public = "127.0.0.1"
		log.Warn("TURN: no -turn-public-ip or -public-ip, so relays are advertised on 127.0.0.1: only clients on this machine can use them")
	}
	relayIP := net.ParseIP(public)
	if relayIP == nil {
		return nil, fmt.Errorf("TURN public address %q is not an IP address", public)
	}
	bind := "0.0.0.0"
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		bind = host
	}
	var relays turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind}
	if cfg.TURNPortRange != "" {
		lo, hi, err := transport.ParsePortRange(cfg.TURNPortRange)
		if err != nil {
			return nil, fmt.Errorf("-turn-relay-port-range: %w", err)
		}
		relays = &turn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: bind, MinPort: lo, MaxPort: hi}
	}

	network := "udp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		network = "udp6"
	}
	pc, err := net.ListenPacket(network, cfg.TURNAddr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s (TURN): %w", cfg.TURNAddr, err)
	}
	conn := &watchedConn{PacketConn: pc, done: make(chan struct{})}
	lf := pionLoggers(log)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.TURNRealm,
		AuthHandler:   turnAuth(secret, log, time.Now),
		LoggerFactory: lf,
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: conn, RelayAddressGenerator: relays,
			PermissionHandler: mediaPeers(cfg, log)}},
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("TURN server: %w", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	t := &turnServer{srv: srv, conn: conn, addr: pc.LocalAddr(),
		url: "turn:" + net.JoinHostPort(public, strconv.Itoa(port)) + "?transport=udp"}
	log.Info("TURN server", zap.Stringer("addr", t.addr), zap.String("url", t.url), zap.String("realm", cfg.TURNRealm))
	return t, nil
}

// mediaPeers lets relays reach this node's own media addresses only (its -public-ip and -ice-ip addresses, or
// every local address when -ice-ip is not given): the server is there to reach the SFU, not to relay to anyone
// else, the node's network included.
func mediaPeers(cfg config, log *zap.Logger) turn.PermissionHandler {
	var allowed []net.IP
	for _, s := range append(append([]string{}, cfg.PublicIPs...), cfg.ICEIPs...) {
		if ip := net.ParseIP(s); ip != nil {
			allowed = append(allowed, ip)
		}
	}
	if len(cfg.ICEIPs) == 0 {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			log.Warn("TURN: local addresses", zap.Error(err))
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				allowed = append(allowed, n.IP)
			}
		}
	}
	return func(client net.Addr, peer net.IP) bool {
		for _, ip := range allowed {
			if ip.Equal(peer) {
				return true
			}
		}
		log.Debug("TURN: refused a permission to a peer that is not this node", zap.Stringer("client", client),
			zap.Stringer("peer", peer))
		return false
	}
}

// close stops the server: its socket and every allocation's relay. It waits, within ctx, for the server's read
// loop to end and the allocations to be gone.
func (t *turnServer) close(ctx context.Context) error {
	err := t.srv.Close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.conn.done:
			if t.srv.AllocationCount() == 0 {
				return err
			}
		default:
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("TURN server: %w", ctx.Err()))
		case <-tick.C:
		}
	}
}

// watchedConn is the TURN server's socket; done closes once a read fails after Close, which ends the server's
// read loop.
type watchedConn struct {
	net.PacketConn
	closed   sync.Once
	isClosed bool
	mu       sync.Mutex
	done     chan struct{}
}

func (c *watchedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err != nil {
		c.mu.Lock()
		closed := c.isClosed
		c.mu.Unlock()
		if closed {
			c.closed.Do(func() { close(c.done) })
		}
	}
	return n, addr, err
}

func (c *watchedConn) Close() error {
	c.mu.Lock()
	c.isClosed = true
	c.mu.Unlock()
	return c.PacketConn.Close()
}

// pionLoggers sends pion's warnings and errors to the node's log.
func pionLoggers(log *zap.Logger) logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	if w := zap.NewStdLog(log.Named("pion")).Writer(); w != nil {
		lf.Writer = w
	}
	return lf
}
