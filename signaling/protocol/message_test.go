package protocol

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestServerMessageWire pins the JSON of the messages the server builds itself rather than from room events
// (signaling's wire test covers those).
func TestServerMessageWire(t *testing.T) {
	id := uint64(7)
	mid, line := "0", uint16(0)
	for _, tt := range []struct {
		msg  any
		want string
	}{
		{Pong{Type: TypePong, ID: &id}, `{"type":"pong","id":7}`},
		{Pong{Type: TypePong}, `{"type":"pong"}`},
		{Errorf(CodeBadSDP, TypeOffer, "cannot %s", "apply").ErrorMessage(), `{"type":"error","code":"bad_sdp","message":"cannot apply","ref":"offer"}`},
		{Errorf(CodeTooLarge, "", "big").ErrorMessage(), `{"type":"error","code":"too_large","message":"big"}`},
		{SDP{Type: TypeAnswer, PC: PCPublish, SDP: "v=0\r\n"}, `{"type":"answer","pc":"publish","sdp":"v=0\r\n"}`},
		{Candidate{Type: TypeCandidate, PC: PCSubscribe, Candidate: webrtc.ICECandidateInit{Candidate: "c", SDPMid: &mid, SDPMLineIndex: &line}},
			`{"type":"candidate","pc":"subscribe","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}}`},
		{Bye{Type: TypeBye, Reason: "shutdown"}, `{"type":"bye","reason":"shutdown"}`},
		{Redirect{Type: TypeRedirect, URL: "wss://n2/ws", Reason: "draining"}, `{"type":"redirect","url":"wss://n2/ws","reason":"draining"}`},
		{Joined{Type: TypeJoined, Nodes: []string{"wss://n2/ws"}, Room: "r", Participants: []Participant{}, ICEServers: []webrtc.ICEServer{}},
			`{"type":"joined","nodes":["wss://n2/ws"],"room":"r","you":{"id":"","identity":"","name":"","publish":false,"subscribe":false,"tracks":null},"participants":[],"ice_servers":[]}`},
	} {
		b, err := json.Marshal(tt.msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%T:\n got %s\nwant %s", tt.msg, b, tt.want)
		}
	}
}

func TestProtocolErrorMessage(t *testing.T) {
	pe := Errorf(CodeNotJoined, TypeMute, "send %s first", "join")
	if pe.Error() != "not_joined: send join first" {
		t.Errorf("Error() = %q", pe.Error())
	}
	var err error = pe
	var got *ProtocolError
	if !errors.As(err, &got) || got.Ref != TypeMute {
		t.Errorf("errors.As: %+v", got)
	}
}

func TestDecodeServer(t *testing.T) {
	msg, err := DecodeServer([]byte(`{"type":"track_muted","participant_id":"p","track":{"id":"t","kind":"audio","muted":true},"extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &TrackEvent{Type: TypeTrackMuted, ParticipantID: "p", Track: Track{ID: "t", Kind: "audio", Muted: true}}
	if !reflect.DeepEqual(msg, want) {
		t.Errorf("got %+v, want %+v", msg, want)
	}
	if msg, err := DecodeServer([]byte(`{"type":"caption","participant":"p","track":"t","text":"hi","final":true}`)); err != nil {
		t.Error(err)
	} else if c, ok := msg.(*Caption); !ok || c.Participant != "p" || c.Text != "hi" || !c.Final {
		t.Errorf("caption decoded as %#v", msg)
	}
	for _, in := range []string{`{"type":"join","token":"t"}`, `{"type":"nope"}`, `{}`} {
		if _, err := DecodeServer([]byte(in)); !errors.Is(err, ErrUnknownType) {
			t.Errorf("%s: got %v, want ErrUnknownType", in, err)
		}
	}
	for _, in := range []string{`nope`, `{"type":"room_state","locked":"yes"}`, `{"type":7}`} {
		if _, err := DecodeServer([]byte(in)); err == nil || errors.Is(err, ErrUnknownType) {
			t.Errorf("%s: got %v, want a JSON error", in, err)
		}
	}
}

// TestMessageDecodesEveryType: the loose Message decodes every server message, captions included.
func TestMessageDecodesEveryType(t *testing.T) {
	id := uint64(3)
	for _, tt := range []struct {
		in   string
		want Message
	}{
		{`{"type":"joined","room":"r","you":{"id":"a","identity":"ia","name":"A","publish":true,"subscribe":true,"tracks":[]},` +
			`"participants":[{"id":"b","identity":"ib","name":"B","publish":true,"subscribe":false,"tracks":[{"id":"t","kind":"video","muted":false}]}],` +
			`"ice_servers":[{"urls":["stun:s"]}],"nodes":["wss://n2/ws"]}`,
			Message{Type: TypeJoined, Room: "r", You: &Participant{ID: "a", Identity: "ia", Name: "A", Publish: true, Subscribe: true, Tracks: []Track{}},
				Participants: []Participant{{ID: "b", Identity: "ib", Name: "B", Publish: true, Tracks: []Track{{ID: "t", Kind: "video"}}}},
				ICEServers:   []webrtc.ICEServer{{URLs: []string{"stun:s"}, CredentialType: webrtc.ICECredentialTypePassword}}, Nodes: []string{"wss://n2/ws"}}},
		{`{"type":"participant_left","participant":{"id":"b","identity":"ib","name":"B","publish":false,"subscribe":true,"tracks":[]}}`,
			Message{Type: TypeParticipantLeft, Participant: &Participant{ID: "b", Identity: "ib", Name: "B", Subscribe: true, Tracks: []Track{}}}},
		{`{"type":"track_published","participant_id":"b","track":{"id":"t","kind":"video","muted":false,"source":"screen"}}`,
			Message{Type: TypeTrackPublished, ParticipantID: "b", Track: &Track{ID: "t", Kind: "video", Source: "screen"}}},
		{`{"type":"active_speakers","speakers":[{"participant_id":"b","level":0.5}]}`,
			Message{Type: TypeActiveSpeakers, Speakers: []Speaker{{ParticipantID: "b", Level: 0.5}}}},
		{`{"type":"layers","track_id":"t","rids":["q"],"paused":["f"]}`, Message{Type: TypeLayers, TrackID: "t", RIDs: []string{"q"}, Paused: []string{"f"}}},
		{`{"type":"audio_processing","track_id":"t","processors":[],"error":"e"}`, Message{Type: TypeAudioProcessing, TrackID: "t", Processors: []string{}, Error: "e"}},
		{`{"type":"caption","participant":"b","track":"t","lang":"en","text":"hi","final":true,"start":1.5,"end":2,"translations":{"fr":"salut"}}`,
			Message{Type: TypeCaption, Caption: &Caption{Type: TypeCaption, Participant: "b", Track: "t", Lang: "en", Text: "hi", Final: true,
				Start: 1.5, End: 2, Translations: map[string]string{"fr": "salut"}}}},
		{`{"type":"captions_status","available":false,"reason":"down"}`, Message{Type: TypeCaptionsStatus, Reason: "down"}},
		{`{"type":"room_state","locked":true}`, Message{Type: TypeRoomState, Locked: true}},
		{`{"type":"moderation","action":"set_role","publish":true,"by":"a"}`, Message{Type: TypeModeration, Action: "set_role", Publish: true, By: "a"}},
		{`{"type":"pong","id":3}`, Message{Type: TypePong, ID: &id}},
		{`{"type":"error","code":"busy","message":"m","ref":"join"}`, Message{Type: TypeError, Code: CodeBusy, Message: "m", Ref: TypeJoin}},
		{`{"type":"bye","reason":"kicked"}`, Message{Type: TypeBye, Reason: "kicked"}},
		{`{"type":"redirect","url":"wss://n2/ws","reason":"room_owner"}`, Message{Type: TypeRedirect, URL: "wss://n2/ws", Reason: "room_owner"}},
		{`{"type":"offer","pc":"subscribe","sdp":"v=0"}`, Message{Type: TypeOffer, PC: PCSubscribe, SDP: "v=0"}},
		{`{"type":"something_new","future":true}`, Message{Type: "something_new"}},
	} {
		var m Message
		if err := json.Unmarshal([]byte(tt.in), &m); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(m, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.in, m, tt.want)
		}
	}
	var m Message
	if err := json.Unmarshal([]byte(`{"type":"caption","final":"yes"}`), &m); err == nil {
		t.Error("a caption with a wrong field type decoded")
	}
	if err := json.Unmarshal([]byte(`{"type":"room_state","locked":"yes"}`), &m); err == nil {
		t.Error("a message with a wrong field type decoded")
	}
}

// TestMessageRoundTrip: a Message encodes as the fields it has, a caption as its Caption.
func TestMessageRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"type":"caption","participant":"b","track":"t","lang":"en","text":"hi","final":false,"start":0,"end":0,"translations":{}}`,
		`{"type":"error","code":"busy","message":"m"}`,
		`{"type":"track_muted","participant_id":"p","track":{"id":"t","kind":"audio","muted":true}}`,
	} {
		var m Message
		if err := json.Unmarshal([]byte(in), &m); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != in {
			t.Errorf("\n got %s\nwant %s", b, in)
		}
	}
}
