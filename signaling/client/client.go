// Package client is a Go participant of the signaling protocol (signaling/PROTOCOL.md): it joins a room over the
// WebSocket, publishes local tracks and receives the others'. Tests and the load-test harness use it.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Message is any server message, decoded loosely: see protocol.Message.
type Message = protocol.Message

// Options configure a client.
type Options struct {
	// API builds the peer connections; nil uses NewAPI(nil).
	API *webrtc.API
	// OnTrack is called, on its own goroutine, for each remote track; participantID is the publisher.
	OnTrack func(participantID string, track *webrtc.TrackRemote, recv *webrtc.RTPReceiver)
	// OnKeyframeRequest is called when the SFU asks for a keyframe (PLI or FIR) on a published track.
	OnKeyframeRequest func(track webrtc.TrackLocal)
	// OnLayers is called when the SFU says which simulcast layers (rids) of a published track anyone receives,
	// and which nobody does.
	OnLayers func(trackID string, rids, paused []string)
	// Events receives every server message other than SDP, candidates, pong and token; nil discards them. Sends do
	// not block: a full channel drops the message.
	Events chan<- Message
	// E2EE is join's end-to-end encryption announcement ("": none); an E2EE room takes only clients with one.
	// This client encrypts nothing itself: tests use it to see what such a room forwards.
	E2EE string

	redirects int // followed so far by Dial
}

// maxRedirects bounds how many times Dial follows a redirect to another node.
const maxRedirects = 3

// NewAPI returns a Pion API with the default codecs and interceptors that gathers candidates only on the given
// local addresses (all when none), loopback included.
func NewAPI(ips []net.IP) (*webrtc.API, error) { return newAPI(ips, nil, true) }

// NewAPIOnConn is NewAPI with all media on one socket: tests wrap it to shape what the client receives.
func NewAPIOnConn(conn net.PacketConn) (*webrtc.API, error) { return newAPI(nil, conn, true) }

// NewAPIOnConnWithoutNACK is NewAPIOnConn whose receivers never ask for a lost packet again: the control in
// tests of loss recovery.
func NewAPIOnConnWithoutNACK(conn net.PacketConn) (*webrtc.API, error) {
	return newAPI(nil, conn, false)
}

func newAPI(ips []net.IP, conn net.PacketConn, withNACK bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, err
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("audio level extension: %w", err)
	}
	// Pion's defaults but the stats interceptor (nothing here reads GetStats, and it costs a lock and a map per
	// packet), and, for the control of loss tests, but NACK.
	ir := &interceptor.Registry{}
	var configure []func() error
	if withNACK { // first, as in Pion's defaults
		// A lost packet is asked for at most 10 times, as browsers do (Pion's default: while it is in the log).
		gen := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(10)}
		configure = append(configure, func() error { return webrtc.ConfigureNackWithOptions(me, ir, gen) })
	}
	configure = append(configure,
		func() error { return webrtc.ConfigureRTCPReports(ir) },
		func() error { return webrtc.ConfigureSimulcastExtensionHeaders(me) },
		func() error { return webrtc.ConfigureTWCCSender(me, ir) })
	for _, c := range configure {
		if err := c(); err != nil {
			return nil, fmt.Errorf("interceptors: %w", err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled) // the node offers its addresses; no .local to resolve
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
	}
	if len(ips) > 0 {
		se.SetIPFilter(func(ip net.IP) bool {
			for _, a := range ips {
				if a.Equal(ip) {
					return true
				}
			}
			return false
		})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// registerCodecs offers Opus, VP8 and H.264 without RTX: Pion's NACK responder would copy each packet's rid
// header extension into its RTX retransmissions, which a receiver then takes for a second stream of that layer.
// Without RTX, retransmissions go on the media stream itself.
func registerCodecs(me *webrtc.MediaEngine) error {
	video := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"},
		{Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}}
	for _, c := range []struct {
		p    webrtc.RTPCodecParameters
		kind webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000,
			Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1", RTCPFeedback: []webrtc.RTCPFeedback{{Type: "transport-cc"}}},
			PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: video}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: video},
			PayloadType: 102}, webrtc.RTPCodecTypeVideo},
	} {
		if err := me.RegisterCodec(c.p, c.kind); err != nil {
			return fmt.Errorf("register %s: %w", c.p.MimeType, err)
		}
	}
	return nil
}

// Client is one joined participant.
type Client struct {
	ws   *websocket.Conn
	opts Options

	// Joined is the server's joined message.
	Joined Message
	// Pub and Sub are the publish and subscribe connections.
	Pub, Sub *webrtc.PeerConnection

	wmu sync.Mutex // serialises WebSocket writes

	mu        sync.Mutex
	held      map[string][]webrtc.ICECandidateInit
	answerCh  chan error // the publish answer, applied by the read loop (before any candidate after it)
	errs      []Message
	closeOnce sync.Once
	done      chan struct{}
	sigMu     [2]sync.Mutex // publish, subscribe: a description is sent before the candidates gathered for it
	readErrMu sync.Mutex
	readErr   error // why the read loop ended; under readErrMu

	tokenMu sync.Mutex
	token   string // the latest join token: Dial's, then each the server sent (see Token); under tokenMu
}

// Dial opens the WebSocket at wsURL (ws://host/ws), joins with token and waits for the joined message.
func Dial(ctx context.Context, wsURL, token string, opts Options) (*Client, error) {
	if opts.API == nil {
		api, err := NewAPI(nil)
		if err != nil {
			return nil, err
		}
		opts.API = api
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, http.Header{})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	_ = resp.Body.Close()
	c := &Client{ws: ws, opts: opts, held: map[string][]webrtc.ICECandidateInit{},
		answerCh: make(chan error, 1), done: make(chan struct{}), token: token}
	if err := c.send(protocol.Request{Type: protocol.TypeJoin, Token: token, E2EE: opts.E2EE}); err != nil {
		ws.Close()
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(deadline)
	}
	var m Message
	if err := ws.ReadJSON(&m); err != nil {
		ws.Close()
		return nil, fmt.Errorf("read joined: %w", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	if m.Type == protocol.TypeRedirect && m.URL != "" { // the room lives on another node of the region: go there
		ws.Close()
		if opts.redirects >= maxRedirects {
			return nil, fmt.Errorf("join: more than %d redirects", maxRedirects)
		}
		opts.redirects++
		return Dial(ctx, m.URL, token, opts)
	}
	if m.Type != protocol.TypeJoined {
		ws.Close()
		if m.Type == protocol.TypeError {
			return nil, fmt.Errorf("join refused: %s: %s", m.Code, m.Message)
		}
		return nil, fmt.Errorf("join: got %q, want joined", m.Type)
	}
	c.Joined = m
	if err := c.newPCs(); err != nil {
		ws.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) newPCs() error {
	var err error
	if c.Pub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fmt.Errorf("publish connection: %w", err)
	}
	if c.Sub, err = c.opts.API.NewPeerConnection(webrtc.Configuration{}); err != nil {
		_ = c.Pub.Close()
		return fmt.Errorf("subscribe connection: %w", err)
	}
	for name, pc := range map[string]*webrtc.PeerConnection{protocol.PCPublish: c.Pub, protocol.PCSubscribe: c.Sub} {
		mu := &c.sigMu[0]
		if name == protocol.PCSubscribe {
			mu = &c.sigMu[1]
		}
		pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
			if cand != nil {
				mu.Lock() // after the description they belong to: an ICE restart's candidates would be dropped before it
				defer mu.Unlock()
				init := cand.ToJSON()
				_ = c.send(protocol.Request{Type: protocol.TypeCandidate, PC: name, Candidate: &init})
			}
		})
	}
	c.Sub.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if c.opts.OnTrack != nil {
			c.opts.OnTrack(t.StreamID(), t, r)
			return
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
		}
	})
	return nil
}

// Token is the latest join token: the one Dial joined with until the server sends a fresh one (a token
// message), then the last of those. A reconnect after the first token's expiry joins with it.
func (c *Client) Token() string {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	return c.token
}

// ID is this participant's id.
func (c *Client) ID() string { return c.Joined.You.ID }

// Publish adds tracks to the publish connection and negotiates it; it returns once the answer is applied.
func (c *Client) Publish(ctx context.Context, tracks ...webrtc.TrackLocal) ([]*webrtc.RTPSender, error) {
	senders := make([]*webrtc.RTPSender, 0, len(tracks))
	for _, t := range tracks {
		s, err := c.Pub.AddTrack(t)
		if err != nil {
			return nil, fmt.Errorf("add track: %w", err)
		}
		senders = append(senders, s)
		go c.readSenderRTCP(s, t)
	}
	return senders, c.NegotiatePublish(ctx)
}

// Simulcast is a track published as simulcast layers, fed with RTP packets. Pion does not put the mid and rid
// header extensions on simulcast packets, which the receiving side needs to tell the layers apart, so WriteRTP
// adds them.
type Simulcast struct {
	Layers []*webrtc.TrackLocalStaticRTP
	Sender *webrtc.RTPSender
	mid    string
	midID  uint8
	ridID  uint8
}

// PublishSimulcast publishes one track of the codec with a layer per rid (lowest first) and negotiates.
func (c *Client) PublishSimulcast(ctx context.Context, codec webrtc.RTPCodecCapability, trackID, streamID string, rids ...string) (*Simulcast, error) {
	if len(rids) == 0 {
		return nil, fmt.Errorf("no layers")
	}
	sc := &Simulcast{}
	for _, rid := range rids {
		t, err := webrtc.NewTrackLocalStaticRTP(codec, trackID, streamID, webrtc.WithRTPStreamID(rid))
		if err != nil {
			return nil, err
		}
		sc.Layers = append(sc.Layers, t)
	}
	s, err := c.Pub.AddTrack(sc.Layers[0])
	if err != nil {
		return nil, fmt.Errorf("add track: %w", err)
	}
	sc.Sender = s
	for _, l := range sc.Layers[1:] {
		if err := s.AddEncoding(l); err != nil {
			return nil, fmt.Errorf("add encoding %s: %w", l.RID(), err)
		}
	}
	for _, l := range sc.Layers {
		go c.readLayerRTCP(s, l)
	}
	if err := c.NegotiatePublish(ctx); err != nil {
		return nil, err
	}
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			sc.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			sc.ridID = uint8(e.ID)
		}
	}
	for _, tr := range c.Pub.GetTransceivers() {
		if tr.Sender() == s {
			sc.mid = tr.Mid()
		}
	}
	if sc.midID == 0 || sc.ridID == 0 || sc.mid == "" {
		return nil, fmt.Errorf("simulcast needs the mid and rid header extensions negotiated")
	}
	return sc, nil
}

// WriteRTP sends one packet on a layer, in place of its header extensions the layer's mid and rid (the track
// rewrites its SSRC and payload type). Each layer must be written from one goroutine.
func (sc *Simulcast) WriteRTP(layer int, p *rtp.Packet) error {
	p.Header.Extension = false
	p.Header.Extensions = p.Header.Extensions[:0]
	if err := p.Header.SetExtension(sc.midID, []byte(sc.mid)); err != nil {
		return err
	}
	if err := p.Header.SetExtension(sc.ridID, []byte(sc.Layers[layer].RID())); err != nil {
		return err
	}
	return sc.Layers[layer].WriteRTP(p)
}

// SimulcastVP8 is a VP8 track published as simulcast layers, fed with frames packetized here.
type SimulcastVP8 struct {
	*Simulcast
	packetizers []rtp.Packetizer
}

// PublishSimulcastVP8 publishes one VP8 track with a layer per rid (lowest first) and negotiates.
func (c *Client) PublishSimulcastVP8(ctx context.Context, trackID, streamID string, rids ...string) (*SimulcastVP8, error) {
	sc, err := c.PublishSimulcast(ctx, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, trackID, streamID, rids...)
	if err != nil {
		return nil, err
	}
	sv := &SimulcastVP8{Simulcast: sc}
	for range rids {
		sv.packetizers = append(sv.packetizers, rtp.NewPacketizer(1200, 0, 0, &codecs.VP8Payloader{EnablePictureID: true},
			rtp.NewRandomSequencer(), 90000))
	}
	return sv, nil
}

// WriteFrame sends one frame on a layer; samples is its duration in 90 kHz ticks. Each layer must be written
// from one goroutine.
func (sv *SimulcastVP8) WriteFrame(layer int, frame []byte, samples uint32) error {
	for _, p := range sv.packetizers[layer].Packetize(frame, samples) {
		if err := sv.WriteRTP(layer, p); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) readLayerRTCP(s *webrtc.RTPSender, t webrtc.TrackLocal) {
	for {
		pkts, _, err := s.ReadSimulcastRTCP(t.RID())
		if err != nil {
			return
		}
		c.keyframeRequests(pkts, t)
	}
}

func (c *Client) keyframeRequests(pkts []rtcp.Packet, t webrtc.TrackLocal) {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			if c.opts.OnKeyframeRequest != nil {
				c.opts.OnKeyframeRequest(t)
			}
		}
	}
}

// readSenderRTCP reads a published track's RTCP (the interceptors need it read) and passes keyframe requests on.
func (c *Client) readSenderRTCP(s *webrtc.RTPSender, t webrtc.TrackLocal) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		c.keyframeRequests(pkts, t)
	}
}

// NegotiatePublish sends an offer for the publish connection and applies the answer.
func (c *Client) NegotiatePublish(ctx context.Context) error { return c.negotiatePublish(ctx, nil) }

// RestartICE restarts ICE on both connections, as after a network change: a publish offer with new ICE
// credentials, and an ice_restart request that makes the server send a subscribe offer with new ones.
func (c *Client) RestartICE(ctx context.Context) error {
	if err := c.negotiatePublish(ctx, &webrtc.OfferOptions{ICERestart: true}); err != nil {
		return err
	}
	return c.send(protocol.Request{Type: protocol.TypeICERestart})
}

func (c *Client) negotiatePublish(ctx context.Context, opts *webrtc.OfferOptions) error {
	c.sigMu[0].Lock() // from CreateOffer: an ICE restart gathers new candidates as soon as it is asked for
	offer, err := c.Pub.CreateOffer(opts)
	if err != nil {
		c.sigMu[0].Unlock()
		return fmt.Errorf("create offer: %w", err)
	}
	if err := c.Pub.SetLocalDescription(offer); err != nil {
		c.sigMu[0].Unlock()
		return fmt.Errorf("set local offer: %w", err)
	}
	err = c.send(protocol.Request{Type: protocol.TypeOffer, PC: protocol.PCPublish, SDP: offer.SDP})
	c.sigMu[0].Unlock()
	if err != nil {
		return err
	}
	select {
	case err := <-c.answerCh:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the publish answer: %w (errors so far: %v)", ctx.Err(), c.Errors())
	case <-c.done:
		return fmt.Errorf("connection closed while publishing: %w", c.readError())
	}
}

// Send sends any message; tests use it for malformed input.
func (c *Client) Send(v any) error { return c.send(v) }

// SendRaw sends one text frame as is.
func (c *Client) SendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *Client) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.SendRaw(b)
}

// Errors returns the error messages the server has sent.
func (c *Client) Errors() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.errs...)
}

// setReadError records why reading stopped, or a negotiation that failed; the first one stays.
func (c *Client) setReadError(err error) {
	c.readErrMu.Lock()
	defer c.readErrMu.Unlock()
	if c.readErr == nil {
		c.readErr = err
	}
}

// Err is the first failure of the client's read loop: why it stopped, or a subscribe offer it could not answer.
func (c *Client) Err() error { return c.readError() }

func (c *Client) readError() error {
	c.readErrMu.Lock()
	defer c.readErrMu.Unlock()
	return c.readErr
}

// Done is closed when the WebSocket closes.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) readLoop() {
	defer c.Close()
	for {
		var m Message
		if err := c.ws.ReadJSON(&m); err != nil {
			c.setReadError(err)
			return
		}
		switch m.Type {
		case protocol.TypeAnswer:
			select {
			case c.answerCh <- c.applyAnswer(m.SDP):
			default:
			}
		case protocol.TypeOffer:
			if err := c.answerSubscribe(m.SDP); err != nil {
				c.setReadError(err) // and read on: the server's next message may be its goodbye
			}
		case protocol.TypeCandidate:
			if m.Candidate != nil {
				c.addCandidate(m.PC, *m.Candidate)
			}
		case protocol.TypePong:
		case protocol.TypeToken:
			if m.Token != "" {
				c.tokenMu.Lock()
				c.token = m.Token
				c.tokenMu.Unlock()
			}
		case protocol.TypeLayers:
			if c.opts.OnLayers != nil {
				c.opts.OnLayers(m.TrackID, m.RIDs, m.Paused)
			}
		default:
			if m.Type == protocol.TypeError {
				c.mu.Lock()
				c.errs = append(c.errs, m)
				c.mu.Unlock()
			}
			if c.opts.Events != nil {
				select {
				case c.opts.Events <- m:
				default:
				}
			}
		}
	}
}

func (c *Client) answerSubscribe(sdp string) error {
	if err := c.Sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("set subscribe offer: %w", err)
	}
	c.applyHeld(protocol.PCSubscribe)
	answer, err := c.Sub.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create subscribe answer: %w", err)
	}
	c.sigMu[1].Lock()
	defer c.sigMu[1].Unlock()
	if err := c.Sub.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set subscribe answer: %w", err)
	}
	return c.send(protocol.Request{Type: protocol.TypeAnswer, PC: protocol.PCSubscribe, SDP: answer.SDP})
}

func (c *Client) pc(name string) *webrtc.PeerConnection {
	if name == protocol.PCPublish {
		return c.Pub
	}
	return c.Sub
}

// addCandidate adds a server candidate, holding it until its connection has a remote description.
func (c *Client) addCandidate(name string, cand webrtc.ICECandidateInit) {
	c.mu.Lock()
	if c.pc(name).RemoteDescription() == nil {
		c.held[name] = append(c.held[name], cand)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	_ = c.pc(name).AddICECandidate(cand)
}

// applyAnswer applies the publish answer on the read loop, so that the candidates that follow it find it.
func (c *Client) applyAnswer(sdp string) error {
	if err := c.Pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("set answer: %w", err)
	}
	c.applyHeld(protocol.PCPublish)
	return nil
}

func (c *Client) applyHeld(name string) {
	c.mu.Lock()
	held := c.held[name]
	delete(c.held, name)
	c.mu.Unlock()
	for _, cand := range held {
		_ = c.pc(name).AddICECandidate(cand)
	}
}

// Leave sends leave and closes.
func (c *Client) Leave() {
	_ = c.send(protocol.Request{Type: protocol.TypeLeave})
	c.Close()
}

// Close closes the WebSocket and both connections.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		_ = c.ws.Close()
		_ = c.Pub.Close()
		_ = c.Sub.Close()
		close(c.done)
	})
}

// WaitFor reads events until one satisfies match or ctx ends.
func WaitFor(ctx context.Context, events <-chan Message, match func(Message) bool) (Message, error) {
	for {
		select {
		case m := <-events:
			if match(m) {
				return m, nil
			}
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// WSURL turns an http:// base URL into the signaling WebSocket URL.
func WSURL(base string) string {
	base = strings.TrimSuffix(base, "/")
	if strings.HasPrefix(base, "https://") {
		return "wss://" + strings.TrimPrefix(base, "https://") + "/ws"
	}
	return "ws://" + strings.TrimPrefix(base, "http://") + "/ws"
}
