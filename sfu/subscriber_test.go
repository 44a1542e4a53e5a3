package sfu

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/sfu/transport"
)

// recordingPeer keeps the descriptions the SFU sends a participant.
type recordingPeer struct {
	mu     sync.Mutex
	offers []webrtc.SessionDescription // subscribe offers, in order
}

func (r *recordingPeer) SendDescription(pc PC, sd webrtc.SessionDescription) {
	if pc != SubscribePC {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offers = append(r.offers, sd)
}
func (r *recordingPeer) SendCandidate(PC, webrtc.ICECandidateInit) {}
func (r *recordingPeer) SendEvent(Event)                           {}
func (r *recordingPeer) End(string)                                {}

func (r *recordingPeer) sent() []webrtc.SessionDescription {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webrtc.SessionDescription(nil), r.offers...)
}

// joinRecorded starts a node and joins one participant whose signaling is recorded.
func joinRecorded(t *testing.T) (*Participant, *recordingPeer) {
	t.Helper()
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	peer := &recordingPeer{}
	p, err := s.Join(JoinRequest{Room: "r", Identity: "a", CanSubscribe: true}, peer)
	if err != nil {
		t.Fatal(err)
	}
	return p, peer
}

// answer is what a client answers to an offer.
func answer(t *testing.T, client *webrtc.PeerConnection, offer webrtc.SessionDescription) string {
	t.Helper()
	if err := client.SetRemoteDescription(offer); err != nil {
		t.Fatal(err)
	}
	a, err := client.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	return a.SDP
}

func iceUfrag(sdp string) string {
	for _, line := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// The SFU never has two subscribe offers out at once: a change while one awaits its answer is offered once the
// answer comes; an ICE restart asked for meanwhile rides on that next offer; an answer nobody asked for is
// refused.
func TestSubscribeNegotiation(t *testing.T) {
	p, peer := joinRecorded(t)
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := p.sub.CreateDataChannel("probe", nil); err != nil { // something to negotiate
		t.Fatal(err)
	}

	p.negotiate()
	p.negotiate() // while the first awaits its answer
	if err := p.RestartICE(); err != nil {
		t.Fatal(err)
	}
	offers := peer.sent()
	if len(offers) != 1 {
		t.Fatalf("%d offers out before any answer, want 1", len(offers))
	}
	if err := p.HandleAnswer(answer(t, client, offers[0])); err != nil {
		t.Fatalf("answer to the first offer: %v", err)
	}
	// The restart may wait for the first offer's candidates to be gathered (negotiate): a few milliseconds.
	for deadline := time.Now().Add(5 * time.Second); len(peer.sent()) < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	offers = peer.sent()
	if len(offers) != 2 {
		t.Fatalf("after the answer, %d offers in all; want the pending one sent (2)", len(offers))
	}
	if a, b := iceUfrag(offers[0].SDP), iceUfrag(offers[1].SDP); a == "" || a == b {
		t.Fatalf("the ICE restart asked for meanwhile did not ride on the next offer: ufrag %q then %q", a, b)
	}
	if err := p.HandleAnswer(answer(t, client, offers[1])); err != nil {
		t.Fatalf("answer to the second offer: %v", err)
	}
	if err := p.HandleAnswer(answer(t, client, offers[1])); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("an answer with no offer pending: %v, want ErrOutOfOrder", err)
	}
	if n := len(peer.sent()); n != 2 {
		t.Fatalf("%d offers after everything was answered, want 2", n)
	}
}

// Candidates that come before their connection has a remote description are held, up to a bound.
func TestCandidatesHeldUntilDescription(t *testing.T) {
	p, _ := joinRecorded(t)
	c := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"}
	for i := 0; i < maxHeldCandidates; i++ {
		if err := p.AddCandidate(PublishPC, c); err != nil {
			t.Fatalf("candidate %d before the offer: %v", i, err)
		}
	}
	if err := p.AddCandidate(PublishPC, c); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("candidate %d before the offer: %v, want ErrBadRequest", maxHeldCandidates+1, err)
	}
	if err := p.AddCandidate(PublishPC, webrtc.ICECandidateInit{}); err != nil {
		t.Fatalf("end of candidates: %v", err)
	}
}

// A relay's layer track ids name the video and the layer, and nothing else parses as one.
func TestRelayLayerTrackID(t *testing.T) {
	for _, id := range []string{"camera", "PA_x-0", "9d1c~2x"} {
		for l := range 3 {
			got, layer, ok := ParseRelayLayerTrackID(RelayLayerTrackID(id, l))
			if !ok || got != id || layer != l {
				t.Errorf("%q layer %d: parsed as %q, %d, %v", id, l, got, layer, ok)
			}
		}
	}
	for _, id := range []string{"camera", "camera~3", "camera~", "~x", "camera~10"} {
		if _, _, ok := ParseRelayLayerTrackID(id); ok {
			t.Errorf("%q parsed as a layer track", id)
		}
	}
}
