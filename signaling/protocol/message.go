package protocol

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// ErrUnknownType is returned by DecodeServer for a message whose type the server does not send.
var ErrUnknownType = errors.New("not a server message type")

// DecodeServer decodes one server message into the struct of its type: a *Joined, *SDP, *TrackEvent, ... (see
// ServerMessage). Unknown fields are ignored, as a client should.
func DecodeServer(data []byte) (any, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("server message: %w", err)
	}
	msg := ServerMessage(head.Type)
	if msg == nil {
		return nil, fmt.Errorf("%w: %.40q", ErrUnknownType, head.Type)
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("%s message: %w", head.Type, err)
	}
	return msg, nil
}

// Message is any server message decoded loosely: Type and the union of the fields of all server messages, each
// set when the message has it. A caption's participant and track are ids where other messages have objects, so
// a caption message is decoded whole into Caption instead, and its other fields but Type stay zero. Clients that
// want one struct per type use DecodeServer.
type Message struct {
	Type          string                   `json:"type"`
	Room          string                   `json:"room,omitempty"`
	You           *Participant             `json:"you,omitempty"`
	Participants  []Participant            `json:"participants,omitempty"`
	Participant   *Participant             `json:"participant,omitempty"`
	ParticipantID string                   `json:"participant_id,omitempty"`
	Track         *Track                   `json:"track,omitempty"`
	PC            string                   `json:"pc,omitempty"`
	SDP           string                   `json:"sdp,omitempty"`
	Candidate     *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	Code          string                   `json:"code,omitempty"`
	Message       string                   `json:"message,omitempty"`
	Ref           string                   `json:"ref,omitempty"`
	Reason        string                   `json:"reason,omitempty"`
	ID            *uint64                  `json:"id,omitempty"`
	Speakers      []Speaker                `json:"speakers,omitempty"`
	TrackID       string                   `json:"track_id,omitempty"`
	RIDs          []string                 `json:"rids,omitempty"`
	Paused        []string                 `json:"paused,omitempty"`
	Processors    []string                 `json:"processors,omitempty"`
	URL           string                   `json:"url,omitempty"`   // redirect
	Nodes         []string                 `json:"nodes,omitempty"` // joined: the region's other nodes
	ICEServers    []webrtc.ICEServer       `json:"ice_servers,omitempty"`
	Error         string                   `json:"error,omitempty"`
	Available     bool                     `json:"available,omitempty"`   // captions_status
	Transcribed   []string                 `json:"transcribed,omitempty"` // transcription
	Locked        bool                     `json:"locked,omitempty"`      // room_state
	Action        string                   `json:"action,omitempty"`      // moderation
	Publish       bool                     `json:"publish,omitempty"`     // moderation
	By            string                   `json:"by,omitempty"`          // moderation
	Metadata      string                   `json:"metadata,omitempty"`    // metadata; joined: the room's
	Token         string                   `json:"token,omitempty"`       // token
	ExpiresAt     int64                    `json:"expires_at,omitempty"`  // token
	Admin         bool                     `json:"admin,omitempty"`       // moderation
	From          string                   `json:"from,omitempty"`        // chat
	Name          string                   `json:"name,omitempty"`        // chat
	To            string                   `json:"to,omitempty"`          // chat
	Text          string                   `json:"text,omitempty"`        // chat
	Time          int64                    `json:"time,omitempty"`        // chat
	Hands         []string                 `json:"hands,omitempty"`       // hands; joined
	Data          string                   `json:"data,omitempty"`        // e2ee
	Caption       *Caption                 `json:"-"`                     // caption
}

// loose is Message without its methods.
type loose Message

// UnmarshalJSON decodes a server message of any type.
func (m *Message) UnmarshalJSON(data []byte) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("server message: %w", err)
	}
	if head.Type == TypeCaption {
		var c Caption
		if err := json.Unmarshal(data, &c); err != nil {
			return fmt.Errorf("caption message: %w", err)
		}
		*m = Message{Type: c.Type, Caption: &c}
		return nil
	}
	var l loose
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("%.40s message: %w", head.Type, err)
	}
	*m = Message(l)
	return nil
}

// MarshalJSON encodes the message with the fields that are set (a caption as its Caption).
func (m Message) MarshalJSON() ([]byte, error) {
	if m.Caption != nil {
		return json.Marshal(m.Caption)
	}
	return json.Marshal(loose(m))
}
