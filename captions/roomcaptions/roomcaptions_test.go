package roomcaptions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/captions"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

type nopPeer struct{}

func (nopPeer) SendDescription(sfu.PC, webrtc.SessionDescription) {}
func (nopPeer) SendCandidate(sfu.PC, webrtc.ICECandidateInit)     {}
func (nopPeer) SendEvent(sfu.Event)                               {}
func (nopPeer) End(string)                                        {}

type nopService struct{}

func (nopService) Run(ctx context.Context, _ captions.Job) { <-ctx.Done() }

// join starts a node with the captions worker and joins one participant to room "r".
func join(t *testing.T, settings string) (*Worker, *sfu.Participant) {
	t.Helper()
	w, s := start(t, settings)
	req := sfu.JoinRequest{Room: "r", Identity: "a", CanSubscribe: true}
	if strings.Contains(settings, `"e2ee": true`) {
		req.E2EE = "a client that encrypts" // an E2EE room takes no other
	}
	p, err := s.Join(req, nopPeer{})
	if err != nil {
		t.Fatal(err)
	}
	return w, p
}

// start starts a node with the captions worker.
func start(t *testing.T, settings string) (*Worker, *sfu.SFU) {
	t.Helper()
	w := New(Config{Service: nopService{}})
	var rs sfu.RoomSettings
	if err := json.Unmarshal([]byte(settings), &rs); err != nil {
		t.Fatal(err)
	}
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}},
		Audio: &sfu.AudioConfig{}, Workers: []sfu.Worker{w}, Rooms: func(string) sfu.RoomSettings { return rs }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return w, s
}

func read(langs ...string) protocol.Request {
	return protocol.Request{Type: protocol.TypeCaptions, Languages: append([]string{}, langs...)}
}

// What a captions request may ask for, and what it is told otherwise.
func TestCaptionsRequests(t *testing.T) {
	w, p := join(t, `{}`)
	for _, c := range []struct {
		name string
		req  protocol.Request
		want error
	}{
		{"two languages", read("en", "zh-HK"), nil},
		{"off", read(), nil},
		{"no languages field", protocol.Request{Type: protocol.TypeCaptions}, sfu.ErrBadRequest},
		{"too many", read("en", "fr", "de", "es", "it", "ja", "ko", "zh", "yue"), sfu.ErrBadRequest},
		{"not a tag", read("en; rm -rf"), sfu.ErrBadRequest},
		{"spoken not a tag", protocol.Request{Type: protocol.TypeCaptions, Languages: []string{"en"}, Spoken: "!!"}, sfu.ErrBadRequest},
	} {
		if err := p.Control(protocol.TypeCaptions, c.req); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if vtt, ok := w.Transcript("r", ""); !ok || !strings.HasPrefix(string(vtt), "WEBVTT") {
		t.Errorf("the open room's transcript: %v %q, want an empty WebVTT file", ok, vtt)
	}
	if _, ok := w.Transcript("elsewhere", ""); ok {
		t.Error("a room not on this node has a transcript")
	}

	none := New(Config{})
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, Workers: []sfu.Worker{none}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, err := s.Join(sfu.JoinRequest{Room: "r", Identity: "o", CanSubscribe: true}, nopPeer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Control(protocol.TypeCaptions, read("en")); !errors.Is(err, sfu.ErrUnavailable) {
		t.Errorf("captions on a node without an engine: %v, want ErrUnavailable", err)
	}
	if err := o.Control(protocol.TypeCaptions, read()); err != nil {
		t.Errorf("captions off on a node without an engine: %v, want it taken", err)
	}

	_, ps := start(t, `{}`)
	pub, err := ps.Join(sfu.JoinRequest{Room: "r", Identity: "pub", CanPublish: true}, nopPeer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Control(protocol.TypeCaptions, read("en")); !errors.Is(err, sfu.ErrForbidden) {
		t.Errorf("captions for a participant that may not subscribe: %v, want ErrForbidden", err)
	}

	_, q := join(t, `{"e2ee": true}`)
	if err := q.Control(protocol.TypeCaptions, read("en")); !errors.Is(err, sfu.ErrE2EE) {
		t.Errorf("captions in an end-to-end encrypted room: %v, want ErrE2EE", err)
	}
}

// A caption goes to each reader with the translations it reads, and none of the others; a partial caption has
// an empty translation map, never null.
func TestCaptionMessage(t *testing.T) {
	c := captions.Caption{ParticipantID: "PA_b", TrackID: "a1", Lang: "en", Text: "hi", Final: true,
		Start: 1500 * time.Millisecond, End: 2 * time.Second, Translations: map[string]string{"fr": "salut", "de": "hallo"}}
	for _, tc := range []struct {
		c     captions.Caption
		langs []string
		want  string
	}{
		{c, []string{"fr"}, `{"type":"caption","participant":"PA_b","track":"a1","lang":"en","text":"hi","final":true,"start":1.5,"end":2,"translations":{"fr":"salut"}}`},
		{captions.Caption{ParticipantID: "PA_b", TrackID: "a1", Lang: "en", Text: "h"}, []string{"fr"},
			`{"type":"caption","participant":"PA_b","track":"a1","lang":"en","text":"h","final":false,"start":0,"end":0,"translations":{}}`},
	} {
		b, err := json.Marshal(Message(tc.c, tc.langs))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("got  %s\nwant %s", b, tc.want)
		}
	}
}

// A room's captions policy is "anyone", "admin" or unset.
func TestCaptionsPolicySetting(t *testing.T) {
	w := New(Config{})
	for settings, ok := range map[string]bool{`{}`: true, `{"captions": "anyone"}`: true, `{"captions": "admin"}`: true,
		`{"captions": "everyone"}`: false, `{"captions": true}`: false} {
		var rs sfu.RoomSettings
		if err := json.Unmarshal([]byte(settings), &rs); err != nil {
			t.Fatal(err)
		}
		if err := w.CheckSettings(rs); (err == nil) != ok {
			t.Errorf("%s: %v", settings, err)
		}
	}
}

// When a room with final captions closes, OnTranscript gets its transcript once, as WebVTT; a room without
// any gets nothing.
func TestTranscriptOnClose(t *testing.T) {
	type got struct {
		room sfu.RoomRef
		vtt  string
		cues int
	}
	calls := make(chan got, 4)
	w := New(Config{Service: nopService{}, OnTranscript: func(room sfu.RoomRef, vtt []byte, cues int) {
		calls <- got{room, string(vtt), cues}
	}})
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}},
		Audio: &sfu.AudioConfig{}, Workers: []sfu.Worker{w}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, room := range []string{"spoken", "silent"} {
		p, err := s.Join(sfu.JoinRequest{Room: room, Identity: "a", Name: "Ann", CanSubscribe: true}, nopPeer{})
		if err != nil {
			t.Fatal(err)
		}
		if room == "spoken" {
			w.mu.Lock()
			rw := w.rooms[room]
			w.mu.Unlock()
			rw.mu.Lock()
			rw.names[p.ID()] = "Ann"
			rw.mu.Unlock()
			rw.deliver(captions.Caption{ParticipantID: p.ID(), Lang: "en", Text: "hello there", Final: true, End: time.Second})
			rw.deliver(captions.Caption{ParticipantID: p.ID(), Lang: "en", Text: "hel", Final: false, End: time.Second})
		}
		p.Close()
	}
	select {
	case c := <-calls:
		if c.room.Name != "spoken" || !strings.HasPrefix(c.room.ID, "RM_") || c.cues != 1 ||
			!strings.HasPrefix(c.vtt, "WEBVTT") || !strings.Contains(c.vtt, "hello there") {
			t.Errorf("transcript %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no transcript when the room closed")
	}
	select {
	case c := <-calls:
		t.Errorf("another transcript: %+v", c)
	default:
	}
}
