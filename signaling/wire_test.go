package signaling

import (
	"encoding/json"
	"testing"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/pion/webrtc/v4"
)

// wireCase is one room event and the exact JSON the browser client receives for it.
type wireCase struct {
	name string
	ev   sfu.Event
	want string
}

func checkWire(t *testing.T, ice []webrtc.ICEServer, cases []wireCase) {
	t.Helper()
	for _, tt := range cases {
		b, err := json.Marshal(eventMessage(tt.ev, ice))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, b, tt.want)
		}
	}
}

// TestEventMessageWire pins the wire format of every message made from a room event: field names, omitempty,
// and [] rather than null for empty lists.
func TestEventMessageWire(t *testing.T) {
	bob := sfu.ParticipantInfo{ID: "PA_b", Identity: "bob", Name: "Bob", CanPublish: true,
		Tracks: []sfu.TrackInfo{{ID: "v1", Kind: "video", Source: "camera"}, {ID: "a1", Kind: "audio", Muted: true}}}
	alice := sfu.ParticipantInfo{ID: "PA_a", Identity: "alice", Name: "Alice", CanPublish: true, CanSubscribe: true, Admin: true}
	const bobJSON = `{"id":"PA_b","identity":"bob","name":"Bob","publish":true,"subscribe":false,` +
		`"tracks":[{"id":"v1","kind":"video","muted":false,"source":"camera"},{"id":"a1","kind":"audio","muted":true}]}`
	const aliceJSON = `{"id":"PA_a","identity":"alice","name":"Alice","publish":true,"subscribe":true,"admin":true,"tracks":[]}`
	track := sfu.TrackInfo{ID: "v1", Kind: "video", Muted: true}
	checkWire(t, nil, []wireCase{
		{"joined alone", sfu.Event{Kind: sfu.EventJoined, Room: "r", Participant: alice},
			`{"type":"joined","room":"r","you":` + aliceJSON + `,"participants":[],"ice_servers":[]}`},
		{"joined", sfu.Event{Kind: sfu.EventJoined, Room: "r", Participant: alice, Participants: []sfu.ParticipantInfo{bob}},
			`{"type":"joined","room":"r","you":` + aliceJSON + `,"participants":[` + bobJSON + `],"ice_servers":[]}`},
		{"participant_joined", sfu.Event{Kind: sfu.EventParticipantJoined, Participant: bob},
			`{"type":"participant_joined","participant":` + bobJSON + `}`},
		{"participant_left", sfu.Event{Kind: sfu.EventParticipantLeft, Participant: alice},
			`{"type":"participant_left","participant":` + aliceJSON + `}`},
		{"track_published", sfu.Event{Kind: sfu.EventTrackPublished, ParticipantID: "PA_b", Track: sfu.TrackInfo{ID: "v1", Kind: "video", Source: "screen"}},
			`{"type":"track_published","participant_id":"PA_b","track":{"id":"v1","kind":"video","muted":false,"source":"screen"}}`},
		{"track_unpublished", sfu.Event{Kind: sfu.EventTrackUnpublished, ParticipantID: "PA_b", Track: track},
			`{"type":"track_unpublished","participant_id":"PA_b","track":{"id":"v1","kind":"video","muted":true}}`},
		{"track_muted", sfu.Event{Kind: sfu.EventTrackMuted, ParticipantID: "PA_b", Track: track},
			`{"type":"track_muted","participant_id":"PA_b","track":{"id":"v1","kind":"video","muted":true}}`},
		{"active_speakers", sfu.Event{Kind: sfu.EventActiveSpeakers, Speakers: []sfu.Speaker{{ParticipantID: "PA_b", Level: 0.5}}},
			`{"type":"active_speakers","speakers":[{"participant_id":"PA_b","level":0.5}]}`},
		{"active_speakers silent", sfu.Event{Kind: sfu.EventActiveSpeakers},
			`{"type":"active_speakers","speakers":[]}`},
		{"layers", sfu.Event{Kind: sfu.EventLayers, Track: track, Layers: []string{"q", "h"}, Paused: []string{"f"}},
			`{"type":"layers","track_id":"v1","rids":["q","h"],"paused":["f"]}`},
		{"layers empty", sfu.Event{Kind: sfu.EventLayers, Track: track},
			`{"type":"layers","track_id":"v1","rids":[],"paused":[]}`},
		{"room_state", sfu.Event{Kind: sfu.EventRoomState, Locked: true}, `{"type":"room_state","locked":true}`},
		{"room_state unlocked", sfu.Event{Kind: sfu.EventRoomState}, `{"type":"room_state","locked":false}`},
		{"moderation", sfu.Event{Kind: sfu.EventModerated, Action: "mute", Track: track, By: "PA_a"},
			`{"type":"moderation","action":"mute","track_id":"v1","publish":false,"by":"PA_a"}`},
		{"moderation set_role", sfu.Event{Kind: sfu.EventModerated, Action: "set_role", Publish: true, By: "PA_a"},
			`{"type":"moderation","action":"set_role","publish":true,"by":"PA_a"}`},
		{"limit", sfu.Event{Kind: sfu.EventLimit, Error: "too many tracks"},
			`{"type":"error","code":"limit_exceeded","message":"too many tracks"}`},
	})
	checkWire(t, []webrtc.ICEServer{{URLs: []string{"turn:t.example.org"}, Username: "u", Credential: "p"}}, []wireCase{
		{"joined with ICE servers", sfu.Event{Kind: sfu.EventJoined, Room: "r", Participant: alice},
			`{"type":"joined","room":"r","you":` + aliceJSON + `,"participants":[],` +
				`"ice_servers":[{"credential":"p","credentialType":"password","urls":["turn:t.example.org"],"username":"u"}]}`},
	})
}

// TestEventMessageWireWorkers: a worker's message (a protocol value) goes out as it is.
func TestEventMessageWireWorkers(t *testing.T) {
	checkWire(t, nil, []wireCase{
		{"caption", sfu.Event{Kind: sfu.EventWorker, Message: protocol.Caption{Type: protocol.TypeCaption, Participant: "PA_b",
			Track: "a1", Lang: "en", Text: "hi", Final: true, Start: 1.5, End: 2, Translations: map[string]string{"fr": "salut"}}},
			`{"type":"caption","participant":"PA_b","track":"a1","lang":"en","text":"hi","final":true,"start":1.5,"end":2,"translations":{"fr":"salut"}}`},
	})
	if m := eventMessage(sfu.Event{Kind: sfu.EventWorker}, nil); m != nil {
		t.Errorf("a worker event without a message made %v, want no message", m)
	}
}
