package signaling

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// The server API (API.md): JSON under /api/v1/ for a backend that runs meetings, authorised by a bearer token with
// the api grant (Claims.API), node-wide or for the one room its room claim names. In a cluster any node answers:
// a call about a room another node owns is forwarded to it (api_cluster.go). Every call is recorded in the audit
// log (kind "api"), refused ones marked Refused.

func (srv *Server) routeAPI() {
	srv.mux.HandleFunc("GET /api/v1/rooms", srv.api(srv.apiRooms))
	srv.mux.HandleFunc("POST /api/v1/rooms", srv.api(srv.apiCreateRoom))
	srv.mux.HandleFunc("GET /api/v1/rooms/{room}", srv.api(srv.owned(srv.apiRoom)))
	srv.mux.HandleFunc("PATCH /api/v1/rooms/{room}", srv.api(srv.owned(srv.apiUpdateRoom)))
	srv.mux.HandleFunc("DELETE /api/v1/rooms/{room}", srv.api(srv.owned(srv.apiEndRoom)))
	srv.mux.HandleFunc("GET /api/v1/rooms/{room}/participants", srv.api(srv.owned(srv.apiParticipants)))
	srv.mux.HandleFunc("PATCH /api/v1/rooms/{room}/participants/{identity}", srv.api(srv.owned(srv.apiUpdateParticipant)))
	srv.mux.HandleFunc("POST /api/v1/rooms/{room}/participants/{identity}/mute", srv.api(srv.owned(srv.apiMute)))
	srv.mux.HandleFunc("DELETE /api/v1/rooms/{room}/participants/{identity}", srv.api(srv.owned(srv.apiRemoveParticipant)))
}

// apiResult is a call's answer: its status, its JSON body (nil: none) and what the audit record adds. A call
// forwarded to another node answers with that node's body as it is (raw).
type apiResult struct {
	status int
	body   any
	raw    []byte
	detail map[string]any
}

// apiHandler serves one API call for verified claims; a failure is a *protocol.ProtocolError (see apiStatus).
type apiHandler func(r *http.Request, c *Claims) (apiResult, error)

// api checks the call's token and, for a room in the path, the token's room scope, then runs h, answers and
// records the call.
func (srv *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := srv.apiClaims(r)
		var res apiResult
		if err == nil {
			res, err = h(r, c)
		}
		if err != nil {
			res = apiFailure(err)
		}
		srv.recordAPI(r, c, res)
		writeAPI(w, res)
	}
}

// apiClaims verifies the bearer token (401 without a valid one, 403 without the api grant) and that its scope
// covers the room in the path, if any (403).
func (srv *Server) apiClaims(r *http.Request) (*Claims, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "", "an Authorization: Bearer <token> header with the api grant is required")
	}
	c, err := srv.keys.VerifyAPI(strings.TrimSpace(tok))
	switch {
	case errors.Is(err, ErrNoAPIGrant):
		return nil, protocol.Errorf(protocol.CodeForbidden, "", "%v: a participant's token cannot use the server API (mint one with sfu token -api)", err)
	case errors.Is(err, ErrTokenExpired):
		return nil, protocol.Errorf(protocol.CodeTokenExpired, "", "%v", err)
	case err != nil:
		return nil, protocol.Errorf(protocol.CodeUnauthorized, "", "%v", err)
	}
	if room := r.PathValue("room"); room != "" && c.Room != "" && room != c.Room {
		return nil, protocol.Errorf(protocol.CodeForbidden, "", "the token is for room %.64q only", c.Room)
	}
	return c, nil
}

type apiRoom struct {
	Name         string    `json:"name"`
	Participants int       `json:"participants"`
	CreatedAt    time.Time `json:"created_at"`
	Region       string    `json:"region"`
	Node         string    `json:"node"`
	Metadata     string    `json:"metadata"`
}

type apiParticipant struct {
	ID        string     `json:"id"`
	Identity  string     `json:"identity"`
	Name      string     `json:"name"`
	Tracks    []apiTrack `json:"tracks"`
	Publish   bool       `json:"publish"`
	Subscribe bool       `json:"subscribe"`
	Admin     bool       `json:"admin"`
	JoinedAt  time.Time  `json:"joined_at"`
	Metadata  string     `json:"metadata"`
	Node      string     `json:"node"`             // "": another node of the cluster (remote)
	Remote    bool       `json:"remote,omitempty"` // hosted on another node, shown here through a relay
}

type apiTrack struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Muted  bool   `json:"muted"`
}

// apiRooms lists the rooms this node hosts and, in a cluster, those of the other nodes (each asked once, its
// answer not forwarded again): the token's room only, for a token scoped to one.
func (srv *Server) apiRooms(r *http.Request, c *Claims) (apiResult, error) {
	rooms := []apiRoom{}
	for _, rm := range srv.sfu.Rooms() {
		if c.Room == "" || rm.Name == c.Room {
			rooms = append(rooms, srv.toAPIRoom(rm))
		}
	}
	body := map[string]any{"rooms": rooms}
	if others, unreachable := srv.clusterRooms(r); len(others)+len(unreachable) > 0 {
		rooms = append(rooms, others...)
		slices.SortFunc(rooms, func(a, b apiRoom) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Node, b.Node)) })
		body["rooms"] = rooms
		if len(unreachable) > 0 {
			body["unreachable"] = unreachable
		}
	}
	return apiResult{status: http.StatusOK, body: body, detail: map[string]any{"rooms": len(rooms)}}, nil
}

func (srv *Server) toAPIRoom(rm sfu.RoomInfo) apiRoom {
	return apiRoom{Name: rm.Name, Participants: rm.Participants, CreatedAt: rm.CreatedAt.UTC(), Region: srv.apiRegion(),
		Node: srv.apiNodeID(), Metadata: rm.Metadata}
}

// apiParticipants lists a room's participants and their tracks.
func (srv *Server) apiParticipants(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	infos, err := srv.sfu.Participants(room)
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	ps := make([]apiParticipant, 0, len(infos))
	for _, p := range infos {
		ps = append(ps, srv.toAPIParticipant(p))
	}
	return apiResult{status: http.StatusOK, body: map[string]any{"participants": ps}, detail: map[string]any{"participants": len(ps)}}, nil
}

func (srv *Server) toAPIParticipant(p sfu.ParticipantInfo) apiParticipant {
	tracks := make([]apiTrack, 0, len(p.Tracks))
	for _, t := range p.Tracks {
		tracks = append(tracks, apiTrack{ID: t.ID, Kind: t.Kind, Source: t.Source, Muted: t.Muted})
	}
	ap := apiParticipant{ID: p.ID, Identity: p.Identity, Name: p.Name, Tracks: tracks, Publish: p.CanPublish,
		Subscribe: p.CanSubscribe, Admin: p.Admin, JoinedAt: p.JoinedAt.UTC(), Metadata: p.Metadata, Node: srv.apiNodeID(), Remote: p.Remote}
	if p.Remote {
		ap.Node = ""
	}
	return ap
}

// apiRemoveParticipant removes a participant, by identity, as an administrator's kick does (bye kicked, and its
// identity refused in the room until its token expires).
func (srv *Server) apiRemoveParticipant(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	identity := r.PathValue("identity")
	did, err := srv.sfu.RemoveParticipant(room, identity)
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	return apiResult{status: http.StatusNoContent, detail: map[string]any{"target": identity, "done": did}}, nil
}

// apiEndRoom ends a room for everyone as an administrator's end does (bye room_ended).
func (srv *Server) apiEndRoom(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	n, err := srv.sfu.EndRoom(room) // a room created ahead and still empty closes too
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	srv.storeModeration(room, sfu.ActionEnd)
	return apiResult{status: http.StatusNoContent, detail: map[string]any{"participants": n}}, nil
}

// pathRoom is the room named in the path, checked as join tokens check theirs.
func pathRoom(r *http.Request) (string, error) {
	room := r.PathValue("room")
	if !validRoom(room) {
		return "", protocol.Errorf(protocol.CodeBadRequest, "", "room names are 1 to %d characters", maxRoomLen)
	}
	return room, nil
}

// apiFailure is the answer to a failed call: {"code","message"} with the status its code means.
func apiFailure(err error) apiResult {
	var pe *protocol.ProtocolError
	if !errors.As(err, &pe) {
		pe = protocol.Errorf(protocol.CodeInternal, "", "%v", err)
	}
	return apiResult{status: apiStatus(pe.Code), body: map[string]string{"code": pe.Code, "message": pe.Message},
		detail: map[string]any{"code": pe.Code, "error": pe.Message}}
}

// apiStatus is the HTTP status of a protocol error code.
func apiStatus(code string) int {
	switch code {
	case protocol.CodeUnauthorized, protocol.CodeTokenExpired:
		return http.StatusUnauthorized
	case protocol.CodeForbidden:
		return http.StatusForbidden
	case protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeBadRequest:
		return http.StatusBadRequest
	case protocol.CodeInternal:
		return http.StatusInternalServerError
	case protocol.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusConflict
}

// recordAPI records a call in the audit log. Without verified claims the room in the path is the client's choice,
// unverified: only its length is recorded.
func (srv *Server) recordAPI(r *http.Request, c *Claims, res apiResult) {
	detail := map[string]any{"method": r.Method, "pattern": r.Pattern, "status": res.status}
	for k, v := range res.detail {
		detail[k] = v
	}
	refused := res.status >= http.StatusBadRequest
	if refused {
		detail["refused"] = true
	}
	rec := audit.Record{Kind: audit.KindAPI, Remote: r.RemoteAddr, Refused: refused, Detail: detail}
	room := r.PathValue("room")
	switch {
	case c != nil:
		rec.Identity, rec.Room = c.Identity, room
	case room != "":
		detail["room_len"] = len(room)
	}
	srv.record(rec)
}

// writeAPI sends res as JSON.
func writeAPI(w http.ResponseWriter, res apiResult) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if res.raw != nil {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(res.status)
		_, _ = w.Write(res.raw)
		return
	}
	if res.body == nil {
		w.WriteHeader(res.status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}
