package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// The server API's calls about one room and its participants beyond listing and removal: get a room, create one
// ahead of time, change its metadata, mute a participant's tracks, change a participant's rights and metadata.

// maxAPIBody bounds a call's JSON body: metadata is at most protocol.MaxMetadata bytes.
const maxAPIBody = 16 << 10

// maxEmptyTimeout bounds how long a created room may wait, empty, for its participants.
const maxEmptyTimeout = 24 * time.Hour

// apiRoomDetail is one room as GET /api/v1/rooms/{room} describes it.
type apiRoomDetail struct {
	apiRoom
	Regions      []string        `json:"regions,omitempty"`
	EmptyTimeout float64         `json:"empty_timeout,omitempty"` // seconds; only for a room created through the API
	Settings     json.RawMessage `json:"settings"`
	E2EE         bool            `json:"e2ee,omitempty"` // end-to-end encrypted now (its settings, or its first participant)
}

func (srv *Server) toAPIRoomDetail(rm sfu.RoomInfo) apiRoomDetail {
	return apiRoomDetail{apiRoom: srv.toAPIRoom(rm), Regions: rm.Regions, EmptyTimeout: rm.EmptyTimeout.Seconds(),
		Settings: rm.Settings.JSON(), E2EE: rm.E2EE}
}

// apiRoom describes one room this node hosts.
func (srv *Server) apiRoom(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	info, err := srv.sfu.Room(room)
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	return apiResult{status: http.StatusOK, body: srv.toAPIRoomDetail(info), detail: map[string]any{"participants": info.Participants}}, nil
}

// apiUpdateRoom changes a room's metadata; everyone in it is told (a metadata message).
func (srv *Server) apiUpdateRoom(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	var req struct {
		Metadata *string `json:"metadata"`
	}
	if err := readAPIBody(r, &req); err != nil {
		return apiResult{}, err
	}
	var info sfu.RoomInfo
	if req.Metadata == nil {
		info, err = srv.sfu.Room(room)
	} else {
		info, err = srv.sfu.SetRoomMetadata(room, *req.Metadata)
	}
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	return apiResult{status: http.StatusOK, body: srv.toAPIRoomDetail(info), detail: map[string]any{"metadata_len": len(info.Metadata)}}, nil
}

// apiMute mutes or unmutes one of a participant's tracks, or all its audio, as an administrator's mute does.
func (srv *Server) apiMute(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	var req struct {
		Track string `json:"track"`
		Muted *bool  `json:"muted"`
	}
	if err := readAPIBody(r, &req); err != nil {
		return apiResult{}, err
	}
	if req.Muted == nil {
		return apiResult{}, protocol.Errorf(protocol.CodeBadRequest, "", `"muted": true or false is required`)
	}
	identity := r.PathValue("identity")
	did, err := srv.sfu.MuteParticipant(room, identity, req.Track, *req.Muted)
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	p, err := srv.participant(room, identity)
	if err != nil {
		return apiResult{}, err
	}
	return apiResult{status: http.StatusOK, body: p, detail: map[string]any{"target": identity, "track": req.Track, "done": did}}, nil
}

// apiUpdateParticipant changes a participant's rights (publish as an administrator's set_role does, subscribe,
// admin) and its metadata (everyone in the room is told).
func (srv *Server) apiUpdateParticipant(r *http.Request, _ *Claims) (apiResult, error) {
	room, err := pathRoom(r)
	if err != nil {
		return apiResult{}, err
	}
	var req struct {
		Publish   *bool   `json:"publish"`
		Subscribe *bool   `json:"subscribe"`
		Admin     *bool   `json:"admin"`
		Metadata  *string `json:"metadata"`
	}
	if err := readAPIBody(r, &req); err != nil {
		return apiResult{}, err
	}
	identity := r.PathValue("identity")
	info, err := srv.sfu.UpdateParticipant(room, identity, sfu.ParticipantUpdate{Publish: req.Publish, Subscribe: req.Subscribe,
		Admin: req.Admin, Metadata: req.Metadata})
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	detail := map[string]any{"target": identity, "publish": info.CanPublish, "subscribe": info.CanSubscribe, "admin": info.Admin}
	return apiResult{status: http.StatusOK, body: srv.toAPIParticipant(info), detail: detail}, nil
}

// participant describes the participant with this identity (its first session).
func (srv *Server) participant(room, identity string) (apiParticipant, error) {
	infos, err := srv.sfu.Participants(room)
	if err != nil {
		return apiParticipant{}, sfuError("", err)
	}
	for _, p := range infos {
		if p.Identity == identity {
			return srv.toAPIParticipant(p), nil
		}
	}
	return apiParticipant{}, protocol.Errorf(protocol.CodeNotFound, "", "no participant %.40q in room %.40q", identity, room)
}

// createFields are the keys of POST /api/v1/rooms that are not room settings.
var createFields = []string{"name", "metadata", "regions", "empty_timeout"}

// settingsFields are the room settings POST /api/v1/rooms takes (sfu.RoomSettings and its workers' keys).
var settingsFields = []string{"e2ee", "max_participants", "max_audio_streams", "denoise", "processors", "language", "captions"}

// createRequest is a decoded POST /api/v1/rooms.
type createRequest struct {
	name, metadata string
	regions        []string
	emptyTimeout   time.Duration
	settings       json.RawMessage
}

// decodeCreate reads POST /api/v1/rooms: its own keys, and the room settings, each checked here for its type
// and by the node's workers when the room is created.
func decodeCreate(body []byte) (createRequest, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil || keys == nil {
		return createRequest{}, protocol.Errorf(protocol.CodeBadRequest, "", "the body must be a JSON object: %v", err)
	}
	settings := map[string]json.RawMessage{}
	for k, v := range keys {
		switch {
		case slices.Contains(settingsFields, k):
			settings[k] = v
		case !slices.Contains(createFields, k):
			return createRequest{}, protocol.Errorf(protocol.CodeBadRequest, "", "unknown field %.40q", k)
		}
	}
	var req struct {
		Name         string   `json:"name"`
		Metadata     string   `json:"metadata"`
		Regions      []string `json:"regions"`
		EmptyTimeout float64  `json:"empty_timeout"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return createRequest{}, protocol.Errorf(protocol.CodeBadRequest, "", "%v", err)
	}
	if !validRoom(req.Name) {
		return createRequest{}, protocol.Errorf(protocol.CodeBadRequest, "", `"name": room names are 1 to %d characters`, maxRoomLen)
	}
	timeout := time.Duration(req.EmptyTimeout * float64(time.Second))
	if req.EmptyTimeout < 0 || timeout > maxEmptyTimeout {
		return createRequest{}, protocol.Errorf(protocol.CodeBadRequest, "", `"empty_timeout" is seconds, 0 (the default, %v) to %v`,
			sfu.DefaultEmptyTimeout, maxEmptyTimeout)
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return createRequest{}, fmt.Errorf("room settings: %w", err)
	}
	return createRequest{name: req.Name, metadata: req.Metadata, regions: req.Regions, emptyTimeout: timeout, settings: raw}, nil
}

// apiCreateRoom opens a room ahead of its participants, with its settings and metadata; in a cluster it is placed
// as a join would place it (its regions), and created on that node.
func (srv *Server) apiCreateRoom(r *http.Request, c *Claims) (apiResult, error) {
	body, err := readBody(r)
	if err != nil {
		return apiResult{}, err
	}
	req, err := decodeCreate(body)
	if err != nil {
		return apiResult{}, err
	}
	if c.Room != "" && req.name != c.Room {
		return apiResult{}, protocol.Errorf(protocol.CodeForbidden, "", "the token is for room %.64q only", c.Room)
	}
	regions := req.regions
	if len(regions) == 0 && srv.apiRegion() != "" {
		regions = []string{srv.apiRegion()}
	}
	if res, ok, err := srv.placeCreated(r, req.name, regions, body); ok || err != nil {
		return res, err
	}
	if region := srv.apiRegion(); region != "" && !slices.Contains(regions, region) {
		return apiResult{}, protocol.Errorf(protocol.CodeResidency, "", "room %.40q is kept in %v; this node is in %s", req.name, regions, region)
	}
	info, err := srv.sfu.CreateRoom(req.name, sfu.RoomOptions{Settings: req.settings, Metadata: req.metadata, Regions: regions,
		EmptyTimeout: req.emptyTimeout})
	if err != nil {
		return apiResult{}, sfuError("", err)
	}
	return apiResult{status: http.StatusCreated, body: srv.toAPIRoomDetail(info), detail: map[string]any{"created": req.name}}, nil
}

// readBody reads a call's body, up to maxAPIBody.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAPIBody+1))
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "", "read the body: %v", err)
	}
	if len(b) > maxAPIBody {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "", "the body is over %d bytes", maxAPIBody)
	}
	return b, nil
}

// readAPIBody decodes a call's JSON body into v, refusing unknown fields.
func readAPIBody(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return protocol.Errorf(protocol.CodeBadRequest, "", "the body: %v", err)
	}
	return nil
}
