package sfu

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/alloc"
	"github.com/edge-sfu/sfu/sfu/forward"
	"github.com/edge-sfu/sfu/sfu/transport"
)

// Participant is one person in a room, the coordinator of its parts: a publish connection whose tracks become
// Tracks (publisher.go), a subscribe connection that carries a DownTrack for each track of the others
// (subscriber.go), and the control loop that picks their layers (control.go).
type Participant struct {
	info    ParticipantInfo // ID, Identity and Name never change; the rights and ValidUntil only under mu (set_role, ExtendValidity)
	room    *Room
	peer    Peer       // ended, in front of the signaling layer's
	ended   endingPeer // why it left (observer.go)
	log     *zap.Logger
	session Session // set before it joins
	// lockedInCluster: the cluster's store says the room is locked (JoinRequest.Locked); set before it joins.
	lockedInCluster bool
	// regions is the room's residency policy as the cluster has it (JoinRequest.Regions); set before it joins.
	regions []string
	// relay: another node's relay (JoinRequest.Relay); set before it joins.
	relay bool

	pub, sub     *webrtc.PeerConnection
	subConnected connState                             // the subscribe connection is up: DownTracks can start
	bwe          atomic.Pointer[cc.BandwidthEstimator] // the subscribe connection's estimator
	allocated    atomic.Uint64                         // bits per second the allocator last planned to send
	ctl          control                               // touched only by the control goroutine

	mu     sync.Mutex
	closed bool
	// kicked: an administrator removed it; its token is not extended any more (ExtendValidity).
	kicked    bool
	published []*Track                            // this participant's tracks, in publish order
	downs     map[*forward.Receiver]*subscription // other participants' tracks this one receives
	pubState  publishState
	mod       moderation // what administrators decided about its tracks (moderation.go)
	// bitrateCappedAt is when the publish bitrate limit last cut a layer; zero: not capped.
	bitrateCappedAt time.Time
	held            [2][]webrtc.ICECandidateInit
	added           [2]int // remote candidates named per connection, trickled or in descriptions

	candidates candidateFilter // which remote candidates are taken; set once, before any

	neg negotiation // the subscribe connection's offers

	sigMu [2]sync.Mutex // by PC: a description goes to the client before the candidates gathered for it

	answerMode bool               // WHEP: the client offered the subscribe connection; only its m-lines are used
	slots      []*whepSlot        // WHEP: its sections, each carrying one room track at a time (whepslot.go); under mu
	ctx        context.Context    // the participant's lifetime
	stop       context.CancelFunc // ends ctx

	closeOnce sync.Once
	wg        sync.WaitGroup // the goroutines this participant starts
}

// connState is whether a connection is up, as a DownTrack asks it (forward.Conn).
type connState struct{ atomic.Bool }

// Connected implements forward.Conn.
func (c *connState) Connected() bool { return c.Load() }

// subscription is one track this participant receives.
type subscription struct {
	track  *Track
	down   *forward.DownTrack
	sender *webrtc.RTPSender
	// upper: a relay's copy of a video has a DownTrack per layer (subscribeLayers): down is layer 0's, these are
	// the layers above it, lowest first. Nil for everyone else.
	upper []layerCopy
	// The size the subscriber shows the video at (alloc.TileUnknown until it says), and whether it grew since
	// the allocator last looked.
	tileW, tileH atomic.Int32
	tileGrew     atomic.Bool
}

func newParticipant(apis *transport.APIs, info ParticipantInfo, peer Peer, ice []webrtc.ICEServer, log *zap.Logger) (*Participant, error) {
	p := &Participant{info: info, peer: peer, log: log, downs: map[*forward.Receiver]*subscription{},
		pubState: newPublishState()}
	p.peer = p.ended.wrap(peer)
	p.ctl.poke = make(chan struct{}, 1)
	cfg := webrtc.Configuration{ICEServers: ice, BundlePolicy: webrtc.BundlePolicyMaxBundle, RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire}
	var err error
	if p.pub, err = apis.Publish.NewPeerConnection(cfg); err != nil {
		return nil, fmt.Errorf("publish connection: %w", err)
	}
	subAPI, err := apis.Subscribe(func(e cc.BandwidthEstimator) { p.bwe.Store(&e) })
	if err != nil {
		_ = p.pub.Close()
		return nil, err
	}
	if p.sub, err = subAPI.NewPeerConnection(cfg); err != nil {
		_ = p.pub.Close()
		return nil, fmt.Errorf("subscribe connection: %w", err)
	}
	for kind, pc := range map[PC]*webrtc.PeerConnection{PublishPC: p.pub, SubscribePC: p.sub} {
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil && kind == SubscribePC {
				p.gatheringDone()
			}
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
	p.ctx, p.stop = context.WithCancel(context.Background())
	return p, nil
}

// Info describes the participant and its tracks.
func (p *Participant) Info() ParticipantInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := p.info
	info.Tracks = make([]TrackInfo, 0, len(p.published))
	for _, t := range p.published {
		info.Tracks = append(info.Tracks, t.Info())
	}
	return info
}

// ID is the participant's id in its room.
func (p *Participant) ID() string { return p.info.ID }

// Name is the participant's display name.
func (p *Participant) Name() string { return p.info.Name }

// Tracks returns the participant's published tracks, in publish order.
func (p *Participant) Tracks() []*Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.published)
}

// track finds one of the participant's published tracks by id, or nil.
func (p *Participant) track(id string) *Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.published {
		if t.r.ID() == id {
			return t
		}
	}
	return nil
}

// addTrack adds a track that has been published.
func (p *Participant) addTrack(t *Track) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, t)
}

// removeTrack takes an unpublished track off the list; it reports whether it was there.
func (p *Participant) removeTrack(t *Track) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.published, t)
	if i < 0 {
		return false
	}
	p.published = slices.Delete(p.published, i, i+1)
	return true
}

// takeTracks empties the list of published tracks and returns what it held: the participant is leaving.
func (p *Participant) takeTracks() []*Track {
	p.mu.Lock()
	defer p.mu.Unlock()
	tracks := p.published
	p.published = nil
	return tracks
}

// SubscriberStats are one subscriber's figures for /metrics.
type SubscriberStats struct {
	Room, ID      string
	EstimateBps   float64
	AllocatedBps  float64
	VideosByLayer [forward.MaxLayers + 1]int // index 0: paused or waiting for a keyframe; 1..3: layers q, h, f
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
		for _, d := range s.copies() {
			st.PacketsSent += d.Sent()
		}
		st.LateDrops += s.down.LateDrops()
		if r.Kind() == webrtc.RTPCodecTypeVideo {
			cur, _ := s.down.Layers()
			st.VideosByLayer[cur+1]++
		}
	}
	return st
}

// estimate is the subscriber's bandwidth estimate in bits per second; 0 before the connection has one.
func (p *Participant) estimate() float64 {
	if e := p.bwe.Load(); e != nil {
		return float64((*e).GetTargetBitrate())
	}
	return 0
}

// canPublish reports whether the participant may publish now.
func (p *Participant) canPublish() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info.CanPublish
}

// rights is the participant's info without its tracks, read under its lock (set_role and ExtendValidity change
// it).
func (p *Participant) rights() ParticipantInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// ExtendValidity records that the participant was given a token taken until validUntil (its exp plus the
// verifier's leeway), a refresh: a kick then bans its identity until then. It refuses (false) once the
// participant was kicked or closed, so that no token handed out outlives its ban: a kick either sees the extended
// end or comes first and makes this refuse.
func (p *Participant) ExtendValidity(validUntil time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.kicked {
		return false
	}
	if validUntil.After(p.info.ValidUntil) {
		p.info.ValidUntil = validUntil
	}
	return true
}

// markKicked marks the participant kicked, so that its token is not extended any more, and returns the end of
// the latest token it holds: its ban lasts until then.
func (p *Participant) markKicked() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kicked = true
	return p.info.ValidUntil
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// spawn runs fn on a goroutine the participant owns (Close waits for it), unless the participant is closed.
func (p *Participant) spawn(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
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
		p.downs = map[*forward.Receiver]*subscription{}
		p.mu.Unlock()

		p.stop()
		p.room.leave(p)
		for r, s := range downs {
			for _, d := range s.copies() {
				r.RemoveDownTrack(d)
			}
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

// The allocator and the forwarding path count layers alike.
var _ [alloc.MaxLayers - forward.MaxLayers]struct{} = [0]struct{}{}
