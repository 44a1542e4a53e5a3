package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
)

// MaxMessageSize is the largest message a client may send; larger ones get a too_large error.
const MaxMessageSize = 64 << 10

// Client-to-server message types. Offer, answer and candidate go both ways: see TypeOffer.
const (
	TypeJoin         = "join"
	TypeMute         = "mute"
	TypeTrackSource  = "track_source"
	TypeRelayTrack   = "relay_track" // a relay between nodes only: whose track it is about to publish
	TypeSubscription = "subscription"
	TypeDenoise      = "denoise"
	TypeCaptions     = "captions"
	TypeAdmin        = "admin"
	TypeChat         = "chat" // both ways: the client's message, and the server's delivery of everyone's
	TypeHand         = "hand"
	TypeE2EE         = "e2ee" // both ways: end-to-end encryption keys between clients, opaque to the server
	TypeICERestart   = "ice_restart"
	TypePing         = "ping"
	TypeLeave        = "leave"
)

// The two peer connections of a participant, as named by the pc field.
const (
	PCPublish   = "publish"   // the client offers, the server answers
	PCSubscribe = "subscribe" // the server offers, the client answers
)

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
	CodeKicked        = "kicked"         // an administrator kicked this identity from the room: not before its token expires
	CodeNotFound      = "not_found"      // server API (API.md): no such room on this node, or no such participant in it
	CodeExists        = "already_exists" // server API: the room to create is open already
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
	Identity    string                   `json:"identity,omitempty"`
	Name        string                   `json:"name,omitempty"`
	Admin       *bool                    `json:"admin,omitempty"`  // admin set_role
	Text        string                   `json:"text,omitempty"`   // chat
	To          string                   `json:"to,omitempty"`     // chat: one participant's id; "": everyone
	Raised      *bool                    `json:"raised,omitempty"` // hand
	// E2EE: in join, the client's end-to-end encryption announcement (its public key, authenticated with the
	// room's passphrase; opaque here): set means the client encrypts its media. The e2ee message carries Data.
	E2EE string `json:"e2ee,omitempty"`
	Data string `json:"data,omitempty"` // e2ee: what one client tells others about keys, opaque to the server
}

// MaxE2EEAnnouncement bounds join's e2ee announcement, and MaxE2EEData an e2ee message's data (a key epoch
// wrapped for every member of a large room fits).
const (
	MaxE2EEAnnouncement = 512
	MaxE2EEData         = 48 << 10
)

// MaxChatBytes bounds a chat message's text as sent, in bytes (UTF-8); the server also keeps at most
// MaxChatRunes characters of it.
const (
	MaxChatBytes = 4000
	MaxChatRunes = 1000
)

// ProtocolError is sent to the client as an error message.
type ProtocolError struct {
	Code    string
	Message string
	Ref     string // the request type it answers, when known
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a *ProtocolError with the given code and ref (the request type it answers, or "") and a message
// formatted as by fmt.Sprintf.
func Errorf(code, ref, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Ref: ref, Message: fmt.Sprintf(format, args...)}
}

// ErrorMessage is the error message that tells the client about e.
func (e *ProtocolError) ErrorMessage() Error {
	return Error{Type: TypeError, Code: e.Code, Message: e.Message, Ref: e.Ref}
}

// Decode parses and checks one client message. Every failure is a *ProtocolError. Fields not used by the
// message's type are ignored, as are unknown fields.
func Decode(data []byte) (Request, error) {
	var r Request
	if len(data) > MaxMessageSize {
		return r, Errorf(CodeTooLarge, "", "message is %d bytes; the limit is %d", len(data), MaxMessageSize)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Request{}, Errorf(CodeBadMessage, "", "not a JSON message of the protocol: %v", err)
	}
	bad := func(format string, args ...any) (Request, error) {
		return Request{}, Errorf(CodeBadRequest, r.Type, format, args...)
	}
	if len(r.E2EE) > MaxE2EEAnnouncement { // join's, or relay_track's for another node's participant
		return bad("the e2ee announcement is at most %d bytes", MaxE2EEAnnouncement)
	}
	switch r.Type {
	case TypeJoin:
		if r.Token == "" {
			return Request{}, Errorf(CodeUnauthorized, r.Type, "join needs a token")
		}
	case TypeE2EE:
		if r.Data == "" || len(r.Data) > MaxE2EEData {
			return bad("e2ee needs data, at most %d bytes", MaxE2EEData)
		}
		if len(r.To) > 64 || len(r.Participant) > 64 {
			return bad("e2ee to or participant too long")
		}
	case TypeOffer, TypeAnswer:
		if err := checkPC(r.PC); err != nil {
			return bad("%v", err)
		}
		if r.SDP == "" {
			return bad("%s without sdp", r.Type)
		}
		if r.Type == TypeOffer && r.PC != PCPublish || r.Type == TypeAnswer && r.PC != PCSubscribe {
			return bad("clients send offers for publish and answers for subscribe, not %s for %s", r.Type, r.PC)
		}
	case TypeCandidate:
		if err := checkPC(r.PC); err != nil {
			return bad("%v", err)
		}
		if r.Candidate == nil {
			return bad("candidate without candidate")
		}
	case TypeMute:
		if r.Track == "" || r.Muted == nil {
			return bad("mute needs track and muted")
		}
	case TypeSubscription:
		if r.Track == "" || r.Width == nil || r.Height == nil {
			return bad("subscription needs track, width and height")
		}
		if *r.Width < 0 || *r.Height < 0 || *r.Width > 16384 || *r.Height > 16384 {
			return bad("width and height must be 0 to 16384")
		}
	case TypeTrackSource:
		if r.Track == "" || r.Source == "" {
			return bad("track_source needs track and source")
		}
	case TypeRelayTrack:
		if r.Track == "" || r.Participant == "" || r.Identity == "" {
			return bad("relay_track needs track, participant and identity")
		}
		if len(r.Participant) > 64 || len(r.Identity) > 256 || len(r.Name) > 256 {
			return bad("relay_track participant (64), identity or name (256 bytes) too long")
		}
	case TypeDenoise:
		if r.Enabled == nil {
			return bad("denoise needs enabled")
		}
		if len(r.Engine) > 32 {
			return bad("engine names are at most 32 bytes")
		}
	case TypeCaptions:
		if r.Languages == nil {
			return bad("captions needs languages ([] turns them off)")
		}
	case TypeAdmin:
		if r.Action == "" {
			return bad("admin needs an action")
		}
		if len(r.Action) > 16 || len(r.Participant) > 64 {
			return bad("admin action or participant too long")
		}
	case TypeChat:
		if strings.TrimSpace(r.Text) == "" {
			return bad("chat needs text")
		}
		if len(r.Text) > MaxChatBytes || utf8.RuneCountInString(r.Text) > MaxChatRunes {
			return bad("chat text is at most %d characters", MaxChatRunes)
		}
		if len(r.To) > 64 || len(r.Participant) > 64 || len(r.Name) > 256 {
			return bad("chat to and participant are participant ids (64), name a name (256 bytes)")
		}
	case TypeHand:
		if r.Raised == nil {
			return bad("hand needs raised")
		}
	case TypePing, TypeLeave, TypeICERestart:
	case "":
		return Request{}, Errorf(CodeUnknownType, "", "message has no type")
	default:
		return Request{}, Errorf(CodeUnknownType, "", "unknown message type %.40q", r.Type)
	}
	return r, nil
}

func checkPC(pc string) error {
	if pc != PCPublish && pc != PCSubscribe {
		return fmt.Errorf("pc must be publish or subscribe, not %.20q", pc)
	}
	return nil
}
