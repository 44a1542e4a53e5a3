package sfu

import (
	"fmt"
	"maps"
	"slices"
	"sync"

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
}

// subscribe adds a DownTrack of t to this participant's subscribe connection.
func (p *Participant) subscribe(t *Track) {
	if p.answerMode { // WHEP: a free section of its kind takes it (whepslot.go)
		p.subscribeSlot(t)
		return
	}
	r := t.r
	d := forward.NewDownTrack(r, t.shownID(), &p.subConnected)
	s := &subscription{track: t, down: d}
	s.tileW.Store(alloc.TileUnknown)
	s.tileH.Store(alloc.TileUnknown)
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
	t.r.RemoveDownTrack(s.down)
	if closed {
		return
	}
	if p.answerMode { // WHEP: the section takes the room's next track, without renegotiation
		p.fillSlots()
		return
	}
	if err := p.sub.RemoveTrack(s.sender); err != nil {
		p.log.Debug("remove track", zap.Error(err))
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
		s.down.RequestKeyframe()
	}
}
