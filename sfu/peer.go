package sfu

import (
	"errors"
	"time"

	"github.com/pion/webrtc/v4"
)

// PC names one of a participant's two peer connections.
type PC int

const (
	// PublishPC carries the participant's own tracks to the SFU; the participant offers.
	PublishPC PC = iota
	// SubscribePC carries other participants' tracks to the participant; the SFU offers.
	SubscribePC
)

func (p PC) String() string {
	if p == PublishPC {
		return "publish"
	}
	return "subscribe"
}

// Peer is a participant's signaling connection as the SFU sees it. Its methods queue a message and return at once;
// they never call back into the SFU.
type Peer interface {
	SendDescription(pc PC, sd webrtc.SessionDescription)
	SendCandidate(pc PC, c webrtc.ICECandidateInit)
	SendEvent(ev Event)
	// End tells the client why the SFU ends its session ("replaced", "failed", "shutdown") and closes the
	// connection.
	End(reason string)
}

// EventKind says what happened in a room.
type EventKind int

// Room events, sent to every other participant of the room (EventJoined only to the one who joined).
const (
	EventJoined EventKind = iota
	EventParticipantJoined
	EventParticipantLeft
	EventTrackPublished
	EventTrackUnpublished
	EventTrackMuted
	EventActiveSpeakers
	// EventLayers tells a publisher which simulcast layers of one of its tracks anyone receives: it may stop
	// encoding the others. Only the publisher gets it.
	EventLayers
	// EventWorker carries a message a worker (denoise, captions) sends to one participant: Message, a value of
	// the signaling protocol that the signaling layer sends as it is.
	EventWorker
	// EventRoomState tells everyone the room was locked or unlocked.
	EventRoomState
	// EventModerated tells a participant what an administrator did to it (Action, Track, Publish, By).
	EventModerated
	// EventLimit tells a participant that something it sent was refused by a limit (Error).
	EventLimit
	// EventMetadata tells everyone the metadata of the room (ParticipantID empty) or of a participant changed
	// (Metadata).
	EventMetadata
	// EventRelayAdmin asks a relay to carry an administrator's action (Action, ParticipantID, Track.ID,
	// Publish) to the node that hosts the participant; only relays get it.
	EventRelayAdmin
	// EventMoved tells a participant that the room now lives on another node (URL, its base URL): it should join
	// there. Its session here ends next.
	EventMoved
	// EventChat delivers a chat message (Chat) to everyone, or to its recipient and its sender.
	EventChat
	// EventHands tells everyone the room's raised hands, first raised first (Hands).
	EventHands
	// EventParticipantUpdated tells everyone a participant's roles changed (Participant): an administrator made
	// it one, or took the role away.
	EventParticipantUpdated
	// EventE2EE delivers a client's end-to-end encryption key message (E2EE), unread.
	EventE2EE
)

// Event is one room event. Participant is set for joins and leaves, Track and ParticipantID for track events;
// Room and Participants only for EventJoined.
type Event struct {
	Kind          EventKind
	Room          string
	Participant   ParticipantInfo
	Participants  []ParticipantInfo
	ParticipantID string
	Track         TrackInfo
	Speakers      []Speaker // EventActiveSpeakers, loudest first
	Layers        []string  // EventLayers: the rids wanted, lowest first
	Paused        []string  // EventLayers: the rids nobody wants
	Error         string    // EventLimit
	Message       any       // EventWorker
	Locked        bool      // EventRoomState
	Action        string    // EventModerated
	Publish       bool      // EventModerated, set_role
	By            string    // EventModerated: the administrator's participant id ("": the server API)
	Metadata      string    // EventMetadata; EventJoined: the room's
	URL           string    // EventMoved
	Admin         bool      // EventModerated, set_role: whether the participant is an administrator now
	Chat          ChatMessage
	Hands         []string // EventHands; EventJoined: the raised hands, first raised first
	E2EE          E2EEMessage
}

// Speaker is a participant speaking now, with its loudness from 0 to 1.
type Speaker struct {
	ParticipantID string
	Level         float64
}

// ParticipantInfo describes a participant to the others.
type ParticipantInfo struct {
	ID             string
	Identity       string
	Name           string
	CanPublish     bool
	CanSubscribe   bool
	CanPublishData bool
	Admin          bool
	Tracks         []TrackInfo
	ValidUntil     time.Time // the end of its token (JoinRequest.ValidUntil); zero: none
	JoinedAt       time.Time // when it joined (this session)
	Metadata       string    // set by the server API (SetParticipantMetadata)
	Remote         bool      // hosted on another node of the cluster, shown here through a relay
	E2EE           string    // its end-to-end encryption announcement (JoinRequest.E2EE); "": it does not encrypt
}

// TrackInfo describes a published track.
type TrackInfo struct {
	ID     string
	Kind   string // "audio" or "video"
	Muted  bool
	Source string // SourceCamera, SourceMicrophone, SourceScreen, SourceScreenAudio
}

// Errors the signaling layer maps to protocol error codes.
var (
	ErrBadSDP     = errors.New("bad sdp")
	ErrOutOfOrder = errors.New("out of order")
	ErrForbidden  = errors.New("forbidden")
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found") // no such room on this node, or no such participant in it
)
