package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
)

// Moderation that must hold for tracks the participant publishes after it: an administrator's mute of a
// participant's audio and the removal of its right to publish (finding 3 of the security review).

// switchedOpus is an Opus track whose frames (one every 20 ms) are sent only while on is set.
type switchedOpus struct {
	track *webrtc.TrackLocalStaticRTP
	on    atomic.Bool
}

// newSwitchedOpus makes the track; feed starts sending its frames.
func newSwitchedOpus(t *testing.T, id, stream string) *switchedOpus {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, stream)
	if err != nil {
		t.Fatal(err)
	}
	return &switchedOpus{track: tr}
}

// feed sends a frame every 20 ms while s.on is set, until m stops.
func (s *switchedOpus) feed(m *mediaRun) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for i := uint32(0); ; {
			select {
			case <-m.ctx.Done():
				return
			case <-tick.C:
			}
			if !s.on.Load() {
				continue
			}
			buf = synth.OpusFrame(buf, 80, synth.Stamp{Seq: i, Sent: time.Now()})
			if s.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: buf}) != nil {
				return
			}
			i++
		}
	}()
}

// publishSwitched publishes the tracks in one offer from tc and starts their feeds, each off until switched on.
func publishSwitched(t *testing.T, ctx context.Context, m *mediaRun, tc *testClient, tracks ...*switchedOpus) {
	t.Helper()
	locals := make([]webrtc.TrackLocal, len(tracks))
	for i, s := range tracks {
		locals[i] = s.track
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := tc.Publish(pctx, locals...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	for _, s := range tracks {
		s.feed(m)
	}
}

// moderationRoom is a room with alice (moderated), bob (listens), carol (a control: her audio must keep
// arriving while alice's is blocked) and an administrator.
type moderationRoom struct {
	alice, bob, carol, admin *testClient
}

func newModerationRoom(t *testing.T, ctx context.Context, n *node, m *mediaRun, room string) *moderationRoom {
	t.Helper()
	r := &moderationRoom{
		alice: joinClient(t, ctx, n, room, "alice"),
		bob:   joinClient(t, ctx, n, room, "bob"),
		carol: joinClient(t, ctx, n, room, "carol"),
		admin: joinClientToken(t, ctx, n, adminToken(t, room, "chair")),
	}
	publishTone(t, m, r.carol)
	return r
}

// act sends an administrator's action on alice and waits until alice is told of it.
func (r *moderationRoom) act(t *testing.T, ctx context.Context, v map[string]any) {
	t.Helper()
	r.actOn(t, ctx, r.alice, v)
}

// actOn sends an administrator's action on target and waits until target is told of it.
func (r *moderationRoom) actOn(t *testing.T, ctx context.Context, target *testClient, v map[string]any) client.Message {
	t.Helper()
	v["type"] = "admin"
	v["participant"] = target.ID()
	if err := r.admin.Send(v); err != nil {
		t.Fatal(err)
	}
	msg := waitMessage(t, ctx, target, "moderation", "error")
	if msg.Type != "moderation" || msg.Action != v["action"] {
		t.Fatalf("%v: %s got %+v", v, target.Joined.You.Identity, msg)
	}
	return msg
}

// waitPublished waits until bob is told that from published the track.
func (r *moderationRoom) waitPublished(t *testing.T, ctx context.Context, from *testClient, trackID string) client.Message {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := client.WaitFor(wctx, r.bob.events, func(m client.Message) bool {
		return m.Type == "track_published" && m.ParticipantID == from.ID() && m.Track != nil && m.Track.ID == trackID
	})
	if err != nil {
		t.Fatalf("bob was not told of %s's track %s: %v", from.Joined.You.Identity, trackID, err)
	}
	return msg
}

// assertBlocked checks, over two seconds, that bob receives no audio of the moderated participants' while
// carol's keeps coming.
func (r *moderationRoom) assertBlocked(t *testing.T, what string, moderated ...*testClient) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // packets already on their way
	carol := r.bob.stats(r.carol.ID(), "audio")
	c0 := carol.packets.Load()
	before := make([]int64, len(moderated))
	for i, tc := range moderated {
		before[i] = r.bob.stats(tc.ID(), "audio").packets.Load()
	}
	time.Sleep(2 * time.Second)
	c := carol.packets.Load() - c0
	if c < 50 {
		t.Fatalf("%s: the control failed: bob received %d packets of carol's audio in 2s (%s)", what, c, describe(r.bob))
	}
	for i, tc := range moderated {
		if got := r.bob.stats(tc.ID(), "audio").packets.Load() - before[i]; got != 0 {
			t.Fatalf("%s: bob received %d packets of %s's audio in 2s (carol's: %d)", what, got, tc.Joined.You.Identity, c)
		}
	}
}

// assertHeard waits until bob receives each participant's audio again.
func (r *moderationRoom) assertHeard(t *testing.T, what string, moderated ...*testClient) {
	t.Helper()
	for _, tc := range moderated {
		st := r.bob.stats(tc.ID(), "audio")
		before := st.packets.Load()
		eventually(t, 10*time.Second, what+": "+tc.Joined.You.Identity, func() bool { return st.packets.Load() > before+20 })
	}
}

// TestAdminMuteCoversNewTracks: once an administrator mutes a participant's audio, a microphone track it
// publishes afterwards is not forwarded either (and is announced muted), also when it published no audio at the
// time of the mute; unmute lets it through.
func TestAdminMuteCoversNewTracks(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	r := newModerationRoom(t, ctx, n, m, "modmute")

	mic1 := newSwitchedOpus(t, "mic1-"+r.alice.ID(), r.alice.ID())
	mic1.on.Store(true)
	publishSwitched(t, ctx, m, r.alice, mic1)
	eventually(t, 10*time.Second, "bob hears alice and carol", func() bool {
		return r.bob.stats(r.alice.ID(), "audio").packets.Load() > 20 && r.bob.stats(r.carol.ID(), "audio").packets.Load() > 20
	})

	// Dave publishes nothing yet when he is muted: he is told that all his audio is.
	dave := joinClient(t, ctx, n, "modmute", "dave")
	if msg := r.actOn(t, ctx, dave, map[string]any{"action": "mute"}); msg.TrackID != "" {
		t.Fatalf("dave, who publishes nothing, was told of a mute of track %q", msg.TrackID)
	}
	r.act(t, ctx, map[string]any{"action": "mute"})
	mic1.on.Store(false) // from here on, what bob may get of alice's is mic2's
	mic2 := newSwitchedOpus(t, "mic2-"+r.alice.ID(), r.alice.ID())
	mic2.on.Store(true)
	publishSwitched(t, ctx, m, r.alice, mic2)
	daveMic := newSwitchedOpus(t, "mic-"+dave.ID(), dave.ID())
	daveMic.on.Store(true)
	publishSwitched(t, ctx, m, dave, daveMic)
	published := r.waitPublished(t, ctx, r.alice, mic2.track.ID())
	r.waitPublished(t, ctx, dave, daveMic.track.ID())
	r.assertBlocked(t, "a microphone published after the mute", r.alice, dave)
	if !published.Track.Muted {
		t.Errorf("the microphone published after the mute was announced as not muted: %+v", published.Track)
	}

	r.act(t, ctx, map[string]any{"action": "unmute"})
	r.actOn(t, ctx, dave, map[string]any{"action": "unmute"})
	r.assertHeard(t, "a new microphone heard after unmute", r.alice, dave)
}

// TestDemotionCoversTracksNegotiatedEarlier: once an administrator takes away a participant's right to publish,
// a track negotiated before that and started only afterwards (no new offer) is not forwarded; giving the right
// back lets it through.
func TestDemotionCoversTracksNegotiatedEarlier(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	r := newModerationRoom(t, ctx, n, m, "moddemote")

	mic1 := newSwitchedOpus(t, "mic1-"+r.alice.ID(), r.alice.ID())
	mic2 := newSwitchedOpus(t, "mic2-"+r.alice.ID(), r.alice.ID())
	mic1.on.Store(true)
	publishSwitched(t, ctx, m, r.alice, mic1, mic2) // both negotiated now, only mic1 sending
	r.waitPublished(t, ctx, r.alice, mic1.track.ID())
	eventually(t, 10*time.Second, "bob hears alice and carol", func() bool {
		return r.bob.stats(r.alice.ID(), "audio").packets.Load() > 20 && r.bob.stats(r.carol.ID(), "audio").packets.Load() > 20
	})

	r.act(t, ctx, map[string]any{"action": "set_role", "publish": false})
	mic1.on.Store(false)
	mic2.on.Store(true) // RTP on the section negotiated before the demotion
	r.waitPublished(t, ctx, r.alice, mic2.track.ID())
	r.assertBlocked(t, "a track started after the demotion", r.alice)

	r.act(t, ctx, map[string]any{"action": "set_role", "publish": true})
	r.assertHeard(t, "the second track heard after the right to publish is given back", r.alice)
}
