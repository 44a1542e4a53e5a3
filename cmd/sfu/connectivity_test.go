package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/turn/turntest"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// tcpOnlyAPI is a Pion API that gathers nothing over UDP: its only way to the SFU is to dial the SFU's passive
// ICE-TCP candidates on loopback.
func tcpOnlyAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range []struct {
		p    webrtc.RTPCodecParameters
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000,
			Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}},
			PayloadType: 96}, webrtc.RTPCodecTypeVideo},
	} {
		if err := me.RegisterCodec(c.p, c.kind); err != nil {
			t.Fatal(err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// joinOverAPI is joinClient with the client's peer connections built by api.
func joinOverAPI(t *testing.T, ctx context.Context, n *node, api *webrtc.API, room, identity string) *testClient {
	t.Helper()
	tc := &testClient{events: make(chan client.Message, 1024), received: map[string]*recvStats{}}
	c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, room, identity, true, true), client.Options{
		API:               api,
		Events:            tc.events,
		OnKeyframeRequest: func(webrtc.TrackLocal) { tc.wantKey.Store(true) },
		OnTrack: func(pid string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			st := tc.stats(pid, track.Kind().String())
			buf := make([]byte, 1500)
			for {
				if _, _, err := track.Read(buf); err != nil {
					st.ended.Store(true)
					return
				}
				st.packets.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatalf("%s: join: %v", identity, err)
	}
	tc.Client = c
	t.Cleanup(c.Close)
	return tc
}

// selectedPair is the candidate pair pc's media flows on.
func selectedPair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	for _, tr := range pc.GetTransceivers() {
		var dts []*webrtc.DTLSTransport
		if s := tr.Sender(); s != nil {
			dts = append(dts, s.Transport())
		}
		if r := tr.Receiver(); r != nil {
			dts = append(dts, r.Transport())
		}
		for _, dt := range dts {
			if dt == nil {
				continue
			}
			if p, err := dt.ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
				return p
			}
		}
	}
	return nil
}

// TestICETCPFallback: a participant whose network passes no UDP (its API gathers and pairs TCP only) joins over
// ICE-TCP, publishes audio and video that a UDP participant receives, and receives the UDP participant's.
func TestICETCPFallback(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.TCPAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feeds := startMedia(t, ctx)

	tcp := joinOverAPI(t, ctx, n, tcpOnlyAPI(t), "fallback", "behind-firewall")
	feeds.publish(t, tcp)
	udp := joinClient(t, ctx, n, "fallback", "on-udp")
	feeds.publish(t, udp)
	eventually(t, 20*time.Second, "each receives the other's audio and video", func() bool {
		return receivesFrom(udp, tcp.ID(), 20) && receivesFrom(tcp, udp.ID(), 20)
	})
	for name, pc := range map[string]*webrtc.PeerConnection{"publish": tcp.Pub, "subscribe": tcp.Sub} {
		p := selectedPair(pc)
		if p == nil || p.Local.Protocol != webrtc.ICEProtocolTCP || p.Remote.Protocol != webrtc.ICEProtocolTCP ||
			p.Remote.TCPType != "passive" {
			t.Errorf("TCP-only client's %s connection: selected pair %v, want TCP to the SFU's passive candidate", name, p)
		}
	}
	if p := selectedPair(udp.Pub); p == nil || p.Local.Protocol != webrtc.ICEProtocolUDP {
		t.Errorf("the UDP client's publish connection is on %v: UDP should stay preferred", p)
	}
}

// turnNode starts a node with the built-in TURN server on loopback.
func turnNode(t *testing.T, options ...func(*config)) *node {
	t.Helper()
	return startTestNode(t, append([]func(*config){func(c *config) {
		c.TURNAddr, c.TURNRealm, c.TURNCredential = "127.0.0.1:0", "edge-sfu", time.Hour
	}}, options...)...)
}

// turnAllocate allocates a relay on the node's TURN server with the credentials (turntest.Allocate).
func turnAllocate(t *testing.T, n *node, username, password string) error {
	t.Helper()
	_, err := turntest.Allocate(t, n.turn.Addr(), "edge-sfu", username, password)
	return err
}

// TestTURNRelayedMedia: a WHEP player that may only use relay candidates (ICETransportPolicyRelay), with
// credentials minted by the node, receives a WebSocket participant's audio and video through the built-in TURN
// server.
func TestTURNRelayedMedia(t *testing.T) {
	n := turnNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	feeds := startMedia(t, ctx)
	pub := joinClient(t, ctx, n, "relayed", "speaker")
	feeds.publish(t, pub)
	eventually(t, 10*time.Second, "the speaker's audio and video are in the room", func() bool { return n.sfu.Stats().Tracks >= 2 })

	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	player, got := newPlayer(t, api, webrtc.Configuration{ICEServers: n.turnMint.ICEServers("player"),
		ICETransportPolicy: webrtc.ICETransportPolicyRelay})
	offer := gatheredOffer(t, player)
	if !strings.Contains(offer, " typ relay") || strings.Contains(offer, " typ host") {
		t.Fatalf("the relay-only offer should have relay candidates only:\n%s", offer)
	}
	resp, answer := httpOffer(t, n.baseURL()+"/whep/relayed", token(t, "relayed", "player", false, true), "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP POST: %s: %s", resp.Status, answer)
	}
	if err := player.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the relay-only player receives audio and video", func() bool {
		return got[0].Load() > 20 && got[1].Load() > 20
	})
	if p := selectedPair(player); p == nil || p.Local.Typ != webrtc.ICECandidateTypeRelay {
		t.Errorf("selected pair %v, want the player's relay candidate", p)
	}
	if c := n.turn.AllocationCount(); c < 1 {
		t.Errorf("the TURN server has %d allocations", c)
	}
}

// TestTURNCredentialsInJoined: each participant's joined message carries the built-in TURN server with
// credentials minted for its identity, after the configured ICE servers.
func TestTURNCredentialsInJoined(t *testing.T) {
	n := turnNode(t, func(c *config) { c.ICEServers = []string{"stun:stun.example.org:3478"} })
	conn, _, err := websocket.DefaultDialer.Dial(client.WSURL(n.baseURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.WriteJSON(map[string]string{"type": "join", "token": token(t, "r", "alice", true, true)}); err != nil {
		t.Fatal(err)
	}
	var joined struct {
		Type       string             `json:"type"`
		ICEServers []webrtc.ICEServer `json:"ice_servers"`
	}
	if err := conn.ReadJSON(&joined); err != nil || joined.Type != "joined" {
		t.Fatalf("joined: %+v %v", joined, err)
	}
	var turnEntry *webrtc.ICEServer
	for i, s := range joined.ICEServers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") {
				turnEntry = &joined.ICEServers[i]
			}
		}
	}
	if turnEntry == nil {
		t.Fatalf("joined carries no TURN server: %+v", joined.ICEServers)
	}
	if len(joined.ICEServers) != 2 || joined.ICEServers[0].URLs[0] != "stun:stun.example.org:3478" {
		t.Errorf("ICE servers %+v, want the configured STUN server then TURN", joined.ICEServers)
	}
	if turnEntry.URLs[0] != n.turn.URL() || !strings.HasSuffix(turnEntry.Username, ":alice") {
		t.Errorf("TURN entry %+v, want %s for alice", turnEntry, n.turn.URL())
	}
	pass, _ := turnEntry.Credential.(string)
	if err := turnAllocate(t, n, turnEntry.Username, pass); err != nil {
		t.Errorf("the joined message's credentials do not allocate: %v", err)
	}
}
