package denoise

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// peer records what the SFU sends a participant.
type peer struct {
	mu     sync.Mutex
	events []sfu.Event
}

func (p *peer) SendDescription(sfu.PC, webrtc.SessionDescription) {}
func (p *peer) SendCandidate(sfu.PC, webrtc.ICECandidateInit)     {}
func (p *peer) End(string)                                        {}
func (p *peer) SendEvent(ev sfu.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

// node starts an SFU on loopback with the denoise worker over reg, and joins one participant to room "r".
func node(t *testing.T, reg *audio.Registry, rooms func(string) sfu.RoomSettings) (*sfu.SFU, *sfu.Participant) {
	t.Helper()
	w := New(Config{Registry: reg, Chain: []string{"ok"}, CanEncode: true})
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}},
		Audio: &sfu.AudioConfig{}, Workers: []sfu.Worker{w}, Rooms: rooms})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	req := sfu.JoinRequest{Room: "r", Identity: "a", CanPublish: true, CanSubscribe: true}
	if rooms != nil && rooms("r").E2EE {
		req.E2EE = "a client that encrypts" // an E2EE room takes no other
	}
	p, err := s.Join(req, &peer{})
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

type nopProcessor struct{}

func (nopProcessor) Process([]int16) error { return nil }
func (nopProcessor) Close() error          { return nil }

func enable(engine string) protocol.Request {
	on := true
	return protocol.Request{Type: protocol.TypeDenoise, Enabled: &on, Engine: engine}
}

// A processor whose factory fails (a model that does not load, a library missing) is refused as unavailable,
// with its reason, and the node goes on: it used to recurse until the whole process died of a stack overflow.
func TestProcessorThatFailsToConstructIsUnavailable(t *testing.T) {
	reg := audio.NewRegistry()
	reg.Register("ok", "works", func() (audio.Processor, error) { return nopProcessor{}, nil })
	reg.Register("broken", "fails to construct", func() (audio.Processor, error) { return nil, errors.New("model did not load") })
	s, p := node(t, reg, nil)

	err := p.Control(protocol.TypeDenoise, enable("broken"))
	if !errors.Is(err, sfu.ErrUnavailable) {
		t.Fatalf("denoise with a processor that fails to construct: %v, want ErrUnavailable", err)
	}
	if want := "model did not load"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("the error %q does not say why (%q)", err, want)
	}
	if err := p.Control(protocol.TypeDenoise, enable("ok")); err != nil {
		t.Fatalf("a working processor after the failed one: %v", err)
	}
	if st := s.Stats(); st.Participants != 1 {
		t.Fatalf("after the refusal the node has %d participants, want 1", st.Participants)
	}
}

// Requests the worker refuses, each with the error the client is told.
func TestDenoiseRefusals(t *testing.T) {
	reg := audio.NewRegistry()
	reg.Register("ok", "works", func() (audio.Processor, error) { return nopProcessor{}, nil })
	_, p := node(t, reg, nil)
	if err := p.Control(protocol.TypeDenoise, enable("nonesuch")); !errors.Is(err, sfu.ErrBadRequest) {
		t.Errorf("an unknown denoiser: %v, want ErrBadRequest", err)
	}
	if err := p.Control(protocol.TypeDenoise, protocol.Request{Type: protocol.TypeDenoise}); !errors.Is(err, sfu.ErrBadRequest) {
		t.Errorf("denoise without enabled: %v, want ErrBadRequest", err)
	}
	var e2ee sfu.RoomSettings
	if err := e2ee.UnmarshalJSON([]byte(`{"e2ee": true}`)); err != nil {
		t.Fatal(err)
	}
	_, q := node(t, reg, func(string) sfu.RoomSettings { return e2ee })
	if err := q.Control(protocol.TypeDenoise, enable("")); !errors.Is(err, sfu.ErrE2EE) {
		t.Errorf("denoise in an end-to-end encrypted room: %v, want ErrE2EE", err)
	}
	if err := q.Control("recording", enable("")); !errors.Is(err, sfu.ErrUnavailable) {
		t.Errorf("a request to a worker the node does not run: %v, want ErrUnavailable", err)
	}
}

// Room settings that cannot run are refused when the node starts.
func TestCheckSettings(t *testing.T) {
	reg := audio.NewRegistry()
	reg.Register("ok", "works", func() (audio.Processor, error) { return nopProcessor{}, nil })
	w := New(Config{Registry: reg})
	for _, c := range []struct {
		json string
		ok   bool
	}{
		{`{"denoise": true}`, true},
		{`{"denoise": true, "processors": ["ok"]}`, true},
		{`{"denoise": true, "e2ee": true}`, false},
		{`{"processors": ["missing"]}`, false},
		{`{"denoise": "yes"}`, false},
	} {
		var s sfu.RoomSettings
		if err := s.UnmarshalJSON([]byte(c.json)); err != nil {
			t.Fatal(err)
		}
		if err := w.CheckSettings(s); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.json, err, c.ok)
		}
	}
}
