package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// withCandidates adds n host candidates at private addresses (allowed by default: only their number is wrong)
// after the first section's mid line of an offer.
func withCandidates(t *testing.T, offer string, n int) string {
	t.Helper()
	i := strings.Index(offer, "a=mid:")
	if i < 0 {
		t.Fatalf("the offer has no mid:\n%s", offer)
	}
	i += strings.Index(offer[i:], "\r\n") + 2
	var b strings.Builder
	for k := range n {
		fmt.Fprintf(&b, "a=candidate:%d 1 udp 2130706431 10.9.%d.%d 40000 typ host\r\n", k, k/250, k%250+1)
	}
	return offer[:i] + b.String() + offer[i:]
}

// manyAudioOffer is a WHEP offer with n recvonly audio sections in one bundle, each as short as Pion takes it.
func manyAudioOffer(n int) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"a=fingerprint:sha-256 3C:4A:8F:6E:0B:1D:29:4E:7D:99:5A:E0:8B:5D:73:22:63:1F:C7:0E:9D:41:5B:08:AD:2E:7F:13:66:85:94:C1\r\n" +
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=group:BUNDLE")
	for i := range n {
		fmt.Fprintf(&b, " %d", i)
	}
	b.WriteString("\r\n")
	for i := range n {
		fmt.Fprintf(&b, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\na=mid:%d\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n", i)
	}
	return b.String()
}

// TestOfferCandidateLimit (pen test finding 6): a description naming 300 ICE candidates is refused before the
// SFU checks any of them, whichever way it comes: a publish offer over the WebSocket (bad_sdp), a WHIP or a WHEP
// offer (400); the error names the candidates. A browser's offer, with its few candidates, is still taken.
func TestOfferCandidateLimit(t *testing.T) {
	n := startTestNode(t)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}

	conn, joined := rawJoin(t, n, token(t, "cands", "mallory", true, false))
	if joined["type"] != "joined" {
		t.Fatal(joined)
	}
	publish := withCandidates(t, gatheredOfferFor(t, api), 300)
	if len(publish) < 15<<10 {
		t.Fatalf("the offer is %d bytes, not the finding's 18 KB", len(publish))
	}
	if err := conn.WriteJSON(map[string]string{"type": "offer", "pc": "publish", "sdp": publish}); err != nil {
		t.Fatal(err)
	}
	m := readUntil(t, conn, "answer", "error")
	if m["type"] != "error" || m["code"] != "bad_sdp" || !strings.Contains(fmt.Sprint(m["message"]), "candidates") {
		t.Errorf("a publish offer with 300 candidates: got %s %v %.120q, want a bad_sdp error naming the candidates", m["type"], m["code"], fmt.Sprint(m["message"], m["sdp"]))
	}

	player, _ := newPlayer(t, api, webrtc.Configuration{})
	for _, c := range []struct{ path, tok, offer string }{
		{"/whip/cands", token(t, "cands", "obs", true, false), publish},
		{"/whep/cands", token(t, "cands", "player", false, true), withCandidates(t, gatheredOffer(t, player), 300)},
	} {
		resp, body := httpOffer(t, n.baseURL()+c.path, c.tok, "application/sdp", c.offer)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "candidates") {
			t.Errorf("POST %s with 300 candidates: %s %.120q, want 400 naming the candidates", c.path, resp.Status, body)
		}
	}
	if st := n.sfu.Stats(); st.Participants != 1 {
		t.Errorf("%d participants, want mallory alone: the refused WHIP and WHEP offers made sessions", st.Participants)
	}

	// A real offer, with its own candidates, is answered.
	resp, body := httpOffer(t, n.baseURL()+"/whip/cands", token(t, "cands", "obs", true, false), "application/sdp", gatheredOfferFor(t, api))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("a real WHIP offer: %s %.200q", resp.Status, body)
	}
}

// TestWHEPOfferChecked (pen test finding 10): a WHEP offer with 800 audio sections is refused with a 4xx that
// says why, and no session (participant, room) is left; the node then serves a real WHEP player.
func TestWHEPOfferChecked(t *testing.T) {
	n := startTestNode(t)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	offer := manyAudioOffer(800)
	if len(offer) > 128<<10 {
		t.Fatalf("the offer is %d bytes: over the HTTP limit, it would not reach the SDP checks", len(offer))
	}
	watch := token(t, "whep", "player", false, true)
	start := time.Now()
	resp, body := httpOffer(t, n.baseURL()+"/whep/whep", watch, "application/sdp", offer)
	t.Logf("800 sections: %s %.120q in %v", resp.Status, strings.TrimSpace(body), time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "media sections") {
		t.Errorf("a WHEP offer with 800 audio sections: %s %.120q, want 400 or 413 naming the media sections", resp.Status, body)
	}
	if resp.StatusCode == http.StatusCreated {
		_ = httpDo(t, http.MethodDelete, n.baseURL()+resp.Header.Get("Location"), watch)
	}
	if st := n.sfu.Stats(); st.Participants != 0 || st.Rooms != 0 {
		t.Errorf("after the refused offer: %d participants in %d rooms, want none", st.Participants, st.Rooms)
	}

	player, _ := newPlayer(t, api, webrtc.Configuration{})
	resp, body = httpOffer(t, n.baseURL()+"/whep/whep", watch, "application/sdp", gatheredOffer(t, player))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("a real WHEP offer: %s %.200q", resp.Status, body)
	}
}
