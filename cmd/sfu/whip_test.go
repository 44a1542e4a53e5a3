package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/sfu/cluster"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// httpOffer posts an offer the WHIP/WHEP way and returns the response, its body and the Location.
func httpOffer(t *testing.T, url, token, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func httpDo(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// gatheredOffer makes pc's offer with all its candidates, as WHIP and WHEP clients send it.
func gatheredOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		t.Fatal("gathering took over 5 s")
	}
	return pc.LocalDescription().SDP
}

// TestWHIPAndWHEP: a Pion client publishes with WHIP, a WebSocket participant and a WHEP player both receive
// its audio and video, and DELETE on each Location ends that session. Bad requests get clear HTTP errors.
func TestWHIPAndWHEP(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feeds := startMedia(t, ctx)
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	viewer := joinClient(t, ctx, n, "live", "ws-viewer")

	// WHIP publisher.
	pubTok := token(t, "live", "obs", true, false)
	whipLocation := whipPublish(t, n, feeds, api, pubTok, "live", "obs-video", "obs-audio", false)

	whipID := sessionID(whipLocation)
	eventually(t, 10*time.Second, "the WebSocket viewer receives the WHIP publisher's audio and video", func() bool {
		return receivesFrom(viewer, whipID, 20)
	})

	// WHEP player.
	player, got := newPlayer(t, api, webrtc.Configuration{})
	watchTok := token(t, "live", "player", false, true)
	resp, answer := httpOffer(t, n.baseURL()+"/whep/live", watchTok, "application/sdp", gatheredOffer(t, player))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %s: %s", resp.Status, answer)
	}
	whepLocation := resp.Header.Get("Location")
	if err := player.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the WHEP player receives audio and video", func() bool {
		return got[0].Load() > 20 && got[1].Load() > 20
	})

	// Bad requests.
	offer := gatheredOfferFor(t, api)
	relayTok, err := cluster.RelayToken([]byte(testSecret), "", "hk-b")("live", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, token, ctype, body string
		want                           int
	}{
		{"no token", "/whip/live", "", "application/sdp", offer, http.StatusUnauthorized},
		{"forged token", "/whip/live", "e30.e30.e30", "application/sdp", offer, http.StatusUnauthorized},
		{"token for another room", "/whip/other", pubTok, "application/sdp", offer, http.StatusForbidden},
		{"publish without the right", "/whip/live", watchTok, "application/sdp", offer, http.StatusForbidden},
		{"watch without the right", "/whep/live", pubTok, "application/sdp", offer, http.StatusForbidden},
		{"a node's relay token (the relay joins over the WebSocket, where it is checked)", "/whip/live", relayTok, "application/sdp", offer, http.StatusForbidden},
		{"not sdp", "/whip/live", pubTok, "application/json", `{"sdp":1}`, http.StatusUnsupportedMediaType},
		{"garbage sdp", "/whip/live", token(t, "live", "other", true, false), "application/sdp", "v=0 nonsense", http.StatusBadRequest},
		{"garbage sdp to whep", "/whep/live", watchTok, "application/sdp", "v=0 nonsense", http.StatusBadRequest},
		{"offer too large", "/whip/live", pubTok, "application/sdp", strings.Repeat("a", 200<<10), http.StatusRequestEntityTooLarge},
	} {
		resp, body := httpOffer(t, n.baseURL()+c.path, c.token, c.ctype, c.body)
		if resp.StatusCode != c.want || strings.TrimSpace(body) == "" {
			t.Errorf("%s: %s %q, want %d with a reason", c.name, resp.Status, body, c.want)
		}
	}
	if code := httpDo(t, http.MethodPatch, n.baseURL()+whipLocation, pubTok); code != http.StatusMethodNotAllowed {
		t.Errorf("PATCH (trickle): %d, want 405", code)
	}
	if code := httpDo(t, http.MethodDelete, n.baseURL()+"/whip/live/PA_NOPE", pubTok); code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown session: %d, want 404", code)
	}
	if code := httpDo(t, http.MethodDelete, n.baseURL()+whipLocation, watchTok); code != http.StatusForbidden {
		t.Errorf("DELETE with another identity's token: %d, want 403", code)
	}
	if !receivesFrom(viewer, whipID, 20) || got[1].Load() == 0 {
		t.Fatal("the sessions did not survive the bad requests")
	}

	// DELETE ends each session.
	if code := httpDo(t, http.MethodDelete, n.baseURL()+whepLocation, watchTok); code != http.StatusOK {
		t.Fatalf("WHEP DELETE: %d", code)
	}
	eventually(t, 10*time.Second, "the WHEP player's connection closes", func() bool {
		s := player.ConnectionState()
		return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
	})
	if code := httpDo(t, http.MethodDelete, n.baseURL()+whipLocation, pubTok); code != http.StatusOK {
		t.Fatalf("WHIP DELETE: %d", code)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, viewer.events, func(m client.Message) bool {
		return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == whipID
	}); err != nil {
		t.Fatalf("the viewer was not told the WHIP publisher left: %v", err)
	}
	eventually(t, 5*time.Second, "only the viewer is left", func() bool { return n.sfu.Stats().Participants == 1 })
}

// gatheredOfferFor makes a valid sendonly offer from a throwaway connection.
func gatheredOfferFor(t *testing.T, api *webrtc.API) string {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	return gatheredOffer(t, pc)
}

// newPlayer is a WHEP player's peer connection: one recvonly audio and one recvonly video transceiver, and a
// count of the packets each receives (audio, video). It is closed when the test ends.
func newPlayer(t *testing.T, api *webrtc.API, cfg webrtc.Configuration) (*webrtc.PeerConnection, *[2]atomic.Int64) {
	t.Helper()
	player, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = player.Close() })
	var got [2]atomic.Int64 // audio, video packets
	player.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		k := 0
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			k = 1
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			got[k].Add(1)
		}
	})
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := player.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	return player, &got
}

// feedWHIP feeds a WHIP publisher's tracks as an encoder would, until m stops: Opus every 20 ms, VP8 at 25 fps
// with a keyframe every 6 s and when wantKey is set.
func feedWHIP(m *mediaRun, audio, video *webrtc.TrackLocalStaticSample, wantKey *atomic.Bool, width, height int) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var vbuf, abuf []byte
		for i := uint32(0); ; i++ {
			select {
			case <-m.ctx.Done():
				return
			case <-tick.C:
			}
			abuf = synth.OpusFrame(abuf, 80, synth.Stamp{Seq: i, Sent: time.Now()})
			_ = audio.WriteSample(media.Sample{Data: abuf, Duration: 20 * time.Millisecond})
			if i%2 == 0 {
				key := i%150 == 0 || wantKey.Swap(false)
				vbuf = synth.VP8Frame(vbuf, 3000, key, width, height, synth.Stamp{Seq: i, Sent: time.Now()})
				_ = video.WriteSample(media.Sample{Data: vbuf, Duration: 40 * time.Millisecond})
			}
		}
	}()
}
