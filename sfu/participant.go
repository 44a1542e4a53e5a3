package sfu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// Bounds on what a client may send: candidates held before a connection has a remote description, candidates
// in all per connection, and tracks published at once.
const (
	maxHeldCandidates  = 64
	maxCandidates      = 256
	maxPublishedTracks = 8
)

// Participant is one person in a room: a publish connection whose tracks become Receivers, and a subscribe
// connection that carries a DownTrack for each track of the others.
type Participant struct {
	info ParticipantInfo // ID, Identity, Name and rights never change; Tracks is unused here
	room *Room
	peer Peer
	log  *zap.Logger

	pub, sub     *webrtc.PeerConnection
	subConnected atomic.Bool                           // the subscribe connection is up: DownTracks can start
	bwe          atomic.Pointer[cc.BandwidthEstimator] // the subscribe connection's estimator
	alloc        allocState                            // touched only by the allocator goroutine
	allocated    atomic.Uint64                         // bits per second the allocator last planned to send
	layerState   map[*Receiver]*dynacastState          // touched only by the allocator goroutine

	mu        sync.Mutex
	closed    bool
	published []*Receiver                 // this participant's tracks, in publish order
	downs     map[*Receiver]*subscription // other participants' tracks this one receives
	held      [2][]webrtc.ICECandidateInit
	added     [2]int               // remote candidates added per connection
	muteState map[string]bool      // by track id; a client may mute a track before its first packet arrives
	sources   map[string]string    // by track id, from track_source
	receiving map[string]*Receiver // by track id: tracks with at least one layer being read

	denoise         *bool     // the participant's own choice; nil: the room's default
	denoiseEngine   string    // a denoiser the participant asked for by name; "": the room's chain
	captionLangs    []string  // the languages the participant reads captions in; none: no captions
	bitrateCappedAt time.Time // when the publish bitrate limit last cut a layer; zero: not capped
	spoken          string    // the language the participant speaks; "": the room's

	sigMu          [2]sync.Mutex // by PC: a description goes to the client before the candidates gathered for it
	negMu          sync.Mutex    // serialises subscribe-side offers
	awaitingAnswer bool
	renegotiate    bool
	iceRestart     bool // the next subscribe offer restarts ICE

	allocPoke  chan struct{}      // wakes the allocator
	answerMode bool               // WHEP: the client offered the subscribe connection; only its m-lines are used
	allocCtx   context.Context    // the allocator's lifetime
	stop       context.CancelFunc // ends the allocator

	closeOnce sync.Once
	wg        sync.WaitGroup // the goroutines this participant starts
}

type subscription struct {
	down   *DownTrack
	sender *webrtc.RTPSender
}

func newParticipant(apis *mediaAPIs, info ParticipantInfo, room *Room, peer Peer, ice []webrtc.ICEServer, log *zap.Logger) (*Participant, error) {
	p := &Participant{info: info, room: room, peer: peer, log: log, downs: map[*Receiver]*subscription{},
		muteState: map[string]bool{}, sources: map[string]string{}, receiving: map[string]*Receiver{}, allocPoke: make(chan struct{}, 1)}
	cfg := webrtc.Configuration{ICEServers: ice, BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire}
	var err error
	if p.pub, err = apis.pub.NewPeerConnection(cfg); err != nil {
		return nil, fmt.Errorf("publish connection: %w", err)
	}
	subAPI, err := apis.subscribeAPI(func(e cc.BandwidthEstimator) { p.bwe.Store(&e) })
	if err != nil {
		_ = p.pub.Close()
		return nil, err
	}
	if p.sub, err = subAPI.NewPeerConnection(cfg); err != nil {
		_ = p.pub.Close()
		return nil, fmt.Errorf("subscribe connection: %w", err)
	}
	for kind, pc := range map[PC]*webrtc.PeerConnection{PublishPC: p.pub, SubscribePC: p.sub} {
		kind := kind
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c != nil {
				p.sigMu[kind].Lock() // after the description it belongs to (an ICE restart's would be dropped before it)
				defer p.sigMu[kind].Unlock()
				p.peer.SendCandidate(kind, c.ToJSON())
			}
		})
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if kind == SubscribePC && s == webrtc.PeerConnectionStateConnected && !p.subConnected.Swap(true) {
				p.requestKeyframes()
			}
			// Failed: ICE gave up. Closed while the participant is open: the client closed it (DTLS close_notify).
			if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed && !p.isClosed() {
				p.log.Info("media connection ended", zap.Stringer("pc", kind), zap.Stringer("state", s))
				go p.fail() // not on Pion's callback goroutine: closing waits for Pion
			}
		})
	}
	p.pub.OnTrack(p.onTrack)
	p.allocCtx, p.stop = context.WithCancel(context.Background())
	return p, nil
}

// startAllocator starts choosing layers; the participant must be in its room.
func (p *Participant) startAllocator() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.allocLoop(p.allocCtx)
	}()
}

// Info describes the participant and its tracks.
func (p *Participant) Info() ParticipantInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.infoLocked()
}

func (p *Participant) infoLocked() ParticipantInfo {
	info := p.info
	info.Tracks = make([]TrackInfo, 0, len(p.published))
	for _, r := range p.published {
		info.Tracks = append(info.Tracks, r.Info())
	}
	return info
}

// SubscriberStats are one subscriber's figures for /metrics.
type SubscriberStats struct {
	Room, ID      string
	EstimateBps   float64
	AllocatedBps  float64
	VideosByLayer [maxLayers + 1]int // index 0: paused or waiting for a keyframe; 1..3: layers q, h, f
	PacketsSent   uint64
	LateDrops     uint64
}

// subscriberStats reads this participant's figures as a subscriber.
func (p *Participant) subscriberStats() SubscriberStats {
	st := SubscriberStats{ID: p.info.ID, EstimateBps: p.estimate(), AllocatedBps: float64(p.allocated.Load())}
	if p.room != nil {
		st.Room = p.room.name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for r, s := range p.downs {
		st.PacketsSent += s.down.sent.Load()
		st.LateDrops += s.down.lateDrops.Load()
		if r.kind == webrtc.RTPCodecTypeVideo {
			cur, _ := s.down.Layers()
			st.VideosByLayer[cur+1]++
		}
	}
	return st
}

// ID is the participant's id in its room.
func (p *Participant) ID() string { return p.info.ID }

// HandleOffer applies the client's offer for its publish connection and returns the SFU's answer.
func (p *Participant) HandleOffer(sdp string) (webrtc.SessionDescription, error) {
	p.mu.Lock()
	canPublish := p.info.CanPublish
	p.mu.Unlock()
	if !canPublish {
		return webrtc.SessionDescription{}, fmt.Errorf("publishing is not allowed: %w", ErrForbidden)
	}
	if err := p.checkOffer(sdp); err != nil {
		return webrtc.SessionDescription{}, err
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publish offer: %w: %w", ErrBadSDP, err)
	}
	p.applyHeld(PublishPC)
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publish answer: %w: %w", ErrBadSDP, err)
	}
	p.sigMu[PublishPC].Lock()
	defer p.sigMu[PublishPC].Unlock()
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("publish answer: %w: %w", ErrBadSDP, err)
	}
	p.peer.SendDescription(PublishPC, answer)
	return answer, nil
}

// HandleAnswer applies the client's answer to the SFU's last subscribe offer.
func (p *Participant) HandleAnswer(sdp string) error {
	p.negMu.Lock()
	if !p.awaitingAnswer {
		p.negMu.Unlock()
		return fmt.Errorf("subscribe answer with no offer pending: %w", ErrOutOfOrder)
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.negMu.Unlock()
		return fmt.Errorf("subscribe answer: %w: %w", ErrBadSDP, err)
	}
	p.awaitingAnswer = false
	again := p.renegotiate
	p.renegotiate = false
	p.negMu.Unlock()
	p.applyHeld(SubscribePC)
	if again {
		p.negotiate()
	}
	return nil
}

// AddCandidate adds a remote ICE candidate, or holds it until the connection has a remote description.
func (p *Participant) AddCandidate(which PC, c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil // end of candidates
	}
	pc := p.pc(which)
	p.mu.Lock()
	if pc.RemoteDescription() == nil {
		defer p.mu.Unlock()
		if len(p.held[which]) >= maxHeldCandidates {
			return fmt.Errorf("more than %d candidates before the %s description: %w", maxHeldCandidates, which, ErrBadRequest)
		}
		p.held[which] = append(p.held[which], c)
		return nil
	}
	if p.added[which] >= maxCandidates {
		p.mu.Unlock()
		return fmt.Errorf("more than %d candidates for the %s connection: %w", maxCandidates, which, ErrBadRequest)
	}
	p.added[which]++
	p.mu.Unlock()
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%s candidate: %w: %w", which, ErrBadRequest, err)
	}
	return nil
}

func (p *Participant) applyHeld(which PC) {
	p.mu.Lock()
	held := p.held[which]
	p.held[which] = nil
	p.mu.Unlock()
	for _, c := range held {
		if err := p.pc(which).AddICECandidate(c); err != nil {
			p.log.Debug("held candidate refused", zap.Stringer("pc", which), zap.Error(err))
		}
	}
}

func (p *Participant) pc(which PC) *webrtc.PeerConnection {
	if which == PublishPC {
		return p.pub
	}
	return p.sub
}

// maxMuteStates bounds the mute states kept for tracks that have not started yet.
const maxMuteStates = 32

// SetMuted records that one of the participant's tracks is muted or not and tells the room. The track may be
// one whose first packet has not arrived yet: the state applies when it does.
func (p *Participant) SetMuted(trackID string, muted bool) error {
	p.mu.Lock()
	var r *Receiver
	for _, x := range p.published {
		if x.id == trackID {
			r = x
		}
	}
	if r == nil && !p.offered(trackID) {
		p.mu.Unlock()
		return fmt.Errorf("no published track %.64q: %w", trackID, ErrBadRequest)
	}
	if _, known := p.muteState[trackID]; !known && len(p.muteState) >= maxMuteStates {
		p.mu.Unlock()
		return fmt.Errorf("mute states for more than %d tracks: %w", maxMuteStates, ErrBadRequest)
	}
	p.muteState[trackID] = muted
	p.mu.Unlock()
	if r != nil {
		if pipe := r.pipe.Load(); pipe != nil {
			pipe.SetMuted(muted)
		}
	}
	if r != nil && r.muted.Swap(muted) != muted {
		p.room.broadcast(p, Event{Kind: EventTrackMuted, ParticipantID: p.info.ID, Track: r.Info()})
	}
	return nil
}

// offered reports whether the client's publish offer names the track (in an msid attribute).
func (p *Participant) offered(trackID string) bool {
	rd := p.pub.RemoteDescription()
	if rd == nil {
		return false
	}
	parsed, err := rd.Unmarshal()
	if err != nil {
		return false
	}
	for _, m := range parsed.MediaDescriptions {
		if v, ok := m.Attribute("msid"); ok {
			if _, track, _ := strings.Cut(v, " "); track == trackID {
				return true
			}
		}
	}
	return false
}

// SetSource records what a track about to be published carries.
func (p *Participant) SetSource(trackID, source string) error {
	switch source {
	case SourceCamera, SourceMicrophone, SourceScreen, SourceScreenAudio:
	default:
		return fmt.Errorf("unknown source %.20q: %w", source, ErrBadRequest)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.receiving[trackID] != nil {
		return fmt.Errorf("track %.64q is published already: %w", trackID, ErrOutOfOrder)
	}
	if _, known := p.sources[trackID]; !known && len(p.sources) >= maxMuteStates {
		return fmt.Errorf("sources for more than %d tracks: %w", maxMuteStates, ErrBadRequest)
	}
	p.sources[trackID] = source
	return nil
}

// onTrack runs on a goroutine Pion starts for each track, or simulcast layer of a track, that the publisher
// sends: it forwards the layer until it ends. The first layer of a track publishes it; when its last layer ends,
// the track is unpublished.
func (p *Participant) onTrack(track *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	r := p.receiving[track.ID()]
	first := r == nil
	if first && len(p.receiving) >= maxPublishedTracks {
		p.mu.Unlock()
		p.log.Warn("track refused: too many published", zap.String("track", track.ID()), zap.Int("limit", maxPublishedTracks))
		return
	}
	if first {
		r = newReceiver(track.ID(), track.Kind(), track.Codec(), p.pub)
		r.budget = p.room.sfu.budget
		r.latency = p.room.sfu.latency
		r.setPlayoutDelay(p.room.sfu.playout)
		r.muted.Store(p.muteState[track.ID()])
		r.source = p.sources[track.ID()]
		if r.source == "" {
			r.source = map[webrtc.RTPCodecType]string{webrtc.RTPCodecTypeAudio: SourceMicrophone}[track.Kind()]
			if r.source == "" {
				r.source = SourceCamera
			}
		}
		for _, e := range rr.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI && track.Kind() == webrtc.RTPCodecTypeAudio {
				r.audioLevelID = uint8(e.ID)
			}
		}
		p.receiving[track.ID()] = r
	}
	l := LayerIndex(track.RID())
	if !r.startLayer(l, uint32(track.SSRC()), track.RID()) {
		p.mu.Unlock()
		p.log.Warn("layer sent twice", zap.String("track", track.ID()), zap.String("rid", track.RID()))
		return
	}
	p.wg.Add(2) // this goroutine and the RTCP reader
	p.mu.Unlock()
	defer p.wg.Done()

	go func() { // the publisher's RTCP must be read for the interceptors to see its sender reports
		defer p.wg.Done()
		for {
			var err error
			if rid := track.RID(); rid != "" {
				_, _, err = rr.ReadSimulcastRTCP(rid)
			} else {
				_, _, err = rr.ReadRTCP()
			}
			if err != nil {
				return
			}
		}
	}()
	if first && !p.room.publish(p, r) {
		p.dropReceiving(r)
		return
	}
	if first && r.kind == webrtc.RTPCodecTypeAudio {
		p.mu.Lock()
		denoise := p.wantsDenoise()
		p.mu.Unlock()
		if denoise {
			_ = p.applyDenoise(r) // a failure is logged and told to the publisher; the track is forwarded as sent
		}
		p.room.syncCaptions()
	}
	err := r.forward(l, func(b []byte) (int, error) {
		n, _, err := track.Read(b)
		return n, err
	})
	if err != nil {
		p.log.Debug("layer ended", zap.String("track", r.id), zap.Int("layer", l), zap.Error(err))
	}
	p.mu.Lock()
	last := !r.stopLayer(l)
	if last && p.receiving[r.id] == r {
		delete(p.receiving, r.id)
		delete(p.muteState, r.id)
		delete(p.sources, r.id)
	}
	p.mu.Unlock()
	if last {
		p.room.unpublish(p, r)
	}
}

func (p *Participant) dropReceiving(r *Receiver) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.receiving[r.id] == r {
		delete(p.receiving, r.id)
	}
}

// subscribe adds a DownTrack of r, published by publisherID, to this participant's subscribe connection.
func (p *Participant) subscribe(r *Receiver, publisherID string) {
	d := newDownTrack(r, publisherID, p)
	p.mu.Lock()
	if p.closed || p.downs[r] != nil || p.answerMode && !p.freeTransceiver(r.kind) {
		p.mu.Unlock()
		return
	}
	sender, err := p.sub.AddTrack(d)
	if err != nil {
		p.mu.Unlock()
		p.log.Warn("cannot add track", zap.String("track", r.id), zap.Error(err))
		return
	}
	if !r.addDownTrack(d) { // unpublished meanwhile
		_ = p.sub.RemoveTrack(sender)
		p.mu.Unlock()
		return
	}
	p.downs[r] = &subscription{down: d, sender: sender}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		d.readRTCP(sender)
	}()
	p.negotiate()
	p.pokeAllocator()
}

// maxTileSide bounds the tile sizes a client may report.
const maxTileSide = 16384

// SetTileSize records the size at which the participant shows a track it receives (0 x 0: hidden), so that it
// gets the smallest layer that fills it.
func (p *Participant) SetTileSize(trackID string, w, h int) error {
	if w < 0 || h < 0 || w > maxTileSide || h > maxTileSide {
		return fmt.Errorf("tile size %dx%d out of range: %w", w, h, ErrBadRequest)
	}
	p.mu.Lock()
	var d *DownTrack
	for r, s := range p.downs {
		if r.id == trackID {
			d = s.down
		}
	}
	p.mu.Unlock()
	if d == nil {
		return fmt.Errorf("not receiving a track %.64q: %w", trackID, ErrBadRequest)
	}
	oldW, oldH := d.tileW.Swap(int32(w)), d.tileH.Swap(int32(h))
	if int32(w)*int32(h) > max(oldW, 0)*max(oldH, 0) {
		d.tileGrew.Store(true)
	}
	p.pokeAllocator()
	return nil
}

// unsubscribe removes r's DownTrack from this participant.
func (p *Participant) unsubscribe(r *Receiver) {
	p.mu.Lock()
	s := p.downs[r]
	delete(p.downs, r)
	closed := p.closed
	p.mu.Unlock()
	if s == nil {
		return
	}
	r.removeDownTrack(s.down)
	if closed {
		return
	}
	if err := p.sub.RemoveTrack(s.sender); err != nil {
		p.log.Debug("remove track", zap.Error(err))
	}
	p.negotiate()
}

// RestartICE makes the next subscribe offer restart ICE (new credentials, new candidates), for a client whose
// network changed; it sends it now unless an offer is awaiting its answer. The publish connection restarts when
// the client sends an offer with new ICE credentials.
func (p *Participant) RestartICE() error {
	if p.answerMode {
		return fmt.Errorf("a WHEP session cannot restart ICE this way: %w", ErrBadRequest)
	}
	p.negMu.Lock()
	p.iceRestart = true
	p.negMu.Unlock()
	p.negotiate()
	return nil
}

// negotiate sends a new subscribe offer, or marks one to send once the client answers the pending one.
func (p *Participant) negotiate() {
	if p.answerMode {
		return // the client offers (WHEP): the SFU cannot renegotiate
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.awaitingAnswer {
		p.renegotiate = true
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	var opts *webrtc.OfferOptions
	if p.iceRestart {
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.iceRestart = false
	}
	p.sigMu[SubscribePC].Lock() // from CreateOffer: an ICE restart gathers new candidates as soon as it is asked for
	defer p.sigMu[SubscribePC].Unlock()
	offer, err := p.sub.CreateOffer(opts)
	if err != nil {
		p.log.Warn("subscribe offer", zap.Error(err))
		return
	}
	if err := p.sub.SetLocalDescription(offer); err != nil {
		p.log.Warn("subscribe offer", zap.Error(err))
		return
	}
	p.awaitingAnswer = true
	p.peer.SendDescription(SubscribePC, offer)
}

// requestKeyframes asks the publisher of every video this participant receives for a keyframe to start on.
func (p *Participant) requestKeyframes() {
	p.mu.Lock()
	ds := make([]*DownTrack, 0, len(p.downs))
	for _, s := range p.downs {
		ds = append(ds, s.down)
	}
	p.mu.Unlock()
	for _, d := range ds {
		d.requestKeyframe()
	}
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// fail ends a participant whose media connection failed.
func (p *Participant) fail() {
	p.peer.End("failed")
	p.Close()
}

// discard releases a participant that never joined a room.
func (p *Participant) discard() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.stop()
		_ = p.pub.Close()
		_ = p.sub.Close()
		p.wg.Wait()
	})
}

// Close takes the participant out of its room and releases everything it holds. It is safe to call more than
// once and from any goroutine but the participant's own.
func (p *Participant) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		downs := p.downs
		p.downs = map[*Receiver]*subscription{}
		p.mu.Unlock()

		p.stop()
		p.room.leave(p)
		for r, s := range downs {
			r.removeDownTrack(s.down)
		}
		if err := p.pub.Close(); err != nil {
			p.log.Debug("close publish connection", zap.Error(err))
		}
		if err := p.sub.Close(); err != nil {
			p.log.Debug("close subscribe connection", zap.Error(err))
		}
		p.wg.Wait()
	})
}
