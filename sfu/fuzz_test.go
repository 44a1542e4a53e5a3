package sfu

import (
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// fuzzPeer is a signaling connection that drops everything.
type fuzzPeer struct{}

func (fuzzPeer) SendDescription(PC, webrtc.SessionDescription) {}
func (fuzzPeer) SendCandidate(PC, webrtc.ICECandidateInit)     {}
func (fuzzPeer) SendEvent(Event)                               {}
func (fuzzPeer) End(string)                                    {}

// browserOffer is a publish offer as Chrome makes it: Opus, and VP8 in three simulcast layers named by rid.
const browserOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS stream\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Hh4F\r\n" +
	"a=ice-pwd:kWl8WwB2gQ4Y3bqxV0uXrC3a\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 3C:4A:8F:6E:0B:1D:29:4E:7D:99:5A:E0:8B:5D:73:22:63:1F:C7:0E:9D:41:5B:08:AD:2E:7F:13:66:85:94:C1\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=sendonly\r\n" +
	"a=msid:stream mic\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n" +
	"a=ssrc:1001 cname:f1l2yS3kNpX9lq0A\r\n" +
	"a=ssrc:1001 msid:stream mic\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 98 99\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Hh4F\r\n" +
	"a=ice-pwd:kWl8WwB2gQ4Y3bqxV0uXrC3a\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 3C:4A:8F:6E:0B:1D:29:4E:7D:99:5A:E0:8B:5D:73:22:63:1F:C7:0E:9D:41:5B:08:AD:2E:7F:13:66:85:94:C1\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:13 urn:3gpp:video-orientation\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n" +
	"a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n" +
	"a=sendonly\r\n" +
	"a=msid:stream camera\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 goog-remb\r\n" +
	"a=rtcp-fb:96 transport-cc\r\n" +
	"a=rtcp-fb:96 ccm fir\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtcp-fb:96 nack pli\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 goog-remb\r\n" +
	"a=rtcp-fb:102 transport-cc\r\n" +
	"a=rtcp-fb:102 ccm fir\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:98 VP9/90000\r\n" +
	"a=rtcp-fb:98 nack\r\n" +
	"a=fmtp:98 profile-id=0\r\n" +
	"a=rtpmap:99 rtx/90000\r\n" +
	"a=fmtp:99 apt=98\r\n" +
	"a=rid:q send\r\n" +
	"a=rid:h send\r\n" +
	"a=rid:f send\r\n" +
	"a=simulcast:send q;h;f\r\n"

// manyVideoOffer is an offer with n video m-lines in one bundle, one VP8 track each.
func manyVideoOffer(n int) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " %d", i)
	}
	b.WriteString("\r\na=msid-semantic: WMS s\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"+
			"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"+
			"a=fingerprint:sha-256 3C:4A:8F:6E:0B:1D:29:4E:7D:99:5A:E0:8B:5D:73:22:63:1F:C7:0E:9D:41:5B:08:AD:2E:7F:13:66:85:94:C1\r\n"+
			"a=setup:actpass\r\na=mid:%d\r\na=sendonly\r\na=msid:s v%d\r\na=rtcp-mux\r\n"+
			"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=ssrc:%d cname:x\r\n", i, i, 5000+i)
	}
	return b.String()
}

// offerSeeds are a browser's offer and variants of it: too many tracks, no ICE credentials, truncated, garbled.
func offerSeeds() []string {
	noICE := browserOffer
	for _, attr := range []string{"a=ice-ufrag:Hh4F\r\n", "a=ice-pwd:kWl8WwB2gQ4Y3bqxV0uXrC3a\r\n"} {
		noICE = strings.ReplaceAll(noICE, attr, "")
	}
	seeds := []string{
		browserOffer,
		manyVideoOffer(9),
		strings.Replace(manyVideoOffer(9), "a=sendonly\r\n", "a=inactive\r\n", 1), // eight sending
		noICE,
		browserOffer[:len(browserOffer)/2], // cut mid-m-line
		browserOffer[:strings.Index(browserOffer, "m=video")],        // audio only, bundle names a missing mid
		browserOffer[:strings.Index(browserOffer, "a=simulcast")+14], // a cut simulcast attribute
		strings.ReplaceAll(browserOffer, "\r\n", "\n"),               // bare line feeds
		strings.Replace(browserOffer, "m=video 9", "m=video x", 1),   // bad port
		strings.ReplaceAll(browserOffer, "a=mid:1", "a=mid:0"),       // the same mid twice
		strings.ReplaceAll(browserOffer, "a=sendonly", "a=recvonly"), // wants to receive on the publish side
		strings.ReplaceAll(browserOffer, "a=setup:actpass", "a=setup:passive"),
		strings.ReplaceAll(browserOffer, "a=fingerprint:sha-256 ", "a=fingerprint:md5 "),
		strings.ReplaceAll(browserOffer, "a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8"), // no clock rate
		strings.Replace(browserOffer, "a=simulcast:send q;h;f", "a=simulcast:send q;h;f;q;x;~", 1),
		strings.Replace(browserOffer, "v=0", "v=1", 1),
		"v=0\r\n",
		"",
		"\x00\xff garbage \r\n m=",
	}
	return seeds
}

// offerTimeout bounds the handling of one offer.
const offerTimeout = 2 * time.Second

// FuzzOffer sends arbitrary SDP as a participant's publish offer, through the path the signaling layer takes
// (SFU.Join, Participant.HandleOffer on a publish connection of the SFU's own API): it must return an answer or
// an ErrBadSDP error, promptly, and never panic.
func FuzzOffer(f *testing.F) {
	for _, s := range offerSeeds() {
		f.Add(s)
	}
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })

	f.Fuzz(func(t *testing.T, offer string) {
		// within runs fn, failing the test (and leaving fn's goroutine behind) if it takes more than offerTimeout.
		within := func(what string, fn func()) {
			t.Helper()
			done := make(chan struct{})
			go func() {
				defer close(done)
				fn()
			}()
			select {
			case <-done:
			case <-time.After(offerTimeout):
				t.Fatalf("%s took more than %v on the offer %q\ngoroutines:\n%s", what, offerTimeout, offer, goroutines())
			}
		}
		var p *Participant
		var err error
		within("Join", func() {
			p, err = s.Join(JoinRequest{Room: "fuzz", Identity: "publisher", CanPublish: true, CanSubscribe: true}, fuzzPeer{})
		})
		if err != nil {
			t.Fatal(err)
		}
		var answer webrtc.SessionDescription
		within("HandleOffer", func() { answer, err = p.HandleOffer(offer) })
		within("Close after HandleOffer", p.Close)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrForbidden) &&
				!errors.Is(err, ErrBadRequest) {
				t.Errorf("refused with %v: none of the errors the signaling layer reports as the client's fault", err)
			}
			return
		}
		if answer.Type != webrtc.SDPTypeAnswer || answer.SDP == "" {
			t.Fatalf("no error and no answer: %+v", answer)
		}
		parsed, err := answer.Unmarshal()
		if err != nil {
			t.Fatalf("the answer does not parse: %v\n%s", err, answer.SDP)
		}
		if n := receiving(parsed); n > maxPublishedTracks {
			t.Errorf("the answer agrees to receive %d tracks; at most %d may be published (checkOffer counts the "+
				"offer's m-lines otherwise than Pion does)\noffer:\n%s\nanswer:\n%s", n, maxPublishedTracks, offer, answer.SDP)
		}
	})
}

// receiving counts the audio and video m-lines of an answer on which the SFU agrees to receive media.
func receiving(answer *sdp.SessionDescription) int {
	n := 0
	for _, m := range answer.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "sendrecv" {
				n++
				break
			}
		}
	}
	return n
}

// goroutines is a dump of every goroutine's stack, for a test that hangs.
func goroutines() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}
