// Package sfu is the room layer of a node: rooms, their participants and the rules around them (admission,
// moderation, limits). It coordinates three packages that know nothing of rooms: sfu/transport sets up Pion,
// sfu/forward moves packets from a publisher's Receiver to each subscriber's DownTrack, and sfu/alloc decides
// which layer each subscriber gets. Workers (noise suppression, captions) attach from outside through Worker.
//
// # Lock order
//
// A goroutine holding one of these locks may take only those after it, never one before:
//
//	Participant.negMu → Participant.sigMu[pc] → SFU.mu → Room.mu → Participant.mu → Track.audioMu →
//	forward.Receiver's locks → forward.DownTrack's lock → banList.mu
//
// forward.Spreader's lock is a leaf: a read goroutine takes it (under its Receiver's locks) only to hand a part of
// a fan-out to the pool, and takes nothing under it.
//
// Messages to a participant (Peer methods) are queued without blocking and may be sent under any of them; so are
// the Observer's notices (observer.go). No lock is held across network I/O (Pion's calls that negotiate or close a
// connection, worker engines, Redis). Worker hooks are called with no SFU lock held.
package sfu

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/forward"
	"github.com/edge-sfu/sfu/sfu/transport"
)

// Config configures a node's SFU.
type Config struct {
	Net        transport.NetConfig
	ICEServers []webrtc.ICEServer // sent to clients and used by the SFU's own connections
	Logger     *zap.Logger
	// LatencyBudget is the end-to-end delay media may take (default 150 ms); receivers are asked to keep their
	// playout delay under it.
	LatencyBudget time.Duration
	// SFUBudget is the SFU's share: a packet that would leave the SFU later than this after it arrived is dropped
	// (default 5 ms; negative: no limit).
	SFUBudget time.Duration
	// Audio decodes and encodes published Opus tracks for the workers that process or tap them; nil: audio is
	// only forwarded.
	Audio *AudioConfig
	// Workers attach to every room, in this order (denoise before captions, so captions hear denoised audio).
	Workers []Worker
	// Rooms gives a room's settings when it is created; nil: every room has the defaults.
	Rooms func(room string) RoomSettings
	// MaxParticipants bounds each room (0: no limit); a room's settings may say otherwise.
	MaxParticipants int
	// MaxAudioStreams is how many microphones a room forwards at once, its loudest (0: every one); a room's
	// settings may say otherwise.
	MaxAudioStreams int
	// MaxPublishBitrate bounds what one participant may publish, in bits per second over its tracks (0: no
	// limit): beyond it, its highest simulcast layers are not forwarded.
	MaxPublishBitrate float64
	// MaxConcurrentJoins bounds the joins being set up at once (0: no limit); one more gets ErrBusy. WHIP and
	// WHEP sessions take a slot too, until their answer is ready.
	MaxConcurrentJoins int
	// DropPrivateCandidates drops clients' ICE candidates at private addresses (RFC 1918, fc00::/7) as well as
	// those at addresses no client can have (loopback unless the node is on loopback, link-local, multicast).
	DropPrivateCandidates bool
	// MaxBans bounds the kicked identities the node keeps refusing (0: DefaultMaxBans); see bans.go.
	MaxBans int
	// Bans shares kicks with the other nodes of the region (package cluster's Bans, over Redis); nil: the
	// node's own list only. See bans.go, which says what happens when it fails.
	Bans BanStore
	// OnWorkerStart is told when a worker (a denoise chain, a captions job) starts on a track, for the audit
	// log; nil: nobody is.
	OnWorkerStart func(room, participantID, trackID, worker string)
	// Observer is told what happens in the rooms (observer.go): the webhooks; nil: nobody is.
	Observer Observer
}

// Defaults for Config.
const (
	DefaultLatencyBudget = 150 * time.Millisecond
	DefaultSFUBudget     = 5 * time.Millisecond
)

// SFU holds the rooms of one node.
type SFU struct {
	apis       *transport.APIs
	closeNet   func() error
	budget     time.Duration // the SFU's share of the latency budget
	playout    time.Duration // the most playout delay receivers should add
	iceServers []webrtc.ICEServer
	log        *zap.Logger

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool

	stop context.CancelFunc // ends the room ticker
	wg   sync.WaitGroup

	latency    prometheus.Histogram // SFU-added latency: a packet's arrival to its last copy's send
	processing prometheus.Histogram // audio processing: a packet's arrival to its processed copy's send

	audio   *AudioConfig
	workers []Worker

	maxParticipants   int
	maxAudioStreams   int
	spreader          *forward.Spreader // shares the fan-out of rooms with many subscribers
	maxPublishBitrate float64
	joinSlots         chan struct{} // nil: no limit on concurrent joins
	candidates        candidateFilter
	onWorkerStart     func(room, participantID, trackID, worker string)
	roomSettings      func(string) RoomSettings
	bans              *banList // identities kicked from rooms, refused until their tokens expire
	banStore          BanStore // nil: bans are this node's only
	observer          Observer // nil: none

	tracksPublished atomic.Uint64
	retiredMu       sync.Mutex
	retired         forward.Counters // counters of tracks that have ended
}

// UDPMedia is where the node takes media over UDP (its ICE UDP mux, or its port range): what the built-in TURN
// server may relay to.
func (s *SFU) UDPMedia() transport.UDPMedia { return s.apis.UDP }

// ErrShutdown is returned by Join once the SFU is closing.
var ErrShutdown = errors.New("sfu is shutting down")

// New opens the node's media sockets.
func New(cfg Config) (*SFU, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	apis, closeNet, err := transport.New(cfg.Net, transport.Logger(log))
	if err != nil {
		return nil, err
	}
	s := &SFU{apis: apis, closeNet: closeNet, iceServers: cfg.ICEServers, log: log, rooms: map[string]*Room{},
		budget: cfg.SFUBudget, playout: cfg.LatencyBudget, audio: cfg.Audio, workers: cfg.Workers, roomSettings: cfg.Rooms,
		maxParticipants: cfg.MaxParticipants, maxAudioStreams: cfg.MaxAudioStreams, maxPublishBitrate: cfg.MaxPublishBitrate, onWorkerStart: cfg.OnWorkerStart,
		candidates: candidateFilter{loopback: apis.OnLoopback, private: cfg.DropPrivateCandidates},
		// One worker fewer than the CPUs: the read goroutine that shares out a fan-out writes a part itself.
		spreader: forward.NewSpreader(max(runtime.GOMAXPROCS(0)-1, 1))}
	if cfg.MaxBans <= 0 {
		cfg.MaxBans = DefaultMaxBans
	}
	s.bans = newBanList(cfg.MaxBans)
	s.banStore = cfg.Bans
	s.observer = cfg.Observer
	if cfg.MaxConcurrentJoins > 0 {
		s.joinSlots = make(chan struct{}, cfg.MaxConcurrentJoins)
	}
	if s.budget == 0 {
		s.budget = DefaultSFUBudget
	}
	if s.budget < 0 {
		s.budget = 0
	}
	if s.playout <= 0 {
		s.playout = DefaultLatencyBudget
	}
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sfu_forward_latency_seconds",
		Help:    "Time from a packet's arrival (decrypted) to the send of its last copy to a subscriber.",
		Buckets: prometheus.ExponentialBucketsRange(10e-6, 0.1, 25)})
	s.processing = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sfu_audio_processing_seconds",
		Help:    "Time from an audio packet's arrival to the send of its processed (denoised) copy.",
		Buckets: prometheus.ExponentialBucketsRange(50e-6, 0.1, 20)})
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.tickRooms(ctx)
	}()
	return s, nil
}

// ICEServers are the STUN/TURN servers clients should use.
func (s *SFU) ICEServers() []webrtc.ICEServer { return s.iceServers }

// JoinRequest is what a verified token says about the participant.
type JoinRequest struct {
	Room           string
	Identity       string
	Name           string
	CanPublish     bool
	CanSubscribe   bool
	CanPublishData bool
	Admin          bool
	// Session is how the participant connects: the WebSocket (the zero value), WHIP or WHEP. It decides which
	// earlier session of the same identity the participant replaces (Room.join).
	Session Session
	// ValidUntil is the last moment the participant's token is taken (its exp plus the verifier's leeway); zero:
	// no end. A kick bans the identity from the room until then; its TURN credentials end then at the latest.
	ValidUntil time.Time
	// Relay: the participant is another node's relay (sfu/cluster). It is nobody's participant to the others (no
	// participant_joined or left, not in joined's list), and the tracks it publishes may be another node's
	// participant's (RelayTrack), shown as theirs.
	Relay bool
	// Locked: the room is locked on another node of the cluster (the placement read it with the room's lease). The
	// part of the room here is locked too before the participant is admitted.
	Locked bool
	// Regions is the room's residency policy, as the cluster stored it when the room was first placed (nil: a
	// single node, no policy). The room keeps the first it is given (Room.Regions); workers that send its media
	// off the node keep to it.
	Regions []string
	// E2EE is the client's end-to-end encryption announcement (its public key, authenticated with the room's
	// passphrase; opaque to the server); "": the client does not encrypt. An E2EE room takes only clients with
	// one, and other rooms only clients without (Room.admitEncryptionLocked). Everyone sees it in the
	// participant's info.
	E2EE string
}

// Session is the kind of a participant's session.
type Session uint8

const (
	SessionWebSocket Session = iota
	SessionWHIP
	SessionWHEP
)

// Join puts a new participant in the room, creating the room if needed. The participant's first event (sent to
// peer) is EventJoined; a participant it replaces (see Room.join) is ended with "replaced".
func (s *SFU) Join(req JoinRequest, peer Peer) (*Participant, error) {
	release, err := s.takeJoinSlot()
	if err != nil {
		return nil, err
	}
	defer release()
	return s.join(req, peer)
}

// join is Join once a join slot is taken.
func (s *SFU) join(req JoinRequest, peer Peer) (*Participant, error) {
	if err := s.checkBan(req.Room, req.Identity); err != nil { // before any lock: it may ask Redis
		return nil, err
	}
	p, err := s.newParticipant(req, peer)
	if err != nil {
		return nil, err
	}
	if err := s.enter(p, req.Room); err != nil {
		p.discard()
		return nil, err
	}
	return p, nil
}

func (s *SFU) newParticipant(req JoinRequest, peer Peer) (*Participant, error) {
	info := ParticipantInfo{ID: newID("PA_"), Identity: req.Identity, Name: req.Name,
		CanPublish: req.CanPublish, CanSubscribe: req.CanSubscribe, CanPublishData: req.CanPublishData, Admin: req.Admin,
		ValidUntil: req.ValidUntil, JoinedAt: time.Now(), E2EE: req.E2EE}
	log := s.log.With(zap.String("room", req.Room), zap.String("participant", info.ID), zap.String("identity", req.Identity))
	p, err := newParticipant(s.apis, info, peer, s.iceServers, log)
	if err != nil {
		return nil, err
	}
	p.candidates = s.candidates
	p.session = req.Session
	p.lockedInCluster, p.regions, p.relay = req.Locked, req.Regions, req.Relay
	return p, nil
}

// enter adds p to its room and subscribes it to the tracks there.
func (s *SFU) enter(p *Participant, room string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrShutdown
	}
	if until, banned := s.bans.banned(room, p.info.Identity, time.Now()); banned { // the list only: no I/O here
		s.mu.Unlock()
		return kickedError(room, p.info.Identity, until)
	}
	rm := s.rooms[room]
	if rm == nil {
		rm = newRoom(room, s)
		s.rooms[room] = rm
		p.log.Info("room opened")
	}
	p.room = rm
	tracks, replaced, err := rm.join(p)
	s.mu.Unlock()
	if err != nil {
		s.noteRefusal(rm, p, err)
		s.removeRoom(rm) // if the refused participant was going to be its first
		return err
	}
	p.log.Info("participant joined")
	for _, w := range rm.workers { // no SFU lock held
		w.ParticipantJoined(p)
	}

	if replaced != nil {
		replaced.peer.End("replaced")
		replaced.Close()
	}
	p.startControl()
	if p.answerMode {
		tracks = newestFirst(tracks) // a WHEP viewer's sections take the newest tracks
	}
	for _, t := range tracks {
		p.subscribe(t)
	}
	return nil
}

// removeRoom forgets rm if it is still empty (and, for a room created through the API, has been empty longer than
// it waits for participants), and closes its workers.
func (s *SFU) removeRoom(rm *Room) {
	s.mu.Lock()
	rm.mu.Lock()
	gone := len(rm.participants) == 0 && s.rooms[rm.name] == rm && time.Since(rm.emptySince) >= rm.keepEmpty
	if gone {
		delete(s.rooms, rm.name)
		s.notify(Notice{Kind: NoticeRoomFinished, Room: rm.Ref()})
	}
	rm.mu.Unlock()
	s.mu.Unlock()
	if gone {
		s.log.Info("room closed", zap.String("room", rm.name))
		rm.closeWorkers()
	}
}

// Close ends every participant's session with "shutdown" and releases the media sockets.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	rooms := s.roomList()
	s.mu.Unlock()
	var ps []*Participant
	for _, rm := range rooms {
		ps = append(ps, rm.snapshot()...)
	}

	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.peer.End("shutdown")
			p.Close()
		}()
	}
	wg.Wait()
	for _, rm := range rooms { // rooms created through the API that were waiting, empty, close with their workers
		rm.mu.Lock()
		rm.keepEmpty = 0
		rm.mu.Unlock()
		s.removeRoom(rm)
	}
	s.stop()
	s.wg.Wait()
	s.spreader.Close()
	if err := s.closeNet(); err != nil {
		return fmt.Errorf("close media sockets: %w", err)
	}
	return nil
}

// roomList copies the open rooms; s.mu is held.
func (s *SFU) roomList() []*Room {
	rooms := make([]*Room, 0, len(s.rooms))
	for _, rm := range s.rooms {
		rooms = append(rooms, rm)
	}
	return rooms
}

// openRooms returns the open rooms.
func (s *SFU) openRooms() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomList()
}

// retire adds an ended track's counters to the node's totals.
func (s *SFU) retire(r *forward.Receiver) {
	c := r.Counters()
	s.retiredMu.Lock()
	s.retired.Add(c)
	s.retiredMu.Unlock()
}

// Stats are the node's figures for /metrics.
type Stats struct {
	Rooms, Participants, Tracks int
	TracksPublished             uint64
	PacketsIn, BytesIn          uint64
	PacketsOut, BytesOut        uint64
	NACKs, PLIs                 uint64
}

// LatencyHistogram is the SFU-added latency: from a packet's arrival to the send of its last copy.
func (s *SFU) LatencyHistogram() prometheus.Histogram { return s.latency }

// ProcessingHistogram is the time audio processing adds, for /metrics.
func (s *SFU) ProcessingHistogram() prometheus.Histogram { return s.processing }

// Subscribers returns every participant's figures as a subscriber.
func (s *SFU) Subscribers() []SubscriberStats {
	var out []SubscriberStats
	for _, rm := range s.openRooms() {
		for _, p := range rm.snapshot() {
			if p.CanSubscribe() {
				out = append(out, p.subscriberStats())
			}
		}
	}
	return out
}

// Stats counts rooms, participants and tracks now, and packets since the node started.
func (s *SFU) Stats() Stats {
	s.retiredMu.Lock()
	total := s.retired
	s.retiredMu.Unlock()
	st := Stats{TracksPublished: s.tracksPublished.Load()}
	rooms := s.openRooms()
	st.Rooms = len(rooms)
	for _, rm := range rooms {
		for _, p := range rm.snapshot() {
			st.Participants++
			for _, t := range p.Tracks() {
				st.Tracks++
				total.Add(t.r.Counters())
			}
		}
	}
	st.PacketsIn, st.BytesIn = total.PacketsIn, total.BytesIn
	st.PacketsOut, st.BytesOut = total.PacketsOut, total.BytesOut
	st.NACKs, st.PLIs = total.NACKs, total.PLIs
	return st
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
