package main

import (
	"context"
	"runtime"
	"sync"
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
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mediaCtx, stopMedia := context.WithCancel(ctx)
	var senders sync.WaitGroup
	defer senders.Wait()
	defer stopMedia()

	a := joinClient(t, ctx, n, "standup", "alice")
	b := joinClient(t, ctx, n, "standup", "bob")
	if got := len(b.Joined.Participants); got != 1 || b.Joined.Participants[0].ID != a.ID() {
		t.Fatalf("bob's joined lists %+v, want alice (%s)", b.Joined.Participants, a.ID())
	}
	publishSynthetic(t, mediaCtx, a, &senders)
	publishSynthetic(t, mediaCtx, b, &senders)

	eventually(t, 10*time.Second, "alice and bob receive each other's audio and video", func() bool {
		return receivesFrom(a, b.ID(), 20) && receivesFrom(b, a.ID(), 20)
	})

	c := joinClient(t, ctx, n, "standup", "carol")
	if got := len(c.Joined.Participants); got != 2 {
		t.Fatalf("carol's joined lists %d participants, want 2", got)
	}
	for _, p := range c.Joined.Participants {
		if len(p.Tracks) != 2 {
			t.Errorf("carol's joined shows %s with %d tracks, want 2", p.Identity, len(p.Tracks))
		}
	}
	publishSynthetic(t, mediaCtx, c, &senders)
	eventually(t, 10*time.Second, "carol receives alice and bob, and they receive carol", func() bool {
		return receivesFrom(c, a.ID(), 20) && receivesFrom(c, b.ID(), 20) &&
			receivesFrom(a, c.ID(), 20) && receivesFrom(b, c.ID(), 20)
	})

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

	stopMedia()
	senders.Wait()
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
