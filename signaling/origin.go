package signaling

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// NormalizeOrigin reads an origin as browsers send it, scheme://host[:port], into its lower-case form without
// a default port (443 for https, 80 for http).
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port], e.g. https://meet.example.org", s)
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host, nil
}

// urlOrigin is the normalized origin of a base URL (its scheme and host; a path is dropped).
func urlOrigin(base string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil {
		return "", fmt.Errorf("url %q: %w", base, err)
	}
	return NormalizeOrigin(u.Scheme + "://" + u.Host)
}

// originAllowed says whether r may open the WebSocket: no Origin (not a browser), one of the node's own (see
// ownOrigin), a configured one, or in a cluster a peer node's.
func (srv *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || srv.anyOrigin {
		return true
	}
	n, err := NormalizeOrigin(origin)
	if err != nil {
		return false
	}
	if _, ok := srv.origins[n]; ok { // the allowed origins and the public URL's
		return true
	}
	if srv.ownOrigin(r, n) {
		return true
	}
	// In a cluster, a page served by one node of the region opens the socket of the room's owner.
	if srv.placement != nil {
		return srv.placement.IsPeer(n)
	}
	return false
}

// ownOrigin reports whether the normalized origin is the node's address: the IP the request came in on at the
// port it came in on, or, when that IP is loopback or the node is in dev mode, localhost, 127.0.0.1 or [::1] at
// that port; either scheme. It never trusts the request's Host header: a page of a name its attacker rebinds to
// this node's address (DNS rebinding) sends that name in Host and in Origin alike.
func (srv *Server) ownOrigin(r *http.Request, origin string) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port != lport {
		return false
	}
	host, ip := strings.ToLower(u.Hostname()), net.ParseIP(lhost)
	hostIP := net.ParseIP(host)
	if ip != nil && hostIP != nil && hostIP.Equal(ip) {
		return true
	}
	if (ip != nil && ip.IsLoopback()) || srv.dev {
		return host == "localhost" || (hostIP != nil && hostIP.IsLoopback())
	}
	return false
}
