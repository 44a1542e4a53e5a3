package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
)

// receivesFrom says whether tc has received at least min packets of each kind from publisher pid.
func receivesFrom(tc *testClient, pid string, min int64) bool {
	return tc.stats(pid, "video").packets.Load() >= min && tc.stats(pid, "audio").packets.Load() >= min
}

// TestMeeting: A and B publish VP8 and Opus and receive each other's; C joins late and receives both, and they
// receive C; A leaves and B and C see its tracks go; when everyone has left the room is gone and no goroutine is
// left behind.
func TestMeeting(t *testing.T) {
	baseline := runtime.NumGoroutine()
	n := startTestNode(t, func(c *config) { c.MetricsDetail = true })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	cs := joinPublishing(t, ctx, n, media, "standup", "alice", "bob")
	a, b := cs[0], cs[1]
	if got := len(b.Joined.Participants); got != 1 || b.Joined.Participants[0].ID != a.ID() {
		t.Fatalf("bob's joined lists %+v, want alice (%s)", b.Joined.Participants, a.ID())
	}

	c := joinClient(t, ctx, n, "standup", "carol")
	if got := len(c.Joined.Participants); got != 2 {
		t.Fatalf("carol's joined lists %d participants, want 2", got)
	}
	for _, p := range c.Joined.Participants {
		if len(p.Tracks) != 2 {
			t.Errorf("carol's joined shows %s with %d tracks, want 2", p.Identity, len(p.Tracks))
		}
	}
	media.publish(t, c)
	eventually(t, 10*time.Second, "carol receives alice and bob, and they receive carol", func() bool {
		return receivesFrom(c, a.ID(), 20) && receivesFrom(c, b.ID(), 20) &&
			receivesFrom(a, c.ID(), 20) && receivesFrom(b, c.ID(), 20)
	})

	// /metrics (with -metrics-detail) shows each subscriber: what it is sent and on which layer.
	metrics := scrape(t, n)
	for _, want := range []string{
		fmt.Sprintf(`sfu_subscriber_videos{layer="q",participant=%q,room="standup"} 2`, c.ID()),
		"sfu_participants 3", "sfu_tracks 6",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if v := metricValue(metrics, fmt.Sprintf(`sfu_subscriber_packets_sent_total{participant=%q,room="standup"}`, c.ID())); v <= 0 {
		t.Errorf("carol's packets sent in /metrics: %v", v)
	}
	if v := metricValue(metrics, fmt.Sprintf(`sfu_subscriber_estimate_bits_per_second{participant=%q,room="standup"}`, c.ID())); v <= 0 {
		t.Errorf("carol's bandwidth estimate in /metrics: %v", v)
	}

	// A mute reaches the others.
	video := a.Pub.GetSenders()[0].Track()
	if err := a.Send(map[string]any{"type": "mute", "track": video.ID(), "muted": true}); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := client.WaitFor(wctx, b.events, func(m client.Message) bool {
		return m.Type == "track_muted" && m.ParticipantID == a.ID() && m.Track != nil && m.Track.ID == video.ID() && m.Track.Muted
	}); err != nil {
		t.Fatalf("bob did not see alice's video muted: %v", err)
	}
	wcancel()

	// Alice leaves: bob and carol are told, and her tracks end at both.
	a.Leave()
	for _, tc := range []*testClient{b, c} {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool {
			return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == a.ID()
		}); err != nil {
			t.Fatalf("participant_left for alice: %v", err)
		}
		wcancel()
	}
	eventually(t, 10*time.Second, "alice's tracks end at bob and carol", func() bool {
		return b.stats(a.ID(), "video").ended.Load() && b.stats(a.ID(), "audio").ended.Load() &&
			c.stats(a.ID(), "video").ended.Load() && c.stats(a.ID(), "audio").ended.Load()
	})
	// Bob and Carol still receive each other.
	before := b.stats(c.ID(), "video").packets.Load()
	eventually(t, 5*time.Second, "bob still receives carol after alice left", func() bool {
		return b.stats(c.ID(), "video").packets.Load() > before+10
	})

	media.stop()
	b.Leave()
	c.Leave()
	eventually(t, 10*time.Second, "the room closes when empty", func() bool {
		st := n.sfu.Stats()
		return st.Rooms == 0 && st.Participants == 0 && st.Tracks == 0
	})
	if st := n.sfu.Stats(); st.PacketsOut == 0 || st.PLIs == 0 {
		t.Errorf("stats after the meeting: %+v; want packets forwarded and keyframe requests sent", st)
	}

	// Everything the meeting started has stopped (the node itself still runs: allow its own goroutines).
	eventually(t, 15*time.Second, "goroutines return to the level before the meeting", func() bool {
		return runtime.NumGoroutine() <= baseline+12
	})
	t.Logf("received: bob %s | carol %s", describe(b), describe(c))
}

// TestUnpublishAndDrop: a publisher that removes a track renegotiates, and the others see that track go while
// its other track carries on; a participant whose WebSocket drops without a word is taken out of the room.
func TestUnpublishAndDrop(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	a := joinClient(t, ctx, n, "r", "alice")
	b := joinClient(t, ctx, n, "r", "bob")
	media.publish(t, a)
	eventually(t, 10*time.Second, "bob receives alice", func() bool { return receivesFrom(b, a.ID(), 20) })

	video := a.Pub.GetSenders()[0]
	if video.Track().Kind().String() != "video" {
		t.Fatalf("first sender is %s, want video", video.Track().Kind())
	}
	videoID := video.Track().ID()
	if err := a.Pub.RemoveTrack(video); err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithTimeout(ctx, 10*time.Second)
	defer ncancel()
	if err := a.NegotiatePublish(nctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, b.events, func(m client.Message) bool {
		return m.Type == "track_unpublished" && m.ParticipantID == a.ID() && m.Track != nil && m.Track.ID == videoID
	}); err != nil {
		t.Fatalf("bob did not see alice's video unpublished: %v", err)
	}
	eventually(t, 10*time.Second, "alice's video ends at bob", func() bool { return b.stats(a.ID(), "video").ended.Load() })
	audio := b.stats(a.ID(), "audio").packets.Load()
	eventually(t, 5*time.Second, "alice's audio still reaches bob", func() bool {
		return b.stats(a.ID(), "audio").packets.Load() > audio+10 && !b.stats(a.ID(), "audio").ended.Load()
	})
	if st := n.sfu.Stats(); st.Tracks != 1 {
		t.Errorf("server has %d tracks after the unpublish, want 1", st.Tracks)
	}

	// Alice's socket drops (no leave message): bob is told she left and her audio ends.
	media.stop()
	a.Close()
	wctx2, wcancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel2()
	if _, err := client.WaitFor(wctx2, b.events, func(m client.Message) bool {
		return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == a.ID()
	}); err != nil {
		t.Fatalf("bob was not told alice dropped: %v", err)
	}
	eventually(t, 10*time.Second, "alice's audio ends at bob", func() bool { return b.stats(a.ID(), "audio").ended.Load() })
	if st := n.sfu.Stats(); st.Participants != 1 || st.Tracks != 0 {
		t.Errorf("after alice dropped: %d participants and %d tracks, want 1 and 0", st.Participants, st.Tracks)
	}
}

// TestMediaConnectionLost: a client whose peer connections end while its WebSocket stays open is told (bye,
// reason failed) and taken out of the room, and the others are told it left.
func TestMediaConnectionLost(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	a := joinClient(t, ctx, n, "r", "alice")
	b := joinClient(t, ctx, n, "r", "bob")
	media.publish(t, a)
	eventually(t, 10*time.Second, "bob receives alice", func() bool { return receivesFrom(b, a.ID(), 20) })

	media.stop()
	_ = a.Pub.Close()
	_ = a.Sub.Close()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, a.events, func(m client.Message) bool {
		return m.Type == "bye" && m.Reason == "failed"
	}); err != nil {
		t.Fatalf("alice got no bye with reason failed: %v", err)
	}
	select {
	case <-a.Done():
	case <-wctx.Done():
		t.Fatal("alice's WebSocket stayed open after bye")
	}
	if _, err := client.WaitFor(wctx, b.events, func(m client.Message) bool {
		return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == a.ID()
	}); err != nil {
		t.Fatalf("bob was not told alice left: %v", err)
	}
}
