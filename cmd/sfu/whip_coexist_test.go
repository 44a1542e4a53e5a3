package main

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// whipPublish publishes a VP8 and an Opus track named videoID and audioID (stream "obs", as OBS names them) with
// WHIP and feeds them until m stops; noMsid takes the msid lines out of the offer, as some encoders send it. It
// returns the session's Location.
func whipPublish(t *testing.T, n *node, m *mediaRun, api *webrtc.API, tok, room, videoID, audioID string, noMsid bool) string {
	t.Helper()
	pub, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, videoID, "obs")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, audioID, "obs")
	var wantKey atomic.Bool
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		s, err := pub.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				pkts, _, err := s.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						wantKey.Store(true)
					}
				}
			}
		}()
	}
	offer := gatheredOffer(t, pub)
	if noMsid {
		var kept []string
		for _, l := range strings.SplitAfter(offer, "\n") {
			if !strings.Contains(l, "msid") {
				kept = append(kept, l)
			}
		}
		offer = strings.Join(kept, "")
	}
	resp, answer := httpOffer(t, n.baseURL()+"/whip/"+room, tok, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %s: %s", resp.Status, answer)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/whip/"+room+"/") || resp.Header.Get("Content-Type") != "application/sdp" {
		t.Fatalf("WHIP answer: Location %q, Content-Type %q", loc, resp.Header.Get("Content-Type"))
	}
	if err := pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	feedWHIP(m, audio, video, &wantKey, 640, 360)
	return resp.Header.Get("Location")
}

func sessionID(location string) string { return location[strings.LastIndex(location, "/")+1:] }

// TestWHIPWHEPOneToken: one token (one identity) publishes with WHIP and watches with WHEP; the sessions coexist:
// the WHEP player receives, the publication goes on, and each DELETE ends its own session. A WebSocket session
// of that identity does not end them either; a second WebSocket session of it still replaces the first.
func TestWHIPWHEPOneToken(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feeds := startMedia(t, ctx)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	viewer := joinClient(t, ctx, n, "studio", "viewer")
	tok := token(t, "studio", "host", true, true)
	whipLocation := whipPublish(t, n, feeds, api, tok, "studio", "obs-video", "obs-audio", false)
	whipID := sessionID(whipLocation)
	eventually(t, 10*time.Second, "the viewer receives the WHIP publication", func() bool { return receivesFrom(viewer, whipID, 20) })

	player, got := newPlayer(t, api, webrtc.Configuration{})
	resp, answer := httpOffer(t, n.baseURL()+"/whep/studio", tok, "application/sdp", gatheredOffer(t, player))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST with the publisher's token: %s: %s", resp.Status, answer)
	}
	whepLocation := resp.Header.Get("Location")
	if err := player.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the WHEP player of the publisher's identity receives audio and video", func() bool {
		return got[0].Load() > 20 && got[1].Load() > 20
	})
	before := viewer.stats(whipID, "video").packets.Load()
	eventually(t, 5*time.Second, "the WHIP publication goes on beside the WHEP session", func() bool {
		return viewer.stats(whipID, "video").packets.Load() > before+20
	})

	// A WebSocket session of the same identity joins beside them; a second one replaces it, not them.
	ws1 := joinClientToken(t, ctx, n, tok)
	ws2 := joinClientToken(t, ctx, n, tok)
	eventually(t, 10*time.Second, "the second WebSocket session receives the WHIP publication", func() bool {
		return receivesFrom(ws2, whipID, 20)
	})
	eventually(t, 5*time.Second, "the first WebSocket session is replaced", func() bool {
		return n.sfu.Stats().Participants == 4 // viewer, WHIP, WHEP, ws2
	})
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, viewer.events, func(m client.Message) bool {
		return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == ws1.ID()
	}); err != nil {
		t.Fatalf("the viewer was not told the replaced WebSocket session left: %v", err)
	}
	v, a := got[1].Load(), got[0].Load()
	eventually(t, 5*time.Second, "the WHEP player still receives", func() bool { return got[1].Load() > v+20 && got[0].Load() > a+20 })

	if code := httpDo(t, http.MethodDelete, n.baseURL()+whipLocation, tok); code != http.StatusOK {
		t.Fatalf("WHIP DELETE: %d, want 200", code)
	}
	if code := httpDo(t, http.MethodDelete, n.baseURL()+whepLocation, tok); code != http.StatusOK {
		t.Fatalf("WHEP DELETE: %d, want 200", code)
	}
	eventually(t, 5*time.Second, "the viewer and the WebSocket session are left", func() bool { return n.sfu.Stats().Participants == 2 })
}

// TestWHIPSameTrackNames: publishers whose clients name their tracks alike (OBS: "video" and "audio"), or not at
// all (no msid), publish into one room; a WebSocket subscriber receives every publisher's audio and video, and
// sees distinct track ids.
func TestWHIPSameTrackNames(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feeds := startMedia(t, ctx)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	viewer := joinClient(t, ctx, n, "stage", "viewer")
	var ids []string
	for _, c := range []struct {
		identity string
		noMsid   bool
	}{{"cam1", false}, {"cam2", false}, {"cam3", true}} {
		loc := whipPublish(t, n, feeds, api, token(t, "stage", c.identity, true, false), "stage", "video", "audio", c.noMsid)
		ids = append(ids, sessionID(loc))
	}
	eventually(t, 15*time.Second, "the viewer receives each WHIP publisher's audio and video", func() bool {
		for _, id := range ids {
			if !receivesFrom(viewer, id, 20) {
				return false
			}
		}
		return true
	})
}
