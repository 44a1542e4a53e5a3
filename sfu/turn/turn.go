// Package turn is the node's TURN side: short-lived credentials minted for each participant (TURN REST API
// style, as coturn's use-auth-secret checks them) and the built-in TURN server (pion/turn) on one UDP socket,
// which relays UDP to this node's own media address:port pairs only (peers.go), offers no TCP relays, and holds
// at most a few allocations per username (quota.go).
package turn

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
	pionturn "github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// DefaultTTL is how long minted credentials last when Minter.TTL is not set.
const DefaultTTL = 12 * time.Hour

// Secret is the TURN REST API shared secret: the operator's configured one, else one derived from the token
// secret, HMAC-SHA256(tokenSecret, "turn") in hex, so a token secret never leaves the node as it is.
func Secret(configured string, tokenSecret []byte) string {
	if configured != "" {
		return configured
	}
	m := hmac.New(sha256.New, tokenSecret)
	m.Write([]byte("turn"))
	return hex.EncodeToString(m.Sum(nil))
}

// Credentials mints short-lived TURN credentials, TURN REST API style (draft-uberti-behave-turn-rest, as
// coturn's use-auth-secret): username "<unix expiry>:<identity>", password base64(HMAC-SHA1(secret, username)).
func Credentials(secret, identity string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + identity
	return username, passwordFor(secret, username)
}

func passwordFor(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// authHandler checks minted credentials: an unexpired username, and the key derived from its password. A wrong
// password is found out by the server, whose check of the request's integrity fails with the key returned. The
// user ID it gives pion/turn is the whole username, which the quota counts by.
func authHandler(secret string, log *zap.Logger, now func() time.Time) pionturn.AuthHandler {
	return func(ra *pionturn.RequestAttributes) (string, []byte, bool) {
		expiry, _, _ := strings.Cut(ra.Username, ":")
		t, err := strconv.ParseInt(expiry, 10, 64)
		if err != nil || now().Unix() > t {
			log.Debug("TURN: refused an expired or malformed username", zap.String("username", ra.Username),
				zap.Stringer("from", ra.SrcAddr))
			return "", nil, false
		}
		return ra.Username, pionturn.GenerateAuthKey(ra.Username, ra.Realm, passwordFor(secret, ra.Username)), true
	}
}

// Minter gives each joining participant credentials for the TURN URLs: the built-in server's and any external
// one's.
type Minter struct {
	Secret string
	URLs   []string
	TTL    time.Duration    // lifetime of minted credentials; 0: DefaultTTL
	Now    func() time.Time // nil: time.Now
}

// ICEServers returns the TURN server entry of identity's joined message; none when there are no TURN URLs.
func (m *Minter) ICEServers(identity string) []webrtc.ICEServer {
	return m.ICEServersUntil(identity, time.Time{})
}

// ICEServersUntil is ICEServers with credentials that expire by notAfter at the latest (the participant's token's
// end: they never outlive it); a zero notAfter is no limit.
func (m *Minter) ICEServersUntil(identity string, notAfter time.Time) []webrtc.ICEServer {
	if m == nil || len(m.URLs) == 0 {
		return nil
	}
	now, ttl := time.Now, m.TTL
	if m.Now != nil {
		now = m.Now
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	expires := now().Add(ttl)
	if !notAfter.IsZero() && notAfter.Before(expires) {
		expires = notAfter
	}
	user, pass := Credentials(m.Secret, identity, expires)
	return []webrtc.ICEServer{{URLs: m.URLs, Username: user, Credential: pass, CredentialType: webrtc.ICECredentialTypePassword}}
}

// Config configures the built-in TURN server.
type Config struct {
	Addr  string // the UDP address it listens on, e.g. ":3478"
	Realm string
	// PublicIP is the address it advertises for itself and its relays; "": the first of PublicIPs, else the Addr
	// host, else 127.0.0.1.
	PublicIP string
	// PublicIPs are the node's -public-ip addresses, for PublicIP's default.
	PublicIPs []string
	// Media is where the node takes media over UDP (sfu.SFU.UDPMedia): the only address:port pairs relays send
	// to and pass datagrams on from. Start refuses a Media without its ports.
	Media transport.UDPMedia
	// PortMin and PortMax bound the relay ports; 0: any free port.
	PortMin, PortMax uint16
	// MaxAllocations bounds the relays one username holds at once; 0: DefaultMaxAllocations.
	MaxAllocations int
	Secret         string // the TURN REST API secret credentials are minted with
	Logger         *zap.Logger
}

// Server is the built-in TURN server on one UDP socket.
type Server struct {
	srv  *pionturn.Server
	conn *watchedConn
	url  string
	addr net.Addr
}

// URL is the server's URL as clients are told: turn:HOST:PORT?transport=udp.
func (s *Server) URL() string { return s.url }

// Addr is the server's local UDP address.
func (s *Server) Addr() net.Addr { return s.addr }

// AllocationCount is how many relays the server holds.
func (s *Server) AllocationCount() int { return s.srv.AllocationCount() }

// Start opens the TURN socket and serves it. Relays are bound on the Addr host (every interface when it has
// none) and advertised at the public address; they carry UDP to and from cfg.Media only.
func Start(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if len(cfg.Media.IPs) == 0 || cfg.Media.PortMin == 0 || cfg.Media.PortMax < cfg.Media.PortMin {
		return nil, fmt.Errorf("TURN: the media addresses are not known (IPs %v, ports %d-%d): relays would have nowhere to go, or anywhere",
			cfg.Media.IPs, cfg.Media.PortMin, cfg.Media.PortMax)
	}
	public := cfg.PublicIP
	host, _, _ := net.SplitHostPort(cfg.Addr)
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
	var relays pionturn.RelayAddressGenerator = &pionturn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: bind}
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if cfg.PortMin == 0 || cfg.PortMax < cfg.PortMin {
			return nil, fmt.Errorf("TURN relay ports %d-%d: want 0 < MIN <= MAX", cfg.PortMin, cfg.PortMax)
		}
		relays = &pionturn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: bind, MinPort: cfg.PortMin, MaxPort: cfg.PortMax}
	}

	relays = &mediaRelays{RelayAddressGenerator: relays, media: cfg.Media, log: log}
	q := newQuota(cfg.MaxAllocations, log)

	network := "udp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		network = "udp6"
	}
	pc, err := net.ListenPacket(network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s (TURN): %w", cfg.Addr, err)
	}
	conn := &watchedConn{PacketConn: pc, done: make(chan struct{})}
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   authHandler(cfg.Secret, log, time.Now),
		QuotaHandler:  q.allow,
		EventHandler:  q.events(),
		LoggerFactory: transport.Logger(log),
		PacketConnConfigs: []pionturn.PacketConnConfig{{PacketConn: conn, RelayAddressGenerator: relays,
			PermissionHandler: mediaPeers(cfg.Media, log)}},
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("TURN server: %w", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	s := &Server{srv: srv, conn: conn, addr: pc.LocalAddr(),
		url: "turn:" + net.JoinHostPort(public, strconv.Itoa(port)) + "?transport=udp"}
	log.Info("TURN server", zap.Stringer("addr", s.addr), zap.String("url", s.url), zap.String("realm", cfg.Realm),
		zap.Any("media_ips", cfg.Media.IPs), zap.Uint16("media_port_min", cfg.Media.PortMin),
		zap.Uint16("media_port_max", cfg.Media.PortMax), zap.Int("max_allocations", q.max))
	return s, nil
}

// Close stops the server: its socket and every allocation's relay. It waits, within ctx, for the server's read
// loop to end and the allocations to be gone.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.conn.done:
			if s.srv.AllocationCount() == 0 {
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
