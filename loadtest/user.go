package loadtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// FreezeGap is the longest gap between two frames of a video that is not a freeze.
const FreezeGap = 500 * time.Millisecond

// streamGrace is how long after a track is published a subscriber may take to receive it before a second
// without its packets counts against stability.
const streamGrace = 2 * time.Second

// user is one simulated participant.
type user struct {
	run       *runner
	room      string
	identity  string
	publisher bool          // sends audio and simulcast video
	openMic   bool          // sends audio only, speaking by the schedule (allhands)
	joinAt    time.Duration // after the start of the run

	c          *client.Client
	ready      chan struct{} // closed once c is set: tracks can arrive before Dial returns
	joined     atomic.Bool
	gone       atomic.Bool // the session ended after joining
	joinStart  time.Time
	firstVideo atomic.Bool
	// videoKnown is when the user could first expect a video: its join, or a later first track_published.
	// Join time counts from it, so that a user who joins an empty room is not charged for the wait.
	videoKnown atomic.Int64

	mu      sync.Mutex
	streams map[string]*stream // remote tracks this user should receive, by track id
	idents  map[string]string  // the room's participants: id to the harness's identity (their name)
}

// listener reports whether u only receives.
func (u *user) listener() bool { return !u.publisher && !u.openMic }

// stream is one remote track as a subscriber receives it.
type stream struct {
	kind      string
	publisher string    // the publisher's participant id, once known; guarded by the user's mu
	published time.Time // when this user learnt of it

	perSecond atomic.Int64 // packets since the sampler last looked

	// Owned by the track's reader goroutine.
	seq       seqTracker
	lastFrame time.Time
}

// streamFor is the stream of a track, published by the participant with the given id ("" if unknown).
func (u *user) streamFor(trackID, kind, publisherID string) *stream {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.streams[trackID]
	if s == nil {
		s = &stream{kind: kind, published: time.Now()}
		u.streams[trackID] = s
		if kind == "video" {
			u.videoKnown.CompareAndSwap(0, max(s.published.UnixNano(), u.joinStart.UnixNano()))
		}
	}
	if s.publisher == "" {
		s.publisher = publisherID
	}
	return s
}

// participant records who the participant with this id is: the harness's identity for it, which the harness
// gives as its name (a dev-mode server makes identities up).
func (u *user) participant(id, identity string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.idents == nil {
		u.idents = map[string]string{}
	}
	u.idents[id] = identity
}

func (u *user) dropStream(trackID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.streams, trackID)
}

// connected reports whether the user is in its meeting now: joined, its session alive, and its subscribe
// connection up when it has anything to receive.
func (u *user) connected() bool {
	if !u.joined.Load() || u.gone.Load() {
		return false
	}
	u.mu.Lock()
	n := len(u.streams)
	u.mu.Unlock()
	return n == 0 || u.c.Sub.ConnectionState() == webrtc.PeerConnectionStateConnected
}

// secondFigures are what one user received in one second.
type secondFigures struct {
	good           bool  // every stream the user must receive brought packets
	audio          int   // audio tracks that brought packets
	speakerPackets int64 // packets of the open microphones
}

// second reads and resets the per-second counters for the second [from, to) of the run, which ends now. The
// second is good when every stream the user must receive that is older than the grace period brought at least
// one packet: every video; with a speech schedule (allhands), the audio of those who by the schedule had been
// speaking for more than MinTalk at from and still were at to; without one, audio from at least maxAudio of the
// microphones (the server forwards only its loudest maxAudio: every one if there are fewer, one fewer if this
// user has a microphone of its own, which may take a place; maxAudio 0: every one).
func (u *user) second(sched *schedule, maxAudio int, from, to time.Duration, now time.Time) secondFigures {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := secondFigures{good: true}
	var eligible, heard int
	for _, s := range u.streams {
		n := s.perSecond.Swap(0)
		old := now.Sub(s.published) > streamGrace
		must := true
		if s.kind == "audio" {
			who := u.idents[s.publisher]
			if n > 0 {
				f.audio++
			}
			if sched.speaker(who) {
				f.speakerPackets += n
			}
			switch {
			case sched != nil:
				must = sched.mustHear(who, from, to)
			case maxAudio > 0:
				must = false // counted below
				if old {
					eligible++
					if n > 0 {
						heard++
					}
				}
			}
		}
		if n == 0 && must && old {
			f.good = false
		}
	}
	if sched == nil && maxAudio > 0 {
		places := maxAudio
		if u.publisher {
			places--
		}
		if heard < min(eligible, places) {
			f.good = false
		}
	}
	return f
}

// join connects, publishes if the user is a publisher or an open microphone, and runs until ctx ends or the
// session is lost.
func (u *user) join(ctx context.Context) {
	r := u.run
	tok, err := r.token(ctx, u.room, u.identity)
	if err != nil {
		r.joinFailed(u, err)
		return
	}
	events := make(chan client.Message, 256)
	u.joinStart = time.Now()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	c, err := client.Dial(dctx, r.wsURL, tok, client.Options{
		API:     r.api,
		Events:  events,
		OnTrack: u.onTrack,
		OnKeyframeRequest: func(t webrtc.TrackLocal) {
			if u.publisher {
				r.feeds.keyframe(u, t.RID())
			}
		},
		OnLayers: func(_ string, rids, paused []string) { r.feeds.layers(u, rids, paused) },
	})
	cancel()
	if err != nil {
		r.joinFailed(u, err)
		return
	}
	u.c = c
	close(u.ready)
	for _, p := range c.Joined.Participants {
		u.participant(p.ID, p.Name)
		for _, t := range p.Tracks {
			u.streamFor(t.ID, t.Kind, p.ID)
		}
	}
	u.joined.Store(true)
	r.joinedCount.Add(1)
	switch {
	case u.publisher:
		if err := r.feeds.publish(ctx, u); err != nil {
			r.log("publish %s: %v", u.identity, err)
		}
	case u.openMic:
		if err := r.mics.publish(ctx, u); err != nil {
			r.log("publish %s: %v", u.identity, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			c.Leave()
			return
		case <-c.Done():
			u.gone.Store(true)
			r.disconnects.Add(1)
			return
		case m := <-events:
			u.onEvent(m)
		}
	}
}

func (u *user) onEvent(m client.Message) {
	switch m.Type {
	case "participant_joined":
		if m.Participant != nil {
			u.participant(m.Participant.ID, m.Participant.Name)
		}
	case "track_published":
		if m.Track != nil {
			u.streamFor(m.Track.ID, m.Track.Kind, m.ParticipantID)
		}
	case "track_unpublished":
		if m.Track != nil {
			u.dropStream(m.Track.ID)
		}
	case "participant_left":
		if m.Participant != nil {
			for _, t := range m.Participant.Tracks {
				u.dropStream(t.ID)
			}
		}
	case "error":
		u.run.log("%s: server error %s: %s", u.identity, m.Code, m.Message)
	}
}

// onTrack reads one remote track until it ends, measuring what arrives.
func (u *user) onTrack(_ string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	<-u.ready
	r := u.run
	s := u.streamFor(track.ID(), track.Kind().String(), track.StreamID()) // the stream id is the publisher's id
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	if video && r.cfg.TileWidth >= 0 && r.cfg.TileHeight >= 0 {
		_ = u.c.Send(map[string]any{"type": "subscription", "track": track.ID(), "width": r.cfg.TileWidth, "height": r.cfg.TileHeight})
	}
	buf := make([]byte, 1500) // one buffer and packet for the track's life: nothing allocated per packet
	var pkt rtp.Packet
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := time.Now()
		fresh, grew := s.seq.add(pkt.SequenceNumber)
		r.expected.Add(grew)
		if !fresh {
			continue
		}
		s.perSecond.Add(1)
		r.packets.Add(1)
		r.bytes.Add(int64(len(pkt.Payload) + 12))
		payload := pkt.Payload
		if video {
			d, err := codec.ParseVP8(payload)
			if err != nil || !d.Start {
				continue
			}
			payload = payload[d.Size:]
			r.frames.Add(1)
			if !s.lastFrame.IsZero() && now.Sub(s.lastFrame) > FreezeGap {
				r.freezes.Add(1)
			}
			s.lastFrame = now
			if !u.firstVideo.Swap(true) {
				since := u.joinStart
				if k := u.videoKnown.Load(); k > 0 {
					since = time.Unix(0, k)
				}
				r.join.observe(now.Sub(since))
			}
		}
		if st, ok := synth.FindStamp(payload); ok {
			r.observeLatency(now.Sub(st.Sent))
		}
	}
}
