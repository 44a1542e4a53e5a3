package signaling

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// WHIP (RFC 9725) publishes into a room with one HTTP request: POST /whip/{room} with an SDP offer and a bearer
// token; the answer comes back with 201 Created and a Location whose DELETE ends the session. WHEP does the same
// to watch: POST /whep/{room}. Neither trickles candidates (PATCH answers 405) nor renegotiates: a WHEP player's
// sections follow the room's tracks on the server's side (sfu/whepslot.go).

// maxSDPSize bounds an offer posted over HTTP.
const maxSDPSize = 128 << 10

// httpSession is a WHIP or WHEP participant. It implements sfu.Peer: there is no channel back to the client, so
// events are dropped and End just forgets the session.
type httpSession struct {
	srv      *Server
	kind     string // "whip" or "whep"
	room     string
	identity string
	p        *sfu.Participant // set, under srv.mu, once joined
	ended    bool             // under srv.mu
	release  func()           // the placement's relay for this participant, if any; called once it ends
	locked   bool             // the cluster says the room is locked
	regions  []string         // the room's residency policy, in a cluster
}

func (h *httpSession) SendDescription(sfu.PC, webrtc.SessionDescription) {}
func (h *httpSession) SendCandidate(sfu.PC, webrtc.ICECandidateInit)     {}
func (h *httpSession) SendEvent(sfu.Event)                               {}
func (h *httpSession) End(string)                                        { h.srv.forgetHTTPSession(h) }

func (srv *Server) routeWHIP() {
	for _, kind := range []string{"whip", "whep"} {
		srv.mux.HandleFunc("POST /"+kind+"/{room}", srv.postHTTPSession(kind))
		srv.mux.HandleFunc("DELETE /"+kind+"/{room}/{id}", srv.deleteHTTPSession(kind))
		srv.mux.HandleFunc("PATCH /"+kind+"/{room}/{id}", func(w http.ResponseWriter, _ *http.Request) {
			cors(w)
			w.Header().Set("Allow", "DELETE")
			http.Error(w, "trickle ICE is not supported: the answer carries every candidate", http.StatusMethodNotAllowed)
		})
		for _, path := range []string{"/" + kind + "/{room}", "/" + kind + "/{room}/{id}"} {
			srv.mux.HandleFunc("OPTIONS "+path, func(w http.ResponseWriter, _ *http.Request) {
				cors(w)
				w.WriteHeader(http.StatusNoContent)
			})
		}
	}
}

// cors lets players on other origins use WHIP and WHEP; the bearer token is what authorises them.
func cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Location")
}

// bearerClaims verifies the request's bearer token and that it is for the room in the path; endpoint names the
// request in the audit log.
func (srv *Server) bearerClaims(r *http.Request, endpoint string) (*Claims, int, error) {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return nil, http.StatusUnauthorized, errors.New("an Authorization: Bearer <token> header is required")
	}
	claims, err := srv.keys.Verify(strings.TrimSpace(tok))
	if err != nil {
		srv.recordAuthFailure(r, endpoint, err)
		return nil, http.StatusUnauthorized, err
	}
	if claims.Room != r.PathValue("room") {
		return nil, http.StatusForbidden, fmt.Errorf("the token is for room %q", claims.Room)
	}
	return claims, 0, nil
}

func (srv *Server) postHTTPSession(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cors(w)
		claims, status, err := srv.bearerClaims(r, kind)
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		if kind == "whip" && !claims.Publish || kind == "whep" && !claims.Subscribe {
			http.Error(w, "the token does not allow this", http.StatusForbidden)
			return
		}
		if claims.Relay { // a relay between nodes joins over the WebSocket, where its room and regions are checked
			http.Error(w, "a relay token joins over the WebSocket only", http.StatusForbidden)
			return
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/sdp") {
			http.Error(w, "the offer must be sent as application/sdp", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPSize))
		if bodyTimedOut(err) {
			http.Error(w, fmt.Sprintf("the offer did not arrive within %v", srv.bodyTimeout), http.StatusRequestTimeout)
			return
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("offer over %d bytes or unreadable", maxSDPSize), http.StatusRequestEntityTooLarge)
			return
		}
		clearBodyDeadline(w) // the body is in: a slow join must not fail the request's read (see setDeadlines)
		if len(body) == 0 {
			http.Error(w, "empty offer", http.StatusBadRequest)
			return
		}
		h := &httpSession{srv: srv, kind: kind, room: claims.Room, identity: claims.Identity}
		if pl := srv.placement; pl != nil { // in a cluster: the room's owner, in its regions
			route, err := pl.Route(r.Context(), claims.Room, claims.Regions)
			switch {
			case errors.Is(err, ErrResidency):
				srv.record(audit.Record{Kind: audit.KindResidencyRefused, Room: claims.Room, Identity: claims.Identity, Remote: r.RemoteAddr, Refused: true,
					Detail: map[string]any{"regions": claims.Regions, "node_region": pl.Region(), "endpoint": kind, "error": err.Error()}})
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			case err != nil:
				http.Error(w, "cannot place the room: "+err.Error(), http.StatusServiceUnavailable)
				return
			case route.Redirect != "": // RFC 9725 clients follow a 307 with the same method and body
				w.Header().Set("Location", strings.TrimSuffix(route.Redirect, "/")+r.URL.Path)
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
			h.release, h.locked, h.regions = route.Release, route.Locked, route.Regions
		}
		req := sfu.JoinRequest{Room: claims.Room, Identity: claims.Identity, Name: claims.Name,
			CanPublish: kind == "whip", CanSubscribe: kind == "whep", ValidUntil: claims.validUntil(), Locked: h.locked, Regions: h.regions}
		join := srv.sfu.JoinWHEP
		if kind == "whip" {
			join = srv.sfu.JoinWHIP
		}
		p, answer, err := join(req, h, string(body))
		if err != nil {
			srv.forgetHTTPSession(h)
			httpError(w, err)
			return
		}
		srv.mu.Lock()
		h.p = p
		if !h.ended {
			srv.httpSessions[p.ID()] = h
		}
		srv.mu.Unlock()
		srv.log.Info(kind+" session", zap.String("room", claims.Room), zap.String("participant", p.ID()))
		srv.record(audit.Record{Kind: audit.KindJoin, Room: claims.Room, Identity: claims.Identity, Participant: p.ID(), Remote: r.RemoteAddr,
			Detail: map[string]any{"endpoint": kind, "publish": kind == "whip", "subscribe": kind == "whep"}})
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/"+kind+"/"+url.PathEscape(claims.Room)+"/"+p.ID())
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answer)
	}
}

func (srv *Server) deleteHTTPSession(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cors(w)
		claims, status, err := srv.bearerClaims(r, kind+" delete")
		if err != nil {
			http.Error(w, err.Error(), status)
			return
		}
		srv.mu.Lock()
		h := srv.httpSessions[r.PathValue("id")]
		var p *sfu.Participant
		if h != nil {
			p = h.p
		}
		srv.mu.Unlock()
		if h == nil || h.kind != kind || h.room != claims.Room {
			http.Error(w, "no such session", http.StatusNotFound)
			return
		}
		if h.identity != claims.Identity {
			http.Error(w, "the token is for another identity", http.StatusForbidden)
			return
		}
		srv.forgetHTTPSession(h)
		p.Leave("left")
		w.WriteHeader(http.StatusOK)
	}
}

func (srv *Server) forgetHTTPSession(h *httpSession) {
	srv.mu.Lock()
	if !h.ended && h.p != nil {
		defer srv.record(audit.Record{Kind: audit.KindLeave, Room: h.room, Identity: h.identity, Participant: h.p.ID(),
			Detail: map[string]any{"endpoint": h.kind}})
	}
	h.ended = true
	if h.p != nil && srv.httpSessions[h.p.ID()] == h {
		delete(srv.httpSessions, h.p.ID())
	}
	release := h.release
	h.release = nil
	srv.mu.Unlock()
	if release != nil {
		release()
	}
}

// httpError answers with an SFU error, its message and its HTTP status; a busy node says when to try again.
func httpError(w http.ResponseWriter, err error) {
	status := httpStatus(err)
	if errors.Is(err, sfu.ErrBusy) {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, err.Error(), status)
}

// httpStatus maps an SFU error to an HTTP status.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, sfu.ErrBadRequest), errors.Is(err, sfu.ErrLimit):
		return http.StatusBadRequest
	case errors.Is(err, sfu.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, sfu.ErrForbidden), errors.Is(err, sfu.ErrKicked), errors.Is(err, sfu.ErrEncryption):
		return http.StatusForbidden
	case errors.Is(err, sfu.ErrShutdown):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
