package sfu

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/alloc"
	"github.com/edge-sfu/sfu/sfu/forward"
)

// The subscribing side of a participant: a DownTrack for each track of the others on the subscribe connection,
// and that connection's negotiation. The SFU offers and the client answers; an offer made while another awaits
// its answer is sent once the answer comes. ICE candidates that arrive before their connection has a remote
// description are held until it has one.

// Bounds on ICE candidates a client may send: held before a connection has a remote description, and in all per
// connection, trickled and inside descriptions (candidates.go).
const (
	maxHeldCandidates = 64
	maxCandidates     = 256
)

// negotiation is the state of the subscribe connection's offers; its mu is Participant.negMu in the lock order.
type negotiation struct {
	mu             sync.Mutex
	awaitingAnswer bool // an offer was sent and has no answer yet
	renegotiate    bool // something changed meanwhile: offer again once answered
	iceRestart     bool // the next offer restarts ICE
	// afterGathering: an ICE restart waits for the candidates being gathered (negotiate). Atomic, not under mu:
	// Pion may report the end of gathering from inside SetLocalDescription, which negotiate calls holding mu.
	afterGathering atomic.Bool
}

// newSubscription is p's copy of t, not yet attached: its down-track, with no tile size known yet.
func (p *Participant) newSubscription(t *Track) *subscription {
	s := &subscription{track: t, down: forward.NewDownTrack(t.r, t.shownID(), &p.subConnected)}
	s.tileW.Store(alloc.TileUnknown)
	s.tileH.Store(alloc.TileUnknown)
	return s
}

// subscribe adds a DownTrack of t to this participant's subscribe connection.
func (p *Participant) subscribe(t *Track) {
	if p.answerMode { // WHEP: a free section of its kind takes it (whepslot.go)
		p.subscribeSlot(t)
		return
	}
	if p.relay && t.r.Kind() == webrtc.RTPCodecTypeVideo {
		p.subscribeLayers(t)
		return
	}
	r := t.r
	s := p.newSubscription(t)
	d := s.down
	p.mu.Lock()
	if p.closed || p.downs[r] != nil {
		p.mu.Unlock()
		return
	}
	sender, err := p.sub.AddTrack(d)
	if err != nil {
		p.mu.Unlock()
		p.log.Warn("cannot add track", zap.String("track", r.ID()), zap.Error(err))
		return
	}
	if !r.AddDownTrack(d) { // unpublished meanwhile
		_ = p.sub.RemoveTrack(sender)
		p.mu.Unlock()
		return
	}
	s.sender = sender
	p.downs[r] = s
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		d.ReadRTCP(sender)
	}()
	p.negotiate()
	p.pokeControl()
}

// layerCopy is one layer of a relay's copy of a video.
type layerCopy struct {
	down   *forward.DownTrack
	sender *webrtc.RTPSender
}

// RelayLayerTrackID is the id under which a relay between nodes receives one layer (0: the lowest) of the
// simulcast video trackID: each layer is a track of its own on the relay's connection, which the relay publishes
// on its node as the layers of one simulcast track. ParseRelayLayerTrackID reverses it.
func RelayLayerTrackID(trackID string, layer int) string { return fmt.Sprintf("%s~%d", trackID, layer) }

// ParseRelayLayerTrackID splits a relay's layer track id into the video's id and the layer.
func ParseRelayLayerTrackID(id string) (trackID string, layer int, ok bool) {
	i := strings.LastIndexByte(id, '~')
	if i < 0 || i != len(id)-2 || id[i+1] < '0' || id[i+1] >= '0'+forward.MaxLayers {
		return "", 0, false
	}
	return id[:i], int(id[i+1] - '0'), true
}

// subscribeLayers gives a relay every layer of the video t, each a DownTrack and a track of its own
// (RelayLayerTrackID), forwarded until the relay pauses it (setRelayLayer): the far node chooses layers for its
// subscribers, and the allocator here leaves these copies alone. Layers the publisher never sends carry nothing.
func (p *Participant) subscribeLayers(t *Track) {
	r := t.r
	s := &subscription{track: t}
	s.tileW.Store(alloc.TileUnknown)
	s.tileH.Store(alloc.TileUnknown)
	p.mu.Lock()
	if p.closed || p.downs[r] != nil {
		p.mu.Unlock()
		return
	}
	var copies []layerCopy
	undo := func() {
		for _, c := range copies {
			r.RemoveDownTrack(c.down)
			_ = p.sub.RemoveTrack(c.sender)
		}
	}
	for l := range forward.MaxLayers {
		d := forward.NewLayerDownTrack(r, RelayLayerTrackID(r.ID(), l), t.shownID(), int32(l), &p.subConnected)
		sender, err := p.sub.AddTrack(d)
		if err != nil {
			undo()
			p.mu.Unlock()
			p.log.Warn("cannot add track", zap.String("track", r.ID()), zap.Error(err))
			return
		}
		copies = append(copies, layerCopy{down: d, sender: sender})
		if !r.AddDownTrack(d) { // unpublished meanwhile
			undo()
			p.mu.Unlock()
			return
		}
	}
	s.down, s.sender, s.upper = copies[0].down, copies[0].sender, copies[1:]
	p.downs[r] = s
	p.wg.Add(len(copies))
	p.mu.Unlock()
	for _, c := range copies {
		go func() {
			defer p.wg.Done()
			c.down.ReadRTCP(c.sender)
		}()
	}
	p.negotiate()
}

// copies is every DownTrack of the subscription: one, or a relay's one per layer.
func (s *subscription) copies() []*forward.DownTrack {
	ds := []*forward.DownTrack{s.down}
	for _, c := range s.upper {
		ds = append(ds, c.down)
	}
	return ds
}

// setRelayLayer pauses (on false) or resumes one layer of a video a relay receives, named by its layer track id;
// it reports false when the relay receives no such layer.
func (p *Participant) setRelayLayer(id string, on bool) bool {
	trackID, l, ok := ParseRelayLayerTrackID(id)
	if !ok {
		return false
	}
	for _, s := range p.subscriptions() {
		if s.track.ID() != trackID || s.upper == nil {
			continue
		}
		d := s.copies()[l]
		if on {
			d.SetTargetLayer(int32(l))
		} else {
			d.SetTargetLayer(-1)
		}
		return true
	}
	return false
}

// unsubscribe removes t's DownTrack from this participant, if it has one.
func (p *Participant) unsubscribe(t *Track) {
	p.mu.Lock()
	s := p.downs[t.r]
	delete(p.downs, t.r)
	closed := p.closed
	if s != nil && p.answerMode {
		p.freeSlotLocked(s.down)
	}
	p.mu.Unlock()
	if s == nil {
		return
	}
	for _, d := range s.copies() {
		t.r.RemoveDownTrack(d)
	}
	if closed {
		return
	}
	if p.answerMode { // WHEP: the section takes the room's next track, without renegotiation
		p.fillSlots()
		return
	}
	senders := []*webrtc.RTPSender{s.sender}
	for _, c := range s.upper {
		senders = append(senders, c.sender)
	}
	for _, sender := range senders {
		if err := p.sub.RemoveTrack(sender); err != nil {
			p.log.Debug("remove track", zap.Error(err))
		}
	}
	p.negotiate()
}

// subscriptions returns the tracks this participant receives.
func (p *Participant) subscriptions() []*subscription {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Values(p.downs))
}

// maxTileSide bounds the tile sizes a client may report.
const maxTileSide = 16384

// SetTileSize records the size at which the participant shows a track it receives (0 x 0: hidden), so that it
// gets the smallest layer that fills it.
func (p *Participant) SetTileSize(trackID string, w, h int) error {
	if w < 0 || h < 0 || w > maxTileSide || h > maxTileSide {
		return fmt.Errorf("tile size %dx%d out of range: %w", w, h, ErrBadRequest)
	}
	if p.relay && p.setRelayLayer(trackID, w > 0 && h > 0) { // a layer no one on the relay's node wants, or wants again
		return nil
	}
	var s *subscription
	for _, x := range p.subscriptions() {
		if x.track.ID() == trackID {
			s = x
		}
	}
	if s == nil {
		return fmt.Errorf("not receiving a track %.64q: %w", trackID, ErrBadRequest)
	}
	oldW, oldH := s.tileW.Swap(int32(w)), s.tileH.Swap(int32(h))
	if int32(w)*int32(h) > max(oldW, 0)*max(oldH, 0) {
		s.tileGrew.Store(true)
	}
	p.pokeControl()
	return nil
}

// HandleAnswer applies the client's answer to the SFU's last subscribe offer.
func (p *Participant) HandleAnswer(sdp string) error {
	p.neg.mu.Lock()
	if !p.neg.awaitingAnswer {
		p.neg.mu.Unlock()
		return fmt.Errorf("subscribe answer with no offer pending: %w", ErrOutOfOrder)
	}
	parsed, err := parseDescription("subscribe answer", sdp)
	if err == nil {
		sdp, err = p.screen(SubscribePC, "subscribe answer", parsed, sdp)
	}
	if err != nil {
		p.neg.mu.Unlock()
		return err
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.neg.mu.Unlock()
		return fmt.Errorf("subscribe answer: %w: %w", ErrBadSDP, err)
	}
	p.neg.awaitingAnswer = false
	again := p.neg.renegotiate
	p.neg.renegotiate = false
	p.neg.mu.Unlock()
	p.applyHeld(SubscribePC)
	if again {
		p.negotiate()
	}
	return nil
}

// RestartICE makes the next subscribe offer restart ICE (new credentials, new candidates), for a client whose
// network changed; it sends it now unless an offer is awaiting its answer. The publish connection restarts when
// the client sends an offer with new ICE credentials.
func (p *Participant) RestartICE() error {
	if p.answerMode {
		return fmt.Errorf("a WHEP session cannot restart ICE this way: %w", ErrBadRequest)
	}
	p.neg.mu.Lock()
	p.neg.iceRestart = true
	p.neg.mu.Unlock()
	p.negotiate()
	return nil
}

// negotiate sends a new subscribe offer, or marks one to send once the client answers the pending one.
func (p *Participant) negotiate() {
	if p.answerMode {
		return // the client offers (WHEP): the SFU cannot renegotiate
	}
	p.neg.mu.Lock()
	defer p.neg.mu.Unlock()
	if p.neg.awaitingAnswer {
		p.neg.renegotiate = true
		return
	}
	if p.isClosed() {
		return
	}
	var opts *webrtc.OfferOptions
	if p.neg.iceRestart && p.sub.ICEGatheringState() == webrtc.ICEGatheringStateGathering {
		// pion/ice v4.4.2 races a restart against the gathering in progress (its gathering goroutine reads the
		// old credentials unlocked; fixed in v4.4.3, which needs pion/transport/v5, which webrtc v4.2.20 does not
		// take). Host candidates on the UDP mux take milliseconds: the restart waits for them (gatheringDone).
		p.neg.afterGathering.Store(true)
		if p.sub.ICEGatheringState() == webrtc.ICEGatheringStateGathering || !p.neg.afterGathering.Swap(false) {
			return // gatheringDone sends it (whichever of the two takes the flag back goes on)
		}
	}
	if p.neg.iceRestart {
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.neg.iceRestart = false
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
	p.neg.awaitingAnswer = true
	p.peer.SendDescription(SubscribePC, offer)
}

// gatheringDone sends the ICE restart that waited for the subscribe connection's gathering to end (negotiate).
// Pion calls it on its gathering goroutine, which the offer must not run on: the restart waits for that goroutine.
func (p *Participant) gatheringDone() {
	if p.neg.afterGathering.Swap(false) {
		p.spawn(p.negotiate)
	}
}

// AddCandidate adds a remote ICE candidate, or holds it until the connection has a remote description. A
// candidate at an address the SFU does not send to (candidates.go) is dropped without an error.
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
	p.mu.Unlock()
	if ok, err := p.trickled(which, c); !ok {
		return err
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%s candidate: %w: %w", which, ErrBadRequest, err)
	}
	return nil
}

// applyHeld adds the candidates held for a connection that now has a remote description; they count against
// its limit and pass its filter as trickled ones do.
func (p *Participant) applyHeld(which PC) {
	p.mu.Lock()
	held := p.held[which]
	p.held[which] = nil
	p.mu.Unlock()
	for _, c := range held {
		ok, err := p.trickled(which, c)
		if ok {
			err = p.pc(which).AddICECandidate(c)
		}
		if err != nil {
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

// requestKeyframes asks the publisher of every video this participant receives for a keyframe to start on.
func (p *Participant) requestKeyframes() {
	for _, s := range p.subscriptions() {
		for _, d := range s.copies() {
			d.RequestKeyframe()
		}
	}
}
