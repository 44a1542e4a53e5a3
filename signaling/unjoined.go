package signaling

import (
	"net"
	"net/http"
	"sync"

	"github.com/edge-sfu/sfu/signaling/audit"
	"go.uber.org/zap"
)

// unjoinedCaps counts the WebSockets that are open but have not joined, per remote address and over the node,
// and refuses one more than either cap before it is upgraded: an unjoined socket costs the node a connection
// and two goroutines while it proves nothing.
type unjoinedCaps struct {
	perIP, total int // 0: no limit

	mu   sync.Mutex
	byIP map[string]int // entries at 0 are deleted
	n    int
}

func newUnjoinedCaps(perIP, total int) *unjoinedCaps {
	if perIP == 0 {
		perIP = DefaultMaxUnjoinedPerIP
	}
	if total == 0 {
		total = DefaultMaxUnjoined
	}
	return &unjoinedCaps{perIP: max(perIP, 0), total: max(total, 0), byIP: map[string]int{}}
}

// unjoinedSlot is one socket's place under the caps, held until it joins or closes.
type unjoinedSlot struct {
	caps *unjoinedCaps
	key  string
	done bool // under caps.mu
}

// acquire takes a place for a socket from remoteAddr (host:port). When a cap is reached it returns nil and the
// HTTP status to refuse with: 429 for the address's cap, 503 for the node's.
func (c *unjoinedCaps) acquire(remoteAddr string) (*unjoinedSlot, int) {
	key := addrKey(remoteAddr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total > 0 && c.n >= c.total {
		return nil, http.StatusServiceUnavailable
	}
	if c.perIP > 0 && c.byIP[key] >= c.perIP {
		return nil, http.StatusTooManyRequests
	}
	c.n++
	c.byIP[key]++
	return &unjoinedSlot{caps: c, key: key}, 0
}

// release gives the place back; calls after the first do nothing.
func (s *unjoinedSlot) release() {
	if s == nil {
		return
	}
	c := s.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	c.n--
	if c.byIP[s.key]--; c.byIP[s.key] <= 0 {
		delete(c.byIP, s.key)
	}
}

// addrKey is what the per-address cap counts by: the IPv4 address, or the IPv6 /64 (one subscriber's usual
// allocation, which an attacker would otherwise walk through).
func addrKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// refuseUnjoined answers a socket over a cap (status 429 or 503) before it is upgraded.
func (srv *Server) refuseUnjoined(w http.ResponseWriter, r *http.Request, status int) {
	limit, msg := "per_address", "too many sockets from your address have not joined yet; try again shortly"
	if status == http.StatusServiceUnavailable {
		limit, msg = "node", "the server has too many sockets that have not joined yet; try again shortly"
	}
	srv.log.Debug("websocket refused: unjoined sockets", zap.String("limit", limit), zap.String("remote", r.RemoteAddr))
	srv.record(audit.Record{Kind: audit.KindLimit, Remote: r.RemoteAddr, Refused: true,
		Detail: map[string]any{"refused": "socket", "limit": limit, "status": status}})
	w.Header().Set("Retry-After", "1")
	http.Error(w, msg, status)
}
