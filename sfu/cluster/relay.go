package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/forward"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// A relay carries one room between this node and the node that owns it, when participants are hosted here
// because the owner is full: two clients of the signaling protocol, one joined to the owner's room and one to
// this node's, each publishing what the other receives. Every track crosses once per node, whatever the number
// of subscribers on either side. A relay client's own tracks never come back to it, so nothing loops. Each track
// it publishes is announced first (relay_track) as its publisher's on the other side, which the room there shows
// in place of the relay: the publisher's id, identity, name, source and mute state cross with the track. A video
// comes as one track per simulcast layer (sfu.RelayLayerTrackID) and is published as one simulcast track; the
// layers nobody on the publishing side wants (its layers messages) are paused on the receiving side.
type relay struct {
	self  string // this node's base URL
	token func(room string, regions []string) (string, error)
	api   *webrtc.API
	log   *zap.Logger
}

// run relays room, whose policy is regions, to and from its owner (a base URL) until ctx ends or either side's
// connection does.
func (r *relay) run(ctx context.Context, room, owner string, regions []string) error {
	ctx, cancel := context.WithCancel(ctx) // ends the bridges' goroutines with the run
	defer cancel()
	tok, err := r.token(room, regions)
	if err != nil {
		return fmt.Errorf("relay token: %w", err)
	}
	var toOwner, toLocal bridgeSide
	ownerEvents, localEvents := make(chan client.Message, 256), make(chan client.Message, 256)
	ownerConn, err := client.Dial(ctx, client.WSURL(owner), tok, client.Options{API: r.api, Events: ownerEvents,
		OnTrack:           func(pid string, t *webrtc.TrackRemote, rr *webrtc.RTPReceiver) { toLocal.forward(ctx, pid, t, rr) },
		OnKeyframeRequest: func(t webrtc.TrackLocal) { toOwner.keyframe(t) },
		OnLayers:          func(track string, rids, paused []string) { toOwner.layers(track, rids, paused) }})
	if err != nil {
		return fmt.Errorf("relay to the owner %s: %w", owner, err)
	}
	defer ownerConn.Close()
	localConn, err := client.Dial(ctx, client.WSURL(r.self), tok, client.Options{API: r.api, Events: localEvents,
		OnTrack:           func(pid string, t *webrtc.TrackRemote, rr *webrtc.RTPReceiver) { toOwner.forward(ctx, pid, t, rr) },
		OnKeyframeRequest: func(t webrtc.TrackLocal) { toLocal.keyframe(t) },
		OnLayers:          func(track string, rids, paused []string) { toLocal.layers(track, rids, paused) }})
	if err != nil {
		return fmt.Errorf("relay into this node: %w", err)
	}
	defer localConn.Close()
	ownerRoster, localRoster := newRoster(ownerConn.Joined), newRoster(localConn.Joined)
	toOwner.init(ownerConn, localConn, localRoster)
	toLocal.init(localConn, ownerConn, ownerRoster)
	r.log.Info("relaying room", zap.String("room", room), zap.String("owner", owner))
	ownerSide := &moderationSide{conn: ownerConn, events: ownerEvents, name: "the owner's"}
	localSide := &moderationSide{conn: localConn, events: localEvents, name: "this node's"}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case m := <-ownerEvents:
			if id := ownerRoster.apply(m); id != "" {
				toLocal.syncMute(id)
			}
			err = ownerSide.carry(m, localSide)
		case m := <-localEvents:
			if id := localRoster.apply(m); id != "" {
				toOwner.syncMute(id)
			}
			err = localSide.carry(m, ownerSide)
		case n := <-toLocal.notes:
			toLocal.noted(n)
		case n := <-toOwner.notes:
			toOwner.noted(n)
		case <-ownerConn.Done():
			err = ownerSide.ended(localSide)
		case <-localConn.Done():
			err = localSide.ended(ownerSide)
		}
		if err != nil {
			return err
		}
	}
}

// errRoomEnded ends a relay for good: an administrator ended the room on one of the two nodes.
var errRoomEnded = errors.New("the room was ended")

// moderationSide is one of a relay's two connections, as far as the room's moderation goes: an administrator's
// lock, unlock or end of the room on one node is carried to the other (the relay's participants are admins), so
// that the two parts of the room stay one room.
type moderationSide struct {
	conn   *client.Client
	events chan client.Message
	name   string
	locked bool // as this side last said
}

// carry passes m, a message of this side, on to the other side when it is moderation of the room.
func (s *moderationSide) carry(m client.Message, other *moderationSide) error {
	switch {
	case m.Type == protocol.TypeRoomState:
		s.locked = m.Locked
		if other.locked != m.Locked { // not an echo of what the other side said
			action := sfu.ActionUnlock
			if m.Locked {
				action = sfu.ActionLock
			}
			return other.conn.Send(protocol.Request{Type: protocol.TypeAdmin, Action: action})
		}
	case m.Type == protocol.TypeRelayAdmin: // an administrator of this side acted on a participant of the other
		publish := m.Publish
		return other.conn.Send(protocol.Request{Type: protocol.TypeAdmin, Action: m.Action, Participant: m.ParticipantID,
			Track: m.TrackID, Publish: &publish})
	case m.Type == protocol.TypeChat: // said on this side (the relay never gets back what it carried here)
		return other.conn.Send(protocol.Request{Type: protocol.TypeChat, Text: m.Text, To: m.To, Participant: m.From, Name: m.Name})
	case m.Type == protocol.TypeE2EE: // an E2EE room's key message, as unread as here
		return other.conn.Send(protocol.Request{Type: protocol.TypeE2EE, Data: m.Data, To: m.To, Participant: m.From})
	case m.Type == protocol.TypeBye && m.Reason == "room_ended":
		_ = other.conn.Send(protocol.Request{Type: protocol.TypeAdmin, Action: sfu.ActionEnd})
		return errRoomEnded
	}
	return nil
}

// ended is why the relay stops when this side's connection has closed: a room ended here (its goodbye may still be
// waiting among the events) is ended on the other side too.
func (s *moderationSide) ended(other *moderationSide) error {
	for {
		select {
		case m := <-s.events:
			if err := s.carry(m, other); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s connection ended", s.name)
		}
	}
}

// roster is what one side's node tells the relay of the room: its participants (the relays not among them) and
// who publishes each track, so that a track carried to the other side keeps its publisher, source and mute state
// there. The relay's own tracks on that side are not in it: a node tells no participant of its own tracks.
type roster struct {
	mu      sync.Mutex
	people  map[string]protocol.Participant // by id, without their tracks
	tracks  map[string]trackOwner           // by track id
	changed chan struct{}                   // closed at each change, then replaced
}

// trackOwner is who publishes a track and what the node says of it.
type trackOwner struct {
	pid    string
	source string
	muted  bool
}

// newRoster starts a roster from the relay's joined message on that side.
func newRoster(joined client.Message) *roster {
	r := &roster{people: map[string]protocol.Participant{}, tracks: map[string]trackOwner{}, changed: make(chan struct{})}
	for _, p := range joined.Participants {
		r.addLocked(p)
	}
	return r
}

func (r *roster) addLocked(p protocol.Participant) {
	for _, t := range p.Tracks {
		r.tracks[t.ID] = trackOwner{pid: p.ID, source: t.Source, muted: t.Muted}
	}
	p.Tracks = nil
	r.people[p.ID] = p
}

// apply takes in an event of this side; it returns the id of a track whose mute state the event gives, or "".
func (r *roster) apply(m client.Message) (mutedTrack string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case m.Type == protocol.TypeParticipantJoined && m.Participant != nil:
		r.addLocked(*m.Participant)
	case m.Type == protocol.TypeParticipantLeft && m.Participant != nil:
		delete(r.people, m.Participant.ID)
		for id, t := range r.tracks {
			if t.pid == m.Participant.ID {
				delete(r.tracks, id)
			}
		}
	case m.Type == protocol.TypeTrackPublished && m.Track != nil:
		r.tracks[m.Track.ID] = trackOwner{pid: m.ParticipantID, source: m.Track.Source, muted: m.Track.Muted}
	case m.Type == protocol.TypeTrackUnpublished && m.Track != nil:
		delete(r.tracks, m.Track.ID)
	case m.Type == protocol.TypeTrackMuted && m.Track != nil:
		t, ok := r.tracks[m.Track.ID]
		if !ok {
			return ""
		}
		t.muted = m.Track.Muted
		r.tracks[m.Track.ID] = t
		mutedTrack = m.Track.ID
	default:
		return ""
	}
	close(r.changed)
	r.changed = make(chan struct{})
	return mutedTrack
}

// publisher waits until the roster knows who publishes the track id, at most timeout.
func (r *roster) publisher(ctx context.Context, id string, timeout time.Duration) (protocol.Participant, trackOwner, bool) {
	wait := time.NewTimer(timeout)
	defer wait.Stop()
	for {
		r.mu.Lock()
		t, ok := r.tracks[id]
		p, known := r.people[t.pid]
		changed := r.changed
		r.mu.Unlock()
		if ok && known {
			return p, t, true
		}
		select {
		case <-changed:
		case <-wait.C:
			return protocol.Participant{}, trackOwner{}, false
		case <-ctx.Done():
			return protocol.Participant{}, trackOwner{}, false
		}
	}
}

// muted is the track's mute state as this side says it; false when it does not know the track.
func (r *roster) muted(id string) (muted, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tracks[id]
	return t.muted, ok
}

// bridgeSide publishes, through pub, the tracks received on the other side, each as its publisher's there
// (a relay_track request before it); keyframe requests for them go back to that side's receiver. The mute state
// of a track it publishes is sent only by the relay's loop (noted, syncMute), so that the last one sent is the
// last one the other side said.
type bridgeSide struct {
	ready   chan struct{}
	initMu  sync.Once
	pub     *client.Client // publishes here
	from    *client.Client // receives there
	roster  *roster        // the other side's
	notes   chan pubNote   // tracks published here and ended, for the relay's loop
	pubMu   sync.Mutex     // one negotiation at a time
	mu      sync.Mutex
	sources map[webrtc.TrackLocal]uint32 // published track (or layer) → the SSRC it comes from on the other side
	videos  map[string]*simulcastOut     // simulcast videos published here, by track id
	sent    map[string]bool              // published track id → the mute state this side was told; the relay's loop only
}

// simulcastOut is a video published here as simulcast, whose layers arrive from the other side as tracks of
// their own (sfu.RelayLayerTrackID): the first layer to arrive publishes it, the last to end unpublishes it.
type simulcastOut struct {
	ready chan struct{} // closed once published, or failed (sc nil)
	sc    *client.Simulcast
	users int // layers being copied into it; under bridgeSide.mu
}

// relayRIDs are the rids of the layers a relay publishes, lowest first: the SFU's own names (forward.LayerIndex).
var relayRIDs = []string{"q", "h", "f"}

// pubNote says a track was published here with its mute state, or ended (gone).
type pubNote struct {
	track string
	muted bool
	gone  bool
}

func (b *bridgeSide) setup() {
	b.initMu.Do(func() { b.ready, b.notes = make(chan struct{}), make(chan pubNote, 16) })
}

func (b *bridgeSide) init(pub, from *client.Client, other *roster) {
	b.setup()
	b.pub, b.from, b.roster, b.sent = pub, from, other, map[string]bool{}
	b.sources, b.videos = map[webrtc.TrackLocal]uint32{}, map[string]*simulcastOut{}
	close(b.ready)
}

// note tells the relay's loop of n.
func (b *bridgeSide) note(ctx context.Context, n pubNote) {
	select {
	case b.notes <- n:
	case <-ctx.Done():
	}
}

// noted takes in a note, on the relay's loop.
func (b *bridgeSide) noted(n pubNote) {
	if n.gone {
		delete(b.sent, n.track)
		return
	}
	b.sent[n.track] = n.muted
	b.syncMute(n.track)
}

// syncMute tells this side the mute state the other side gives the track, if it is published here and was told
// otherwise; on the relay's loop.
func (b *bridgeSide) syncMute(id string) {
	told, published := b.sent[id]
	muted, known := b.roster.muted(id)
	if !published || !known || muted == told {
		return
	}
	if b.pub.Send(protocol.Request{Type: protocol.TypeMute, Track: id, Muted: &muted}) == nil {
		b.sent[id] = muted
	}
}

// forward publishes a track received on the other side and copies its packets until it ends. The track keeps
// its id; it is shown as its publisher's on the other side (relay_track), whose id is its stream id.
func (b *bridgeSide) forward(ctx context.Context, pid string, in *webrtc.TrackRemote, rr *webrtc.RTPReceiver) {
	b.setup()
	select {
	case <-b.ready:
	case <-ctx.Done():
		return
	}
	if id, layer, ok := sfu.ParseRelayLayerTrackID(in.ID()); ok {
		b.forwardLayer(ctx, pid, id, layer, in)
		return
	}
	from, muted, ok := b.announce(ctx, pid, in.ID())
	if !ok {
		return
	}
	out, err := webrtc.NewTrackLocalStaticRTP(in.Codec().RTPCodecCapability, in.ID(), from.ID)
	if err != nil {
		return
	}
	defer b.source(out, in)()
	b.pubMu.Lock()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	senders, err := b.pub.Publish(pctx, out)
	cancel()
	b.pubMu.Unlock()
	if err != nil {
		return
	}
	b.note(ctx, pubNote{track: in.ID(), muted: muted})
	defer func() {
		b.note(ctx, pubNote{track: in.ID(), gone: true})
		b.pubMu.Lock()
		defer b.pubMu.Unlock()
		if b.pub.Pub.RemoveTrack(senders[0]) == nil {
			nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = b.pub.NegotiatePublish(nctx)
			cancel()
		}
	}()
	// The header extensions were numbered for the connection they came on: only the audio level goes on, with
	// its number on this side's.
	inLevel := extensionID(rr.GetParameters().HeaderExtensions, sdp.AudioLevelURI)
	outLevel := extensionID(senders[0].GetParameters().HeaderExtensions, sdp.AudioLevelURI)
	copyPackets(in, func(pkt *rtp.Packet) {
		var level []byte
		if inLevel != 0 {
			level = pkt.GetExtension(inLevel)
		}
		pkt.Header.Extension = false
		pkt.Header.Extensions = pkt.Header.Extensions[:0]
		if len(level) > 0 && outLevel != 0 {
			_ = pkt.Header.SetExtension(outLevel, level)
		}
		_ = out.WriteRTP(pkt) // a sender not bound yet drops the packet; the track goes on
	})
}

// source records that keyframe requests for out go to in's sender on the other side; the returned function
// forgets it.
func (b *bridgeSide) source(out webrtc.TrackLocal, in *webrtc.TrackRemote) func() {
	b.mu.Lock()
	b.sources[out] = uint32(in.SSRC())
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.sources, out)
		b.mu.Unlock()
	}
}

// copyPackets reads in's packets and gives each to write (the same packet, reused) until in ends.
func copyPackets(in *webrtc.TrackRemote, write func(*rtp.Packet)) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := in.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) == nil {
			write(&pkt)
		}
	}
}

// extensionID is the id negotiated for the header extension uri, 0 when it was not.
func extensionID(exts []webrtc.RTPHeaderExtensionParameter, uri string) uint8 {
	for _, e := range exts {
		if e.URI == uri {
			return uint8(e.ID)
		}
	}
	return 0
}

// announce tells this side whose track id, received from the other side, is about to be published (relay_track);
// it returns the publisher and its mute state there.
func (b *bridgeSide) announce(ctx context.Context, pid, id string) (protocol.Participant, bool, bool) {
	// The other side told of the track before offering it, but its event may still be on the way to the roster.
	from, owner, ok := b.roster.publisher(ctx, id, 5*time.Second)
	if !ok {
		if ctx.Err() != nil {
			return protocol.Participant{}, false, false
		}
		from, owner = protocol.Participant{ID: pid, Identity: pid}, trackOwner{pid: pid}
	}
	muted := owner.muted
	if err := b.pub.Send(protocol.Request{Type: protocol.TypeRelayTrack, Track: id, Participant: from.ID,
		Identity: from.Identity, Name: from.Name, E2EE: from.E2EE, Source: owner.source, Muted: &muted}); err != nil {
		return protocol.Participant{}, false, false
	}
	return from, muted, true
}

// forwardLayer copies one layer of the video id, received as a track of its own, into the simulcast track that
// publishes the video here, until it ends; the first layer publishes the track, the last one unpublishes it.
func (b *bridgeSide) forwardLayer(ctx context.Context, pid, id string, layer int, in *webrtc.TrackRemote) {
	b.mu.Lock()
	v := b.videos[id]
	first := v == nil
	if first {
		v = &simulcastOut{ready: make(chan struct{})}
		b.videos[id] = v
	}
	v.users++
	b.mu.Unlock()
	defer b.leaveVideo(ctx, id, v)
	if first {
		b.publishVideo(ctx, pid, id, in.Codec().RTPCodecCapability, v)
	}
	select {
	case <-v.ready:
	case <-ctx.Done():
		return
	}
	if v.sc == nil {
		return
	}
	out := v.sc.Layers[layer]
	defer b.source(out, in)()
	copyPackets(in, func(pkt *rtp.Packet) {
		_ = v.sc.WriteRTP(layer, pkt) // a layer not bound yet drops the packet; the track goes on
	})
}

// publishVideo announces and publishes the video id as a simulcast track, then marks v ready.
func (b *bridgeSide) publishVideo(ctx context.Context, pid, id string, codec webrtc.RTPCodecCapability, v *simulcastOut) {
	defer close(v.ready)
	from, muted, ok := b.announce(ctx, pid, id)
	if !ok {
		return
	}
	b.pubMu.Lock()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sc, err := b.pub.PublishSimulcast(pctx, codec, id, from.ID, relayRIDs...)
	cancel()
	b.pubMu.Unlock()
	if err != nil {
		return
	}
	v.sc = sc
	b.note(ctx, pubNote{track: id, muted: muted})
}

// leaveVideo counts a layer of the video id out; the last one unpublishes it.
func (b *bridgeSide) leaveVideo(ctx context.Context, id string, v *simulcastOut) {
	b.mu.Lock()
	v.users--
	last := v.users == 0
	if last && b.videos[id] == v {
		delete(b.videos, id)
	}
	b.mu.Unlock()
	if !last {
		return
	}
	<-v.ready // the first layer's goroutine closes it before it leaves
	if v.sc == nil {
		return
	}
	b.note(ctx, pubNote{track: id, gone: true})
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if b.pub.Pub.RemoveTrack(v.sc.Sender) == nil {
		nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.pub.NegotiatePublish(nctx)
		cancel()
	}
}

// layers passes on what this side's node says of a simulcast video the relay publishes here: which layers its
// subscribers receive (rids) and which nobody does (paused). The other side is asked to pause the layers nobody
// here wants and to resume the others: a subscription of 0×0 to a layer's track pauses it, any other size
// resumes it. It runs on this side's read loop.
func (b *bridgeSide) layers(id string, rids, paused []string) {
	b.setup()
	select {
	case <-b.ready:
	default:
		return
	}
	for _, set := range []struct {
		rids []string
		side int
	}{{rids, 1}, {paused, 0}} {
		for _, rid := range set.rids {
			side := set.side
			track := sfu.RelayLayerTrackID(id, forward.LayerIndex(rid))
			_ = b.from.Send(protocol.Request{Type: protocol.TypeSubscription, Track: track, Width: &side, Height: &side})
		}
	}
}

// keyframe asks the other side for a keyframe of the track it feeds into t.
func (b *bridgeSide) keyframe(t webrtc.TrackLocal) {
	b.setup()
	select {
	case <-b.ready:
	default:
		return
	}
	b.mu.Lock()
	ssrc, ok := b.sources[t]
	b.mu.Unlock()
	if ok {
		_ = b.from.Sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
	}
}

// Retry bounds of a relay that ended while its room still has participants here.
const (
	relayRetryMin = 500 * time.Millisecond
	relayRetryMax = 5 * time.Second
)

// relays keeps one relay per room hosted here but owned elsewhere, while it has participants here.
type relays struct {
	ctx   context.Context // ends every relay
	wg    sync.WaitGroup
	run   func(ctx context.Context, room, owner string, regions []string) error // relays the room until ctx ends or a side's connection does
	place func(ctx context.Context, room string) (Lease, error)
	end   func(room string) // ends the room here: it was ended on another node (nil: nothing to do)
	retry time.Duration     // the first wait before placing the room again after its relay ended
	log   *zap.Logger

	mu    sync.Mutex
	rooms map[string]*roomRelay
}

type roomRelay struct {
	users  int
	cancel context.CancelFunc
}

// acquire counts a participant hosted here in a room owned by owner, whose policy is regions, starting the room's
// relay for the first; the returned function counts it out.
func (rs *relays) acquire(room, owner string, regions []string) func() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rr := rs.rooms[room]
	if rr == nil {
		ctx, cancel := context.WithCancel(rs.ctx)
		rr = &roomRelay{cancel: cancel}
		rs.rooms[room] = rr
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			rs.keep(ctx, room, owner, regions)
		}()
	}
	rr.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rr.users--; rr.users == 0 {
				rr.cancel()
				delete(rs.rooms, room)
			}
		})
	}
}

// keep runs the room's relay until ctx ends; when the owner goes away, the room is placed again: here (the
// relay is no longer needed) or on another owner, which the relay then connects to.
func (rs *relays) keep(ctx context.Context, room, owner string, regions []string) {
	since := time.Now()
	backoff := rs.retry
	for ctx.Err() == nil {
		err := rs.run(ctx, room, owner, regions)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRoomEnded) { // placing the room again would open it again
			rs.log.Info("relay ended with the room", zap.String("room", room))
			return
		}
		rs.log.Warn("relay ended", zap.String("room", room), zap.String("owner", owner), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, relayRetryMax)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := rs.place(pctx, room)
		cancel()
		switch {
		case err != nil:
			continue
		case l.EndedAt.After(since): // ended while the relay was down: the end did not cross it
			rs.log.Info("the room was ended on another node: ending it here", zap.String("room", room))
			if rs.end != nil {
				rs.end(room)
			}
			return
		case l.Mine:
			rs.log.Info("room now owned here", zap.String("room", room))
			return
		}
		owner, regions = l.Owner.URL, l.Regions
	}
}

// count is how many rooms are relayed.
func (rs *relays) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.rooms)
}

// close stops every relay and waits for them.
func (rs *relays) close() {
	rs.mu.Lock()
	for _, rr := range rs.rooms {
		rr.cancel()
	}
	rs.mu.Unlock()
	rs.wg.Wait()
}

// RelayToken mints the token a relay's clients join with: both rights, the relay claim, so that neither node
// routes it elsewhere, and the room's policy as its regions, so that neither node outside it admits it; audience
// is the region's token audience ("": the default).
func RelayToken(secret []byte, audience, nodeID string) func(room string, regions []string) (string, error) {
	return func(room string, regions []string) (string, error) {
		c := signaling.Claims{Room: room, Identity: "relay-" + nodeID, Name: "relay " + nodeID, Publish: true, Subscribe: true, Relay: true,
			Regions: regions}
		if audience != "" {
			c.Audience = jwt.ClaimStrings{audience}
		}
		return signaling.MintToken(secret, c, time.Hour)
	}
}
