package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/forward"
)

// The publishing side of a participant: its offers, what it says of its tracks before they start (mute state,
// source), and the goroutine that reads each track (onTrack).

// Bounds on what a client may send: tracks published at once, and tracks it may describe before they start.
const (
	maxPublishedTracks = 8
	maxMuteStates      = 32
)

// publishState is what the participant said of its tracks and which of them are being read; under
// Participant.mu.
type publishState struct {
	muteState map[string]bool            // by track id; a client may mute a track before its first packet arrives
	sources   map[string]string          // by track id, from track_source
	origins   map[string]RemotePublisher // by track id: a relay's tracks of another node's participants (RelayTrack)
	receiving map[string]*Track          // by track id: tracks with at least one layer being read
}

func newPublishState() publishState {
	return publishState{muteState: map[string]bool{}, sources: map[string]string{}, origins: map[string]RemotePublisher{},
		receiving: map[string]*Track{}}
}

// HandleOffer applies the client's offer for its publish connection and returns the SFU's answer.
func (p *Participant) HandleOffer(sdp string) (webrtc.SessionDescription, error) {
	if !p.canPublish() {
		return webrtc.SessionDescription{}, fmt.Errorf("publishing is not allowed: %w", ErrForbidden)
	}
	parsed, err := parseDescription("publish offer", sdp)
	if err != nil {
		return webrtc.SessionDescription{}, err
	}
	if err := checkOffer(parsed, p.info.CanPublishData); err != nil {
		return webrtc.SessionDescription{}, err
	}
	if sdp, err = p.screen(PublishPC, "publish offer", parsed, sdp); err != nil {
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

// SetMuted records that one of the participant's tracks is muted or not and tells the room. The track may be
// one whose first packet has not arrived yet: the state applies when it does.
func (p *Participant) SetMuted(trackID string, muted bool) error {
	t := p.track(trackID)
	p.mu.Lock()
	if t == nil && !p.offered(trackID) {
		p.mu.Unlock()
		return fmt.Errorf("no published track %.64q: %w", trackID, ErrBadRequest)
	}
	st := &p.pubState
	if _, known := st.muteState[trackID]; !known && len(st.muteState) >= maxMuteStates {
		p.mu.Unlock()
		return fmt.Errorf("mute states for more than %d tracks: %w", maxMuteStates, ErrBadRequest)
	}
	st.muteState[trackID] = muted
	changed := t != nil && t.r.SetMuted(p.mutedLocked(trackID, t.r.Kind())) // an administrator's mute stays shown
	p.mu.Unlock()
	if t == nil {
		return nil
	}
	t.setAudioMuted(muted)
	if changed {
		p.room.broadcast(p, Event{Kind: EventTrackMuted, ParticipantID: t.shownID(), Track: t.Info()})
	}
	return nil
}

// offered reports whether the client's publish offer names the track (in an msid attribute).
func (p *Participant) offered(trackID string) bool {
	rd := p.pub.RemoteDescription()
	if rd == nil {
		return false
	}
	// Parse a copy: Unmarshal stores its result in the description, and pion reads the one it returned to us
	// from its own goroutines (a mute right after an offer raced with starting the receivers).
	desc := webrtc.SessionDescription{Type: rd.Type, SDP: rd.SDP}
	parsed, err := desc.Unmarshal()
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
	st := &p.pubState
	if st.receiving[trackID] != nil {
		return fmt.Errorf("track %.64q is published already: %w", trackID, ErrOutOfOrder)
	}
	if _, known := st.sources[trackID]; !known && len(st.sources) >= maxMuteStates {
		return fmt.Errorf("sources for more than %d tracks: %w", maxMuteStates, ErrBadRequest)
	}
	st.sources[trackID] = source
	return nil
}

// RemotePublisher is a participant of another node of the cluster whose track a relay publishes here.
type RemotePublisher struct {
	ID       string // its participant id there: the id it has in every part of the room
	Identity string
	Name     string
	E2EE     string // its end-to-end encryption announcement there (ParticipantInfo.E2EE)
}

// RelayTrack records, for another node's relay (JoinRequest.Relay), whose track the one it is about to publish is,
// what it carries and whether it is muted: the room shows it as that participant's (Room.publish). Others may not.
func (p *Participant) RelayTrack(trackID string, from RemotePublisher, source string, muted bool) error {
	if !p.relay {
		return fmt.Errorf("only a relay between nodes publishes others' tracks: %w", ErrForbidden)
	}
	if from.ID == "" || from.Identity == "" {
		return fmt.Errorf("a relayed track needs its publisher's id and identity: %w", ErrBadRequest)
	}
	if source != "" {
		if err := p.SetSource(trackID, source); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &p.pubState
	if st.receiving[trackID] != nil {
		return fmt.Errorf("track %.64q is published already: %w", trackID, ErrOutOfOrder)
	}
	_, known := st.origins[trackID]
	_, knownMute := st.muteState[trackID]
	if !known && len(st.origins) >= maxMuteStates || !knownMute && len(st.muteState) >= maxMuteStates {
		return fmt.Errorf("relayed tracks for more than %d tracks: %w", maxMuteStates, ErrBadRequest)
	}
	st.origins[trackID] = from
	st.muteState[trackID] = muted
	return nil
}

// onTrack runs on a goroutine Pion starts for each track, or simulcast layer of a track, that the publisher
// sends: it forwards the layer until it ends. The first layer of a track publishes it; when its last layer ends,
// the track is unpublished.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	id := p.publishedID(remote, rr) // not under p.mu: it takes the connection's lock
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	st := &p.pubState
	t := st.receiving[id]
	first := t == nil
	if first && len(st.receiving) >= maxPublishedTracks {
		p.mu.Unlock()
		p.log.Warn("track refused: too many published", zap.String("track", id), zap.Int("limit", maxPublishedTracks))
		return
	}
	if first {
		t = p.newTrack(id, remote, rr)
		st.receiving[id] = t
	}
	r := t.r
	l := forward.LayerIndex(remote.RID())
	if !r.StartLayer(l, uint32(remote.SSRC()), remote.RID()) {
		p.mu.Unlock()
		p.log.Warn("layer sent twice", zap.String("track", id), zap.String("rid", remote.RID()))
		return
	}
	p.wg.Add(2) // this goroutine and the RTCP reader
	p.mu.Unlock()
	defer p.wg.Done()

	go func() { // the publisher's RTCP must be read for the interceptors to see its sender reports
		defer p.wg.Done()
		for {
			var err error
			if rid := remote.RID(); rid != "" {
				_, _, err = rr.ReadSimulcastRTCP(rid)
			} else {
				_, _, err = rr.ReadRTCP()
			}
			if err != nil {
				return
			}
		}
	}()
	if first && !p.room.publish(t) {
		p.dropReceiving(t)
		return
	}
	err := r.Forward(l, func(b []byte) (int, error) {
		n, _, err := remote.Read(b)
		return n, err
	})
	if err != nil {
		p.log.Debug("layer ended", zap.String("track", r.ID()), zap.Int("layer", l), zap.Error(err))
	}
	p.mu.Lock()
	last := !r.StopLayer(l)
	if last && st.receiving[r.ID()] == t {
		delete(st.receiving, r.ID())
		delete(st.muteState, r.ID())
		delete(st.sources, r.ID())
		delete(st.origins, r.ID())
		delete(p.mod.tracks, r.ID())
	}
	p.mu.Unlock()
	if last {
		p.room.unpublish(t)
	}
}

// publishedID is the id the room and subscribers know a remote track by. A WebSocket client's own track id is
// kept: its messages (mute, track_source) name its tracks by it, and ids taken in the room are refused
// (Room.trackIDTaken). A WHIP client sends no message about its tracks and chooses their names alike (OBS: "video",
// "audio"), or none (no msid), so its tracks get ids of the server's: "<participant id>-<mid>", unique in the room
// and short enough for an msid (64 characters).
func (p *Participant) publishedID(remote *webrtc.TrackRemote, rr *webrtc.RTPReceiver) string {
	if p.session != SessionWHIP {
		return remote.ID()
	}
	for _, tr := range p.pub.GetTransceivers() {
		if tr.Receiver() == rr && tr.Mid() != "" {
			return p.info.ID + "-" + tr.Mid()
		}
	}
	return p.info.ID + "-" + remote.ID()
}

// newTrack makes the Track, published as id, of a remote track's first layer, with what the client said of it;
// p.mu is held.
func (p *Participant) newTrack(id string, remote *webrtc.TrackRemote, rr *webrtc.RTPReceiver) *Track {
	s := p.room.sfu
	source := p.pubState.sources[id]
	if source == "" {
		source = SourceCamera
		if remote.Kind() == webrtc.RTPCodecTypeAudio {
			source = SourceMicrophone
		}
	}
	cfg := forward.ReceiverConfig{ID: id, Kind: remote.Kind(), Codec: remote.Codec(), Source: source,
		RTCP: p.pub, Budget: s.budget, PlayoutDelay: s.playout, Latency: s.latency, Spreader: s.spreader}
	for _, e := range rr.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI && remote.Kind() == webrtc.RTPCodecTypeAudio {
			cfg.AudioLevelID = uint8(e.ID)
		}
	}
	r := forward.NewReceiver(cfg)
	// Moderation holds for tracks that start after it: an administrator's mute of all the participant's audio,
	// the loss of its right to publish.
	r.SetMuted(p.mutedLocked(id, remote.Kind()))
	r.SetBlocked(p.blockedLocked(id, remote.Kind()))
	t := &Track{r: r, publisher: p, sfu: s}
	if o, ok := p.pubState.origins[id]; ok {
		t.origin = &o
	}
	return t
}

func (p *Participant) dropReceiving(t *Track) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pubState.receiving[t.r.ID()] == t {
		delete(p.pubState.receiving, t.r.ID())
		delete(p.mod.tracks, t.r.ID())
	}
}
