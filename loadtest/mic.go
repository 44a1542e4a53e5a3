package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

const (
	micPeriod   = 20 * time.Millisecond // an Opus packet
	micCatchUp  = 5                     // packets a microphone may send at once after a late tick; older ones are skipped
	opusSamples = 48000 / 50            // RTP timestamp units in micPeriod
)

// openMics sends the all-hands scenario's open microphones: audio only, every packet with its RFC 6464 audio
// level, which follows the schedule's speech for the speaker's turns and interjections and is the room's noise
// otherwise. One goroutine writes every microphone's packets, so the harness stays cheap.
type openMics struct {
	sched *schedule
	start time.Time     // of the run: the schedule's zero
	sent  *atomic.Int64 // bytes of media sent, shared with the feeds

	mu   sync.Mutex
	mics []*mic
}

// mic is one open microphone; the sending goroutine owns everything but what publish sets.
type mic struct {
	speaker int
	track   *webrtc.TrackLocalStaticRTP
	extID   uint8
	done    <-chan struct{} // the user's session
	from    time.Duration   // when it started, since the start of the run
	rng     *rand.Rand      // the room's noise

	slot  uint32 // the next 20 ms slot since from: its timestamp and stamp
	seq   uint16
	ended bool
	buf   []byte
	pkt   rtp.Packet
}

// publish publishes u's microphone; run sends its packets from then on.
func (o *openMics) publish(ctx context.Context, u *user) error {
	i, ok := o.sched.index[u.identity]
	if !ok {
		return fmt.Errorf("%s is not a speaker of the schedule", u.identity)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"mic-"+u.identity, u.identity)
	if err != nil {
		return fmt.Errorf("microphone track: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	senders, err := u.c.Publish(pctx, track)
	if err != nil {
		return fmt.Errorf("publish microphone: %w", err)
	}
	var extID uint8
	for _, s := range senders {
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				extID = uint8(e.ID)
			}
		}
	}
	if extID == 0 {
		return errors.New("publish microphone: the audio level extension was not negotiated")
	}
	m := &mic{speaker: i, track: track, extID: extID, done: u.c.Done(), from: time.Since(o.start),
		rng: newNoiseRand(i)}
	o.mu.Lock()
	o.mics = append(o.mics, m)
	o.mu.Unlock()
	return nil
}

// newNoiseRand is the PRNG of speaker i's room noise.
func newNoiseRand(i int) *rand.Rand { return rand.New(rand.NewPCG(speechSeed, uint64(i)+1)) }

// run sends every microphone's due packets every 20 ms until ctx ends.
func (o *openMics) run(ctx context.Context) {
	tick := time.NewTicker(micPeriod)
	defer tick.Stop()
	var mics []*mic
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o.mu.Lock()
		mics = append(mics[:0], o.mics...)
		o.mu.Unlock()
		now := time.Since(o.start)
		for _, m := range mics {
			m.sendDue(o, now)
		}
	}
}

// sendDue sends m's packets due by now (since the start of the run), at most micCatchUp of them.
func (m *mic) sendDue(o *openMics, now time.Duration) {
	if m.ended {
		return
	}
	select {
	case <-m.done:
		m.ended = true
		return
	default:
	}
	due := uint32(max(0, (now-m.from)/micPeriod)) + 1
	if due-m.slot > micCatchUp {
		m.slot = due - micCatchUp
	}
	for ; m.slot < due; m.slot++ {
		if err := m.send(o, m.from+time.Duration(m.slot)*micPeriod); err != nil {
			m.ended = true
			return
		}
	}
}

// send writes the packet of the slot at t.
func (m *mic) send(o *openMics, t time.Duration) error {
	level := uint8(noiseLevelMin + m.rng.IntN(noiseLevelMax-noiseLevelMin+1))
	voiced := false
	if seg, ok := o.sched.segmentAt(m.speaker, t); ok {
		level, voiced = seg.level, seg.voiced
	}
	ext, err := (&rtp.AudioLevelExtension{Level: level, Voice: voiced}).Marshal()
	if err != nil {
		return fmt.Errorf("audio level: %w", err)
	}
	m.buf = synth.OpusFrame(m.buf, opusBytes, synth.Stamp{Seq: m.slot, Sent: time.Now()})
	m.pkt.Header = rtp.Header{Version: 2, SequenceNumber: m.seq, Timestamp: m.slot * opusSamples}
	if err := m.pkt.SetExtension(m.extID, ext); err != nil {
		return fmt.Errorf("audio level: %w", err)
	}
	m.pkt.Payload = m.buf
	if err := m.track.WriteRTP(&m.pkt); err != nil {
		return fmt.Errorf("write microphone: %w", err)
	}
	m.seq++
	o.sent.Add(int64(len(m.buf)))
	return nil
}
