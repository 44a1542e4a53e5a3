package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// followPlayer is a WHEP player (one recvonly audio and one recvonly video section) that records what each of its
// two tracks receives: packets, how many tracks the connection announced, and every break in the video's
// sequence numbers or timestamps.
type followPlayer struct {
	pc *webrtc.PeerConnection

	mu       sync.Mutex
	packets  [2]int64 // audio, video
	tracks   int      // OnTrack calls: one per section, without renegotiation
	ssrcs    map[webrtc.SSRC]bool
	lastSeq  uint16
	lastTS   uint32
	started  bool
	breaks   []string // sequence numbers going back or leaping, timestamps going back
	maxAhead uint16   // the largest forward step of the video's sequence numbers
}

func newFollowPlayer(t *testing.T, api *webrtc.API) *followPlayer {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	fp := &followPlayer{pc: pc, ssrcs: map[webrtc.SSRC]bool{}}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		k := 0
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			k = 1
		}
		fp.mu.Lock()
		fp.tracks++
		fp.ssrcs[tr.SSRC()] = true
		fp.mu.Unlock()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			fp.mu.Lock()
			fp.packets[k]++
			if k == 1 {
				fp.video(pkt.SequenceNumber, pkt.Timestamp)
			}
			fp.mu.Unlock()
		}
	})
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	return fp
}

// video records one video packet; fp.mu is held. A retransmission a little behind is normal; a jump back or a
// leap forward of more than 100 packets is a stream that restarted.
func (fp *followPlayer) video(seq uint16, ts uint32) {
	defer func() { fp.lastSeq, fp.lastTS, fp.started = seq, ts, true }()
	if !fp.started {
		return
	}
	step := int16(seq - fp.lastSeq)
	switch {
	case step < -100 || step > 100:
		fp.breaks = append(fp.breaks, fmt.Sprintf("sequence number %d after %d", seq, fp.lastSeq))
	case step > 0 && int32(ts-fp.lastTS) < 0:
		fp.breaks = append(fp.breaks, fmt.Sprintf("timestamp %d after %d (sequence number %d)", ts, fp.lastTS, seq))
	}
	if step > 0 && uint16(step) > fp.maxAhead {
		fp.maxAhead = uint16(step)
	}
}

func (fp *followPlayer) counts() (audio, video int64) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.packets[0], fp.packets[1]
}

// TestWHEPFollowsLaterTracks: a WHEP player that POSTs to an empty room gets the audio and video of the first
// publisher that starts (WHIP, as OBS), with no new offer; then those of the same encoder restarted (a new WHIP
// session replacing the old); when it leaves and another publisher starts (over the WebSocket), the same player
// gets the new one's audio and video on the same tracks, its sequence numbers and timestamps going on throughout.
func TestWHEPFollowsLaterTracks(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	player := newFollowPlayer(t, api)
	resp, answer := httpOffer(t, n.baseURL()+"/whep/follow", token(t, "follow", "player", false, true), "application/sdp", gatheredOffer(t, player.pc))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST to an empty room: %s: %s", resp.Status, answer)
	}
	if err := player.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}

	first := startMedia(t, ctx)
	obs := token(t, "follow", "obs", true, false)
	whipLocation := whipPublish(t, n, first, api, obs, "follow", "video", "audio", false)
	eventually(t, 10*time.Second, "the WHEP player receives the publisher that started after it", func() bool {
		a, v := player.counts()
		return a > 20 && v > 20
	})

	// The encoder restarts: a new WHIP session of its identity, without a DELETE, replaces the old one.
	first.stop()
	a0, v0 := player.counts()
	restarted := startMedia(t, ctx)
	whipLocation = whipPublish(t, n, restarted, api, obs, "follow", "video", "audio", false)
	eventually(t, 10*time.Second, "the WHEP player receives the restarted encoder", func() bool {
		a, v := player.counts()
		return a > a0+20 && v > v0+40
	})

	if code := httpDo(t, http.MethodDelete, n.baseURL()+whipLocation, obs); code != http.StatusOK {
		t.Fatalf("WHIP DELETE: %d", code)
	}
	restarted.stop()
	eventually(t, 5*time.Second, "the encoder's session is gone", func() bool { return n.sfu.Stats().Participants == 1 })
	a0, v0 = player.counts()

	second := startMedia(t, ctx)
	next := joinClient(t, ctx, n, "follow", "next")
	second.publish(t, next)
	eventually(t, 10*time.Second, "the WHEP player receives the next publisher", func() bool {
		a, v := player.counts()
		return a > a0+20 && v > v0+40
	})

	player.mu.Lock()
	defer player.mu.Unlock()
	if player.tracks != 2 || len(player.ssrcs) != 2 {
		t.Errorf("the player saw %d tracks with %d SSRCs, want its 2 sections' tracks throughout", player.tracks, len(player.ssrcs))
	}
	if len(player.breaks) > 0 {
		t.Errorf("the player's video broke across the publishers: %v", player.breaks)
	}
	t.Logf("audio %d, video %d packets; the largest step forward of the video's sequence numbers: %d",
		player.packets[0], player.packets[1], player.maxAhead)
}
