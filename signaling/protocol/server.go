package protocol

import "github.com/pion/webrtc/v4"

// Message types of both directions: the client sends offers for publish and answers for subscribe, the server
// answers for publish and offers for subscribe; both send candidates.
const (
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
)

// Server-to-client message types.
const (
	TypeRedirect          = "redirect"
	TypeJoined            = "joined"
	TypeParticipantJoined = "participant_joined"
	TypeParticipantLeft   = "participant_left"
	TypeTrackPublished    = "track_published"
	TypeTrackUnpublished  = "track_unpublished"
	TypeTrackMuted        = "track_muted"
	TypeActiveSpeakers    = "active_speakers"
	TypeLayers            = "layers"
	TypeAudioProcessing   = "audio_processing"
	TypeCaption           = "caption"
	TypeCaptionsStatus    = "captions_status"
	TypeTranscription     = "transcription"
	TypeRoomState         = "room_state"
	TypeModeration        = "moderation"
	TypeRelayAdmin        = "relay_admin" // to a relay between nodes only
	TypeMetadata          = "metadata"
	TypeHands             = "hands"
	TypeParticipantUpdate = "participant_updated"
	TypeToken             = "token"
	TypePong              = "pong"
	TypeError             = "error"
	TypeBye               = "bye"
)

// Participant is a participant as the server describes it.
type Participant struct {
	ID        string  `json:"id"`
	Identity  string  `json:"identity"`
	Name      string  `json:"name"`
	Publish   bool    `json:"publish"`
	Subscribe bool    `json:"subscribe"`
	Admin     bool    `json:"admin,omitempty"`
	Tracks    []Track `json:"tracks"`
	Metadata  string  `json:"metadata,omitempty"` // set by the server API (API.md); at most MaxMetadata bytes
	E2EE      string  `json:"e2ee,omitempty"`     // its end-to-end encryption announcement, as its join gave it
}

// Track is a published track as the server describes it.
type Track struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // audio or video
	Muted  bool   `json:"muted"`
	Source string `json:"source,omitempty"` // camera, microphone, screen or screen_audio
}

// Speaker is one entry of active_speakers.
type Speaker struct {
	ParticipantID string  `json:"participant_id"`
	Level         float64 `json:"level"` // 0 (silence) to 1 (loud)
}

// Redirect tells the client to join again at another node of the region (TypeRedirect).
type Redirect struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Reason string `json:"reason"`
}

// Joined answers join (TypeJoined).
type Joined struct {
	Type         string             `json:"type"`
	Nodes        []string           `json:"nodes,omitempty"` // other nodes of the region to reconnect to if this one goes
	Room         string             `json:"room"`
	Metadata     string             `json:"metadata,omitempty"` // the room's, set by the server API
	Hands        []string           `json:"hands,omitempty"`    // raised hands, first raised first (Hands)
	You          Participant        `json:"you"`
	Participants []Participant      `json:"participants"`
	ICEServers   []webrtc.ICEServer `json:"ice_servers"`
}

// SDP is an offer or an answer (TypeOffer, TypeAnswer) for one of the peer connections.
type SDP struct {
	Type string `json:"type"`
	PC   string `json:"pc"`
	SDP  string `json:"sdp"`
}

// Candidate is one of the server's ICE candidates for one of the peer connections (TypeCandidate).
type Candidate struct {
	Type      string                  `json:"type"`
	PC        string                  `json:"pc"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// ParticipantEvent says a participant joined, left or had its roles changed (TypeParticipantJoined,
// TypeParticipantLeft, TypeParticipantUpdate).
type ParticipantEvent struct {
	Type        string      `json:"type"`
	Participant Participant `json:"participant"`
}

// TrackEvent says a track was published, unpublished, muted or unmuted (TypeTrackPublished,
// TypeTrackUnpublished, TypeTrackMuted).
type TrackEvent struct {
	Type          string `json:"type"`
	ParticipantID string `json:"participant_id"`
	Track         Track  `json:"track"`
}

// ActiveSpeakers lists who is speaking now, loudest first (TypeActiveSpeakers).
type ActiveSpeakers struct {
	Type     string    `json:"type"`
	Speakers []Speaker `json:"speakers"`
}

// Layers says which simulcast layers of one of the client's tracks anyone receives (TypeLayers).
type Layers struct {
	Type    string   `json:"type"`
	TrackID string   `json:"track_id"`
	RIDs    []string `json:"rids"`
	Paused  []string `json:"paused"`
}

// AudioProcessing says which processors run on one of the client's audio tracks (TypeAudioProcessing).
type AudioProcessing struct {
	Type       string   `json:"type"`
	TrackID    string   `json:"track_id"`
	Processors []string `json:"processors"`
	Error      string   `json:"error,omitempty"`
}

// Caption is a caption of someone's speech (TypeCaption).
type Caption struct {
	Type         string            `json:"type"`
	Participant  string            `json:"participant"` // the speaker's participant id
	Track        string            `json:"track"`       // the speaker's track id
	Lang         string            `json:"lang"`
	Text         string            `json:"text"`
	Final        bool              `json:"final"`
	Start        float64           `json:"start"` // seconds since the room's transcript began
	End          float64           `json:"end"`
	Translations map[string]string `json:"translations"`
}

// CaptionsStatus says the captions engine stopped working or works again (TypeCaptionsStatus).
type CaptionsStatus struct {
	Type      string `json:"type"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// Transcription lists the participants whose speech the server transcribes now, for live captions
// (TypeTranscription); sent to everyone in the room when the list changes.
type Transcription struct {
	Type        string   `json:"type"`
	Transcribed []string `json:"transcribed"` // participant ids; empty: nobody is transcribed
}

// RoomState says the room was locked or unlocked (TypeRoomState).
type RoomState struct {
	Type   string `json:"type"`
	Locked bool   `json:"locked"`
}

// Moderation tells a participant what an administrator did to it (TypeModeration).
type Moderation struct {
	Type    string `json:"type"`
	Action  string `json:"action"`
	TrackID string `json:"track_id,omitempty"`
	Publish bool   `json:"publish"`
	Admin   bool   `json:"admin,omitempty"` // set_role: whether the participant is now an administrator
	By      string `json:"by"`
}

// Chat is a chat message delivered (TypeChat): to everyone in the room, or (To set) to one participant and its
// sender. The sender gets its own messages back, with the time the server gave them.
type Chat struct {
	Type string `json:"type"`
	From string `json:"from"` // the sender's participant id
	Name string `json:"name"` // the sender's display name
	To   string `json:"to,omitempty"`
	Text string `json:"text"`
	Time int64  `json:"time"` // when the server received it, Unix milliseconds
}

// E2EE is an end-to-end encryption message from one client (From) to others (TypeE2EE): Data is the
// sender's, unread by the server.
type E2EE struct {
	Type string `json:"type"`
	From string `json:"from"` // the sender's participant id
	To   string `json:"to,omitempty"`
	Data string `json:"data"`
}

// Hands is the room's queue of raised hands, first raised first (TypeHands): sent to everyone at each change.
type Hands struct {
	Type  string   `json:"type"`
	Hands []string `json:"hands"` // participant ids
}

// RelayAdmin asks a relay between nodes to carry an administrator's action on a participant of the other node
// (TypeRelayAdmin): the relay sends it as an admin request there, where the participant is hosted.
type RelayAdmin struct {
	Type          string `json:"type"`
	Action        string `json:"action"`
	ParticipantID string `json:"participant_id"`
	TrackID       string `json:"track_id,omitempty"`
	Publish       bool   `json:"publish"`
}

// MaxMetadata bounds the metadata of a room or a participant, in bytes.
const MaxMetadata = 4096

// Metadata says the metadata of the room (ParticipantID empty) or of one of its participants changed
// (TypeMetadata); sent to everyone in the room.
type Metadata struct {
	Type          string `json:"type"`
	ParticipantID string `json:"participant_id,omitempty"`
	Metadata      string `json:"metadata"`
}

// Token is a fresh join token for the participant's next join (TypeToken): the same room, identity and name,
// its grants as they are now, a new expiry. Sent soon after joined and again before the last one expires.
type Token struct {
	Type      string `json:"type"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"` // the token's exp, Unix seconds
}

// Pong answers ping with its id (TypePong).
type Pong struct {
	Type string  `json:"type"`
	ID   *uint64 `json:"id,omitempty"`
}

// Error says something the client sent was refused (TypeError).
type Error struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

// Bye says the server is ending the session (TypeBye).
type Bye struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// ServerMessage returns a pointer to a new zero struct of the server message type typ (e.g. *Joined for
// "joined"), to decode a message into, or nil for a type the server does not send.
func ServerMessage(typ string) any {
	switch typ {
	case TypeRedirect:
		return &Redirect{}
	case TypeE2EE:
		return &E2EE{}
	case TypeJoined:
		return &Joined{}
	case TypeOffer, TypeAnswer:
		return &SDP{}
	case TypeCandidate:
		return &Candidate{}
	case TypeParticipantJoined, TypeParticipantLeft, TypeParticipantUpdate:
		return &ParticipantEvent{}
	case TypeTrackPublished, TypeTrackUnpublished, TypeTrackMuted:
		return &TrackEvent{}
	case TypeActiveSpeakers:
		return &ActiveSpeakers{}
	case TypeLayers:
		return &Layers{}
	case TypeAudioProcessing:
		return &AudioProcessing{}
	case TypeCaption:
		return &Caption{}
	case TypeCaptionsStatus:
		return &CaptionsStatus{}
	case TypeTranscription:
		return &Transcription{}
	case TypeRoomState:
		return &RoomState{}
	case TypeModeration:
		return &Moderation{}
	case TypeRelayAdmin:
		return &RelayAdmin{}
	case TypeMetadata:
		return &Metadata{}
	case TypeChat:
		return &Chat{}
	case TypeHands:
		return &Hands{}
	case TypeToken:
		return &Token{}
	case TypePong:
		return &Pong{}
	case TypeError:
		return &Error{}
	case TypeBye:
		return &Bye{}
	}
	return nil
}
