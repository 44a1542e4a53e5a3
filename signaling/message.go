package signaling

import (
	"encoding/json"
	"fmt"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/pion/webrtc/v4"
)

// MaxMessageSize is the largest message a client may send; larger ones get a too_large error.
const MaxMessageSize = 64 << 10

// Error codes sent in error messages (see PROTOCOL.md).
const (
	CodeBadMessage    = "bad_message"
	CodeTooLarge      = "too_large"
	CodeUnknownType   = "unknown_type"
	CodeNotJoined     = "not_joined"
	CodeAlreadyJoined = "already_joined"
	CodeUnauthorized  = "unauthorized"
	CodeTokenExpired  = "token_expired"
	CodeForbidden     = "forbidden"
	CodeBadRequest    = "bad_request"
	CodeBadSDP        = "bad_sdp"
	CodeOutOfOrder    = "out_of_order"
	CodeInternal      = "internal"
	CodeE2EE          = "e2ee"        // the room is end-to-end encrypted: the server cannot process its media
	CodeUnavailable   = "unavailable" // this server cannot run what was asked (e.g. a denoiser it lacks)
	CodeRoomFull      = "room_full"
	CodeRoomLocked    = "room_locked"
	CodeBusy          = "busy"           // too many joins at once: try again shortly
	CodeLimit         = "limit_exceeded" // tracks, bitrate
	CodeRateLimited   = "rate_limited"   // too many messages a second
	CodeResidency     = "residency"      // the room may not be hosted in this node's region
)

// Request is a client-to-server message. Which fields are set depends on Type.
type Request struct {
	Type        string                   `json:"type"`
	Token       string                   `json:"token,omitempty"`
	PC          string                   `json:"pc,omitempty"`
	SDP         string                   `json:"sdp,omitempty"`
	Candidate   *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Track       string                   `json:"track,omitempty"`
	Muted       *bool                    `json:"muted,omitempty"`
	ID          *uint64                  `json:"id,omitempty"`
	Source      string                   `json:"source,omitempty"`
	Width       *int                     `json:"width,omitempty"`
	Height      *int                     `json:"height,omitempty"`
	Enabled     *bool                    `json:"enabled,omitempty"`
	Engine      string                   `json:"engine,omitempty"`
	Languages   []string                 `json:"languages,omitempty"`
	Spoken      string                   `json:"spoken,omitempty"`
	Action      string                   `json:"action,omitempty"`
	Participant string                   `json:"participant,omitempty"`
	Publish     *bool                    `json:"publish,omitempty"`
}

// ProtocolError is sent to the client as an error message.
type ProtocolError struct {
	Code    string
	Message string
	Ref     string // the request type it answers, when known
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Message }

func protoErr(code, ref, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Ref: ref, Message: fmt.Sprintf(format, args...)}
}

// Decode parses and checks one client message. Every failure is a *ProtocolError.
func Decode(data []byte) (Request, error) {
	var r Request
	if len(data) > MaxMessageSize {
		return r, protoErr(CodeTooLarge, "", "message is %d bytes; the limit is %d", len(data), MaxMessageSize)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Request{}, protoErr(CodeBadMessage, "", "not a JSON message of the protocol: %v", err)
	}
	bad := func(format string, args ...any) (Request, error) {
		return Request{}, protoErr(CodeBadRequest, r.Type, format, args...)
	}
	switch r.Type {
	case "join":
		if r.Token == "" {
			return Request{}, protoErr(CodeUnauthorized, r.Type, "join needs a token")
		}
	case "offer", "answer":
		if _, err := r.pc(); err != nil {
			return bad("%v", err)
		}
		if r.SDP == "" {
			return bad("%s without sdp", r.Type)
		}
		if r.Type == "offer" && r.PC != "publish" || r.Type == "answer" && r.PC != "subscribe" {
			return bad("clients send offers for publish and answers for subscribe, not %s for %s", r.Type, r.PC)
		}
	case "candidate":
		if _, err := r.pc(); err != nil {
			return bad("%v", err)
		}
		if r.Candidate == nil {
			return bad("candidate without candidate")
		}
	case "mute":
		if r.Track == "" || r.Muted == nil {
			return bad("mute needs track and muted")
		}
	case "subscription":
		if r.Track == "" || r.Width == nil || r.Height == nil {
			return bad("subscription needs track, width and height")
		}
		if *r.Width < 0 || *r.Height < 0 || *r.Width > 16384 || *r.Height > 16384 {
			return bad("width and height must be 0 to 16384")
		}
	case "track_source":
		if r.Track == "" || r.Source == "" {
			return bad("track_source needs track and source")
		}
	case "denoise":
		if r.Enabled == nil {
			return bad("denoise needs enabled")
		}
		if len(r.Engine) > 32 {
			return bad("engine names are at most 32 bytes")
		}
	case "captions":
		if r.Languages == nil {
			return bad("captions needs languages ([] turns them off)")
		}
	case "admin":
		if r.Action == "" {
			return bad("admin needs an action")
		}
		if len(r.Action) > 16 || len(r.Participant) > 64 {
			return bad("admin action or participant too long")
		}
	case "ping", "leave", "ice_restart":
	case "":
		return Request{}, protoErr(CodeUnknownType, "", "message has no type")
	default:
		return Request{}, protoErr(CodeUnknownType, "", "unknown message type %.40q", r.Type)
	}
	return r, nil
}

func (r *Request) pc() (sfu.PC, error) {
	switch r.PC {
	case "publish":
		return sfu.PublishPC, nil
	case "subscribe":
		return sfu.SubscribePC, nil
	}
	return 0, fmt.Errorf("pc must be publish or subscribe, not %.20q", r.PC)
}

// Server-to-client messages.

type participantJSON struct {
	ID        string      `json:"id"`
	Identity  string      `json:"identity"`
	Name      string      `json:"name"`
	Publish   bool        `json:"publish"`
	Subscribe bool        `json:"subscribe"`
	Admin     bool        `json:"admin,omitempty"`
	Tracks    []trackJSON `json:"tracks"`
}

type trackJSON struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Muted  bool   `json:"muted"`
	Source string `json:"source,omitempty"`
}

type speakerJSON struct {
	ParticipantID string  `json:"participant_id"`
	Level         float64 `json:"level"`
}

type layersMsg struct {
	Type    string   `json:"type"`
	TrackID string   `json:"track_id"`
	RIDs    []string `json:"rids"`
	Paused  []string `json:"paused"`
}

type audioProcessingMsg struct {
	Type       string   `json:"type"`
	TrackID    string   `json:"track_id"`
	Processors []string `json:"processors"`
	Error      string   `json:"error,omitempty"`
}

type captionMsg struct {
	Type         string            `json:"type"`
	Participant  string            `json:"participant"`
	Track        string            `json:"track"`
	Lang         string            `json:"lang"`
	Text         string            `json:"text"`
	Final        bool              `json:"final"`
	Start        float64           `json:"start"` // seconds since the room's transcript began
	End          float64           `json:"end"`
	Translations map[string]string `json:"translations"`
}

type roomStateMsg struct {
	Type   string `json:"type"`
	Locked bool   `json:"locked"`
}

type moderationMsg struct {
	Type    string `json:"type"`
	Action  string `json:"action"`
	TrackID string `json:"track_id,omitempty"`
	Publish bool   `json:"publish"`
	By      string `json:"by"`
}

type captionsStatusMsg struct {
	Type      string `json:"type"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

type speakersMsg struct {
	Type     string        `json:"type"`
	Speakers []speakerJSON `json:"speakers"`
}

type redirectMsg struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Reason string `json:"reason"`
}

type joinedMsg struct {
	Type         string             `json:"type"`
	Nodes        []string           `json:"nodes,omitempty"` // other nodes of the region to reconnect to if this one goes
	Room         string             `json:"room"`
	You          participantJSON    `json:"you"`
	Participants []participantJSON  `json:"participants"`
	ICEServers   []webrtc.ICEServer `json:"ice_servers"`
}

type sdpMsg struct {
	Type string `json:"type"`
	PC   string `json:"pc"`
	SDP  string `json:"sdp"`
}

type candidateMsg struct {
	Type      string                  `json:"type"`
	PC        string                  `json:"pc"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

type participantMsg struct {
	Type        string          `json:"type"`
	Participant participantJSON `json:"participant"`
}

type trackMsg struct {
	Type          string    `json:"type"`
	ParticipantID string    `json:"participant_id"`
	Track         trackJSON `json:"track"`
}

type pongMsg struct {
	Type string  `json:"type"`
	ID   *uint64 `json:"id,omitempty"`
}

type errorMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

type byeMsg struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func toParticipantJSON(p sfu.ParticipantInfo) participantJSON {
	tracks := make([]trackJSON, 0, len(p.Tracks))
	for _, t := range p.Tracks {
		tracks = append(tracks, toTrackJSON(t))
	}
	return participantJSON{ID: p.ID, Identity: p.Identity, Name: p.Name, Publish: p.CanPublish, Subscribe: p.CanSubscribe, Admin: p.Admin, Tracks: tracks}
}

func toTrackJSON(t sfu.TrackInfo) trackJSON {
	return trackJSON{ID: t.ID, Kind: t.Kind, Muted: t.Muted, Source: t.Source}
}

// eventMessage turns a room event into its protocol message.
func eventMessage(ev sfu.Event, iceServers []webrtc.ICEServer) any {
	switch ev.Kind {
	case sfu.EventJoined:
		ps := make([]participantJSON, 0, len(ev.Participants))
		for _, p := range ev.Participants {
			ps = append(ps, toParticipantJSON(p))
		}
		if iceServers == nil {
			iceServers = []webrtc.ICEServer{}
		}
		return joinedMsg{Type: "joined", Room: ev.Room, You: toParticipantJSON(ev.Participant), Participants: ps, ICEServers: iceServers}
	case sfu.EventParticipantJoined:
		return participantMsg{Type: "participant_joined", Participant: toParticipantJSON(ev.Participant)}
	case sfu.EventParticipantLeft:
		return participantMsg{Type: "participant_left", Participant: toParticipantJSON(ev.Participant)}
	case sfu.EventTrackPublished:
		return trackMsg{Type: "track_published", ParticipantID: ev.ParticipantID, Track: toTrackJSON(ev.Track)}
	case sfu.EventTrackUnpublished:
		return trackMsg{Type: "track_unpublished", ParticipantID: ev.ParticipantID, Track: toTrackJSON(ev.Track)}
	case sfu.EventTrackMuted:
		return trackMsg{Type: "track_muted", ParticipantID: ev.ParticipantID, Track: toTrackJSON(ev.Track)}
	case sfu.EventActiveSpeakers:
		sp := make([]speakerJSON, 0, len(ev.Speakers))
		for _, x := range ev.Speakers {
			sp = append(sp, speakerJSON{ParticipantID: x.ParticipantID, Level: x.Level})
		}
		return speakersMsg{Type: "active_speakers", Speakers: sp}
	case sfu.EventLayers:
		rids, paused := ev.Layers, ev.Paused
		if rids == nil {
			rids = []string{}
		}
		if paused == nil {
			paused = []string{}
		}
		return layersMsg{Type: "layers", TrackID: ev.Track.ID, RIDs: rids, Paused: paused}
	case sfu.EventAudioProcessing:
		procs := ev.Processors
		if procs == nil {
			procs = []string{}
		}
		return audioProcessingMsg{Type: "audio_processing", TrackID: ev.Track.ID, Processors: procs, Error: ev.Error}
	case sfu.EventCaption:
		c := ev.Caption
		if c == nil {
			return nil
		}
		tr := c.Translations
		if tr == nil {
			tr = map[string]string{}
		}
		return captionMsg{Type: "caption", Participant: c.ParticipantID, Track: c.TrackID, Lang: c.Lang, Text: c.Text,
			Final: c.Final, Start: c.Start.Seconds(), End: c.End.Seconds(), Translations: tr}
	case sfu.EventRoomState:
		return roomStateMsg{Type: "room_state", Locked: ev.Locked}
	case sfu.EventModerated:
		return moderationMsg{Type: "moderation", Action: ev.Action, TrackID: ev.Track.ID, Publish: ev.Publish, By: ev.By}
	case sfu.EventLimit:
		return errorMsg{Type: "error", Code: CodeLimit, Message: ev.Error}
	case sfu.EventCaptionStatus:
		return captionsStatusMsg{Type: "captions_status", Available: ev.Error == "", Reason: ev.Error}
	}
	return nil
}
