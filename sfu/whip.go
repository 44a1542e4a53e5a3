package sfu

import (
	"fmt"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// WHIP (RFC 9725) and WHEP clients send one offer over HTTP and take one answer back, with every candidate in it:
// no trickle, no renegotiation. Their offers get the checks of a WebSocket client's (media sections, tracks,
// candidates) before the participant enters the room, and each takes a join slot until its answer is ready.

// gatherTimeout bounds the wait for the SFU's own candidates before an HTTP answer goes out.
const gatherTimeout = 3 * time.Second

// PublishOffer applies a WHIP client's offer to the publish connection and returns the answer with the SFU's
// candidates in it.
func (p *Participant) PublishOffer(sdp string) (string, error) {
	gathered := webrtc.GatheringCompletePromise(p.pub)
	if _, err := p.HandleOffer(sdp); err != nil {
		return "", err
	}
	return p.completeAnswer(p.pub, gathered)
}

// JoinWHIP joins a WHIP publisher and applies its offer; it returns the answer with the SFU's candidates. An offer
// refused by the checks leaves no session behind.
func (s *SFU) JoinWHIP(req JoinRequest, peer Peer, offer string) (*Participant, string, error) {
	req.Session = SessionWHIP
	release, err := s.takeJoinSlot()
	if err != nil {
		return nil, "", err
	}
	defer release()
	if _, err := precheckOffer("whip offer", offer, req.CanPublishData); err != nil {
		return nil, "", err
	}
	p, err := s.join(req, peer)
	if err != nil {
		return nil, "", err
	}
	answer, err := p.PublishOffer(offer)
	if err != nil {
		p.Close()
		return nil, "", err
	}
	return p, answer, nil
}

// precheckOffer parses and checks an HTTP client's offer before its participant is made.
func precheckOffer(what, offer string, publishData bool) (*sdp.SessionDescription, error) {
	parsed, err := parseDescription(what, offer)
	if err != nil {
		return nil, err
	}
	if err := checkOffer(parsed, publishData); err != nil {
		return nil, err
	}
	if _, err := checkCandidateCount(what, parsed); err != nil {
		return nil, err
	}
	return parsed, nil
}

// JoinWHEP joins a watcher whose client offered the subscribe connection (WHEP): each of the offer's audio and
// video sections carries one track of the room at a time, the newest of its kind not yet taken, and, when that
// ends or when the room has none yet, the next one published (whepslot.go).
func (s *SFU) JoinWHEP(req JoinRequest, peer Peer, offer string) (*Participant, string, error) {
	req.CanPublish, req.CanSubscribe, req.Session = false, true, SessionWHEP
	release, err := s.takeJoinSlot()
	if err != nil {
		return nil, "", err
	}
	defer release()
	parsed, err := precheckOffer("whep offer", offer, req.CanPublishData)
	if err != nil {
		return nil, "", err
	}
	if err := s.checkBan(req.Room, req.Identity); err != nil { // before any lock: it may ask Redis
		return nil, "", err
	}
	p, err := s.newParticipant(req, peer)
	if err != nil {
		return nil, "", err
	}
	p.answerMode = true
	if offer, err = p.screen(SubscribePC, "whep offer", parsed, offer); err != nil {
		p.discard()
		return nil, "", err
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.discard()
		return nil, "", fmt.Errorf("whep offer: %w: %w", ErrBadSDP, err)
	}
	if err := p.addWHEPSlots(); err != nil {
		p.discard()
		return nil, "", fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if err := s.enter(p, req.Room); err != nil {
		p.discard()
		return nil, "", err
	}
	gathered := webrtc.GatheringCompletePromise(p.sub)
	answer, err := p.sub.CreateAnswer(nil)
	if err == nil {
		err = p.sub.SetLocalDescription(answer)
	}
	if err != nil {
		p.Close()
		return nil, "", fmt.Errorf("whep answer: %w: %w", ErrBadSDP, err)
	}
	sdp, err := p.completeAnswer(p.sub, gathered)
	if err != nil {
		p.Close()
		return nil, "", err
	}
	return p, sdp, nil
}

// completeAnswer waits for the connection's candidates and returns its local description.
func (p *Participant) completeAnswer(pc *webrtc.PeerConnection, gathered <-chan struct{}) (string, error) {
	select {
	case <-gathered:
	case <-time.After(gatherTimeout):
		return "", fmt.Errorf("gathering candidates took over %v", gatherTimeout)
	}
	return pc.LocalDescription().SDP, nil
}
