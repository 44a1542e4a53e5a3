// Package sfu forwards media between the participants of a room: a Receiver per published track reads the
// publisher's packets and hands them to a DownTrack per subscriber, which rewrites them for that subscriber.
package sfu

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config configures a node's SFU.
type Config struct {
	Net        NetConfig
	ICEServers []webrtc.ICEServer // sent to clients and used by the SFU's own connections
	Logger     *zap.Logger
	// LatencyBudget is the end-to-end delay media may take (default 150 ms); receivers are asked to keep their
	// playout delay under it.
	LatencyBudget time.Duration
	// SFUBudget is the SFU's share: a packet that would leave the SFU later than this after it arrived is dropped
	// (default 5 ms; negative: no limit).
	SFUBudget time.Duration
	// Audio runs the media pipeline on published audio tracks; nil: audio is only forwarded.
	Audio *AudioConfig
	// Rooms gives a room's settings when it is created; nil: every room has the defaults.
	Rooms func(room string) RoomSettings
	// Captions transcribes microphone tracks while anyone in their room reads captions; nil: no captions.
	Captions CaptionService
	// CaptionLang is the language participants speak unless they or their room say otherwise (default "en").
	CaptionLang string
	// MaxParticipants bounds each room (0: no limit).
	MaxParticipants int
	// MaxPublishBitrate bounds what one participant may publish, in bits per second over its tracks (0: no
	// limit): beyond it, its highest simulcast layers are not forwarded.
	MaxPublishBitrate float64
	// MaxConcurrentJoins bounds the joins being set up at once (0: no limit); one more gets ErrBusy.
	MaxConcurrentJoins int
	// OnWorkerStart is told when a worker (a denoise chain, a captions job) starts on a track, for the audit
	// log; nil: nobody is.
	OnWorkerStart func(room, participantID, trackID, worker string)
}

// Defaults for Config.
const (
	DefaultLatencyBudget = 150 * time.Millisecond
	DefaultSFUBudget     = 5 * time.Millisecond
)

// SFU holds the rooms of one node.
type SFU struct {
	apis       *mediaAPIs
	closeNet   func() error
	budget     time.Duration // the SFU's share of the latency budget
	playout    time.Duration // the most playout delay receivers should add
	iceServers []webrtc.ICEServer
	log        *zap.Logger

	mu     sync.Mutex
	rooms  map[string]*Room
	closed bool

	stop context.CancelFunc // ends the speaker loop
	wg   sync.WaitGroup

	latency    prometheus.Histogram // SFU-added latency: a packet's arrival to its last copy's send
	processing prometheus.Histogram // audio processing: a packet's arrival to its processed copy's send

	audio       *AudioConfig
	captions    CaptionService
	captionLang string

	maxParticipants   int
	maxPublishBitrate float64
	joinSlots         chan struct{} // nil: no limit on concurrent joins
	onWorkerStart     func(room, participantID, trackID, worker string)
	roomSettings      func(string) RoomSettings

	tracksPublished atomic.Uint64
	retired         receiverStats // counters of tracks that have ended
}

// ErrShutdown is returned by Join once the SFU is closing.
var ErrShutdown = errors.New("sfu is shutting down")

// New opens the node's media sockets.
func New(cfg Config) (*SFU, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	apis, closeNet, err := newAPIs(cfg.Net, pionLogger(log))
	if err != nil {
		return nil, err
	}
	s := &SFU{apis: apis, closeNet: closeNet, iceServers: cfg.ICEServers, log: log, rooms: map[string]*Room{},
		budget: cfg.SFUBudget, playout: cfg.LatencyBudget, audio: cfg.Audio, roomSettings: cfg.Rooms,
		captions: cfg.Captions, captionLang: cfg.CaptionLang, maxParticipants: cfg.MaxParticipants, maxPublishBitrate: cfg.MaxPublishBitrate,
		onWorkerStart: cfg.OnWorkerStart}
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
		s.speakerLoop(ctx)
	}()
	return s, nil
}

// workerStarted tells OnWorkerStart, if set.
func (s *SFU) workerStarted(room, participantID, trackID, worker string) {
	if s.onWorkerStart != nil {
		s.onWorkerStart(room, participantID, trackID, worker)
	}
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
}

// Join puts a new participant in the room, creating the room if needed. The participant's first event (sent to
// peer) is EventJoined; a participant with the same identity already in the room is ended with "replaced".
func (s *SFU) Join(req JoinRequest, peer Peer) (*Participant, error) {
	if s.joinSlots != nil {
		select {
		case s.joinSlots <- struct{}{}:
			defer func() { <-s.joinSlots }()
		default:
			return nil, fmt.Errorf("%w: %d joins are being set up; try again shortly", ErrBusy, cap(s.joinSlots))
		}
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
		CanPublish: req.CanPublish, CanSubscribe: req.CanSubscribe, CanPublishData: req.CanPublishData, Admin: req.Admin}
	log := s.log.With(zap.String("room", req.Room), zap.String("participant", info.ID), zap.String("identity", req.Identity))
	return newParticipant(s.apis, info, nil, peer, s.iceServers, log)
}

// enter adds p to its room and subscribes it to the tracks there.
func (s *SFU) enter(p *Participant, room string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrShutdown
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
		s.removeRoom(rm) // if the refused participant was going to be its first
		return err
	}
	p.log.Info("participant joined")

	if replaced != nil {
		replaced.peer.End("replaced")
		replaced.Close()
	}
	p.startAllocator()
	for _, t := range tracks {
		p.subscribe(t.r, t.publisherID)
	}
	return nil
}

// removeRoom forgets rm if it is still empty.
func (s *SFU) removeRoom(rm *Room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.participants) == 0 && s.rooms[rm.name] == rm {
		delete(s.rooms, rm.name)
		s.log.Info("room closed", zap.String("room", rm.name))
	}
}

// Close ends every participant's session with "shutdown" and releases the media sockets.
func (s *SFU) Close() error {
	s.mu.Lock()
	s.closed = true
	var ps []*Participant
	for _, rm := range s.rooms {
		ps = append(ps, rm.snapshot()...)
	}
	s.mu.Unlock()

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
	s.stop()
	s.wg.Wait()
	if err := s.closeNet(); err != nil {
		return fmt.Errorf("close media sockets: %w", err)
	}
	return nil
}

// retire adds an ended track's counters to the node's totals.
func (s *SFU) retire(r *Receiver) {
	s.retired.add(&r.stats)
}

func (t *receiverStats) add(o *receiverStats) {
	t.packetsIn.Add(o.packetsIn.Load())
	t.bytesIn.Add(o.bytesIn.Load())
	t.packetsOut.Add(o.packetsOut.Load())
	t.bytesOut.Add(o.bytesOut.Load())
	t.nacks.Add(o.nacks.Load())
	t.plis.Add(o.plis.Load())
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
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, rm := range s.rooms {
		rooms = append(rooms, rm)
	}
	s.mu.Unlock()
	var out []SubscriberStats
	for _, rm := range rooms {
		for _, p := range rm.snapshot() {
			if p.info.CanSubscribe {
				out = append(out, p.subscriberStats())
			}
		}
	}
	return out
}

// Stats counts rooms, participants and tracks now, and packets since the node started.
func (s *SFU) Stats() Stats {
	var total receiverStats
	total.add(&s.retired)
	st := Stats{TracksPublished: s.tracksPublished.Load()}
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, rm := range s.rooms {
		rooms = append(rooms, rm)
	}
	s.mu.Unlock()
	st.Rooms = len(rooms)
	for _, rm := range rooms {
		for _, p := range rm.snapshot() {
			st.Participants++
			p.mu.Lock()
			for _, r := range p.published {
				st.Tracks++
				total.add(&r.stats)
			}
			p.mu.Unlock()
		}
	}
	st.PacketsIn, st.BytesIn = total.packetsIn.Load(), total.bytesIn.Load()
	st.PacketsOut, st.BytesOut = total.packetsOut.Load(), total.bytesOut.Load()
	st.NACKs, st.PLIs = total.nacks.Load(), total.plis.Load()
	return st
}

func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// pionLogger sends Pion's own warnings and errors to zap.
func pionLogger(log *zap.Logger) logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	if w := zap.NewStdLog(log.Named("pion")).Writer(); w != nil {
		lf.Writer = w
	}
	return lf
}
