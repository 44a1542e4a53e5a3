package sfu

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/sfu/transport"
)

// insertCandidates adds candidate lines after the first mid line of a description.
func insertCandidates(t *testing.T, sdp string, lines ...string) string {
	t.Helper()
	i := strings.Index(sdp, "a=mid:")
	if i < 0 {
		t.Fatalf("no mid in:\n%s", sdp)
	}
	i += strings.Index(sdp[i:], "\r\n") + 2
	return sdp[:i] + strings.Join(lines, "") + sdp[i:]
}

// remoteCandidates returns the addresses of the remote candidates a connection's ICE agent knows.
func remoteCandidates(pc *webrtc.PeerConnection) map[string]bool {
	got := map[string]bool{}
	for _, s := range pc.GetStats() {
		if c, ok := s.(webrtc.ICECandidateStats); ok && c.Type == webrtc.StatsTypeRemoteCandidate {
			got[c.IP] = true
		}
	}
	return got
}

// TestRemoteCandidatesFiltered (pen test finding 6): a subscribe answer naming 300 candidates is refused with an
// error that says so; then, of the candidates in an answer and trickled ones, those at link-local, multicast,
// unspecified or broadcast addresses are dropped without an error, and the others (private, and loopback on a
// node that is itself on loopback) reach the ICE agent.
func TestRemoteCandidatesFiltered(t *testing.T) {
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
	offers := peer.sent()
	if len(offers) != 1 {
		t.Fatalf("%d subscribe offers, want 1", len(offers))
	}
	ans := answer(t, client, offers[0])

	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprintf("a=candidate:%d 1 udp 2130706431 10.1.%d.%d 5000 typ host\r\n", i, i/250, i%250+1)
	}
	if err := p.HandleAnswer(insertCandidates(t, ans, many...)); !errors.Is(err, ErrBadSDP) || !strings.Contains(err.Error(), "candidates") {
		t.Fatalf("an answer with 300 candidates: %v, want ErrBadSDP naming the candidates", err)
	}

	withBad := insertCandidates(t, ans,
		"a=candidate:1 1 udp 2130706431 169.254.10.1 5001 typ host\r\n",
		"a=candidate:2 1 udp 2130706431 10.20.30.40 5002 typ host\r\n",
		"a=candidate:3 1 udp 2130706431 239.1.2.3 5003 typ host\r\n")
	if err := p.HandleAnswer(withBad); err != nil {
		t.Fatalf("an answer with a link-local and a multicast candidate: %v, want them dropped and the answer taken", err)
	}
	dropped := []string{"169.254.1.1", "224.0.0.1", "0.0.0.0", "255.255.255.255", "fe80::1", "ff02::1", "::"}
	kept := []string{"10.0.0.1", "127.0.0.1", "198.51.100.7"}
	for i, ip := range append(dropped, kept...) {
		c := webrtc.ICECandidateInit{Candidate: fmt.Sprintf("candidate:%d 1 udp 2130706431 %s %d typ host", 10+i, ip, 6000+i)}
		if err := p.AddCandidate(SubscribePC, c); err != nil {
			t.Errorf("trickled candidate at %s: %v, want no error", ip, err)
		}
	}
	want := append([]string{"10.20.30.40"}, kept...)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := remoteCandidates(p.sub)
		missing := 0
		for _, ip := range want {
			if !got[ip] {
				missing++
			}
		}
		if missing == 0 {
			for _, ip := range append(dropped, "169.254.10.1", "239.1.2.3") {
				if got[ip] {
					t.Errorf("the candidate at %s reached the ICE agent", ip)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s the ICE agent knows %v, want %v among them", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCandidateFilter: which addresses the SFU sends connectivity checks to, on a node on loopback or not, with
// private addresses dropped or not.
func TestCandidateFilter(t *testing.T) {
	const (
		never = iota
		always
		onLoopback // only when the node is on loopback itself
		public     // unless private candidates are dropped
	)
	for _, c := range []struct {
		addr string
		want int
	}{
		{"169.254.1.1", never}, {"224.0.0.1", never}, {"239.255.255.250", never}, {"0.0.0.0", never}, {"0.1.2.3", never},
		{"255.255.255.255", never}, {"::", never}, {"fe80::1", never}, {"ff02::1", never}, {"::ffff:169.254.1.1", never},
		{"example.org", never}, {"127.0.0.1", onLoopback}, {"127.1.2.3", onLoopback}, {"::1", onLoopback},
		{"::ffff:127.0.0.1", onLoopback}, {"10.0.0.1", public}, {"172.16.5.4", public}, {"192.168.1.20", public},
		{"fd00::1", public}, {"198.51.100.7", always}, {"2001:db8::1", always}, {"1f2b3c4d-aaaa.local", always},
	} {
		cand := "candidate:1 1 udp 2130706431 " + c.addr + " 5000 typ host"
		for _, f := range []candidateFilter{{}, {loopback: true}, {private: true}, {loopback: true, private: true}} {
			want := c.want == always || c.want == onLoopback && f.loopback || c.want == public && !f.private
			if got := f.allows(cand); got != want {
				t.Errorf("%+v allows %s: %v, want %v", f, c.addr, got, want)
			}
		}
	}
	for _, bad := range []string{"", "candidate:", "candidate:1 1 udp x 10.0.0.1 5000 typ host", "not a candidate"} {
		if (candidateFilter{loopback: true}).allows(bad) {
			t.Errorf("the unparsable candidate %q is allowed", bad)
		}
	}
}

// TestHTTPJoinSlot (pen test finding 10): WHIP and WHEP joins take a join slot as WebSocket joins do: with every
// slot taken they get ErrBusy, and a WHEP join frees its slot once answered.
func TestHTTPJoinSlot(t *testing.T) {
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, MaxConcurrentJoins: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}

	s.joinSlots <- struct{}{} // a join is being set up
	if _, _, err := s.JoinWHEP(JoinRequest{Room: "r", Identity: "w"}, fuzzPeer{}, offer.SDP); !errors.Is(err, ErrBusy) {
		t.Errorf("WHEP with every slot taken: %v, want ErrBusy", err)
	}
	if _, _, err := s.JoinWHIP(JoinRequest{Room: "r", Identity: "p", CanPublish: true}, fuzzPeer{}, offer.SDP); !errors.Is(err, ErrBusy) {
		t.Errorf("WHIP with every slot taken: %v, want ErrBusy", err)
	}
	<-s.joinSlots
	p, _, err := s.JoinWHEP(JoinRequest{Room: "r", Identity: "w"}, fuzzPeer{}, offer.SDP)
	if err != nil {
		t.Fatalf("WHEP with a free slot: %v", err)
	}
	defer p.Close()
	if n := len(s.joinSlots); n != 0 {
		t.Errorf("%d join slots still taken after the WHEP answer", n)
	}
}
