package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Remote ICE candidates: the SFU sends connectivity checks to every address a client names, so a client may
// name only so many, and only addresses a client can have. Candidates come trickled (AddCandidate) or inside a
// description (a publish or WHIP offer, a WHEP offer, the answer to a subscribe offer); both kinds count against
// one limit per connection (maxCandidates, subscriber.go), and one description may carry at most
// maxSDPCandidates (a browser's has under 20).

// maxSDPCandidates bounds the candidates of one description.
const maxSDPCandidates = 32

// candidateFilter says which remote addresses the SFU sends connectivity checks to. Never: unspecified,
// link-local, multicast or broadcast addresses, nor names other than mDNS ones (which Pion cannot use anyway).
type candidateFilter struct {
	loopback bool // the node is on loopback itself (tests, development): loopback candidates are taken
	private  bool // drop private addresses (RFC 1918, fc00::/7) too
}

// check reports whether a candidate ("candidate:..." or its value) names an address the SFU may send to; an error
// if it does not parse.
func (f candidateFilter) check(candidate string) (bool, error) {
	c, err := ice.UnmarshalCandidate(candidate) // the parser Pion uses: the address checked is the one it would use
	if err != nil {
		return false, err
	}
	addr, err := netip.ParseAddr(c.Address())
	if err != nil { // a name: Pion resolves only mDNS names, on the local link
		return strings.HasSuffix(c.Address(), ".local"), nil
	}
	return f.allowsAddr(addr), nil
}

// allows is check without the error: a candidate that does not parse is not allowed.
func (f candidateFilter) allows(candidate string) bool {
	ok, _ := f.check(candidate)
	return ok
}

// allowsAddr reports whether the SFU may send to addr.
func (f candidateFilter) allowsAddr(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	switch {
	case !addr.IsValid(), addr.IsUnspecified(), addr.IsLinkLocalUnicast(), addr.IsMulticast():
		return false
	case addr.Is4() && (addr.As4()[0] == 0 || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255})): // "this network", broadcast
		return false
	case addr.IsLoopback():
		return f.loopback
	case addr.IsPrivate():
		return !f.private
	}
	return true
}

// screen counts the candidates of a client's description (what: "publish offer", ...) for connection which,
// against the per-description limit and the connection's, and drops those the filter refuses. It returns the SDP
// to apply: raw itself when nothing was dropped. The count is kept: a description that then fails still used up
// the candidates it named.
func (p *Participant) screen(which PC, what string, parsed *sdp.SessionDescription, raw string) (string, error) {
	n, err := checkCandidateCount(what, parsed)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	if p.added[which]+n > maxCandidates {
		p.mu.Unlock()
		return "", fmt.Errorf("the %s names %d ICE candidates, more than the %d the %s connection takes in all: %w", what, n, maxCandidates, which, ErrBadSDP)
	}
	p.added[which] += n
	p.mu.Unlock()

	dropped := 0
	keep := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			if a.IsICECandidate() && !p.candidates.allows(a.Value) {
				dropped++
				continue
			}
			out = append(out, a)
		}
		return out
	}
	if n == 0 {
		return raw, nil
	}
	parsed.Attributes = keep(parsed.Attributes)
	for _, m := range parsed.MediaDescriptions {
		m.Attributes = keep(m.Attributes)
	}
	if dropped == 0 {
		return raw, nil
	}
	p.log.Debug("remote candidates dropped", zap.Stringer("pc", which), zap.Int("dropped", dropped), zap.Int("of", n))
	out, err := parsed.Marshal()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", what, ErrBadSDP, err)
	}
	return string(out), nil
}

// checkCandidateCount counts a description's candidates, session-level and in every section: ErrBadSDP beyond
// maxSDPCandidates.
func checkCandidateCount(what string, parsed *sdp.SessionDescription) (int, error) {
	count := func(attrs []sdp.Attribute) int {
		n := 0
		for _, a := range attrs {
			if a.IsICECandidate() {
				n++
			}
		}
		return n
	}
	n := count(parsed.Attributes)
	for _, m := range parsed.MediaDescriptions {
		n += count(m.Attributes)
	}
	if n > maxSDPCandidates {
		return n, fmt.Errorf("the %s names %d ICE candidates; at most %d are taken: %w", what, n, maxSDPCandidates, ErrBadSDP)
	}
	return n, nil
}

// parseDescription parses a client's description (what: "publish offer", ...).
func parseDescription(what, raw string) (*sdp.SessionDescription, error) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrBadSDP, err)
	}
	return &parsed, nil
}

// trickled reports whether a trickled candidate may be added to connection which. It counts against the
// connection's limit (ErrBadRequest beyond it) whether or not it is then dropped (false, no error): for its
// address, or, as Pion does, for a type or network it does not know. Any other candidate that does not parse is
// ErrBadRequest.
func (p *Participant) trickled(which PC, c webrtc.ICECandidateInit) (bool, error) {
	p.mu.Lock()
	if p.added[which] >= maxCandidates {
		p.mu.Unlock()
		return false, fmt.Errorf("more than %d candidates for the %s connection: %w", maxCandidates, which, ErrBadRequest)
	}
	p.added[which]++
	p.mu.Unlock()
	ok, err := p.candidates.check(c.Candidate)
	switch {
	case errors.Is(err, ice.ErrUnknownCandidateTyp), errors.Is(err, ice.ErrDetermineNetworkType):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s candidate: %w: %w", which, ErrBadRequest, err)
	case !ok:
		p.log.Debug("remote candidate dropped", zap.Stringer("pc", which), zap.String("candidate", cut(c.Candidate, 120)))
	}
	return ok, nil
}

// cut shortens s to at most n bytes, for logs.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
