package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// eventLog keeps what a test client was told, to look back through it.
type eventLog struct {
	tc   *testClient
	seen []client.Message
}

// waitFor reads tc's events until one satisfies match or timeout passes; every event read is kept.
func (l *eventLog) waitFor(t *testing.T, timeout time.Duration, what string, match func(client.Message) bool) client.Message {
	t.Helper()
	for _, m := range l.seen {
		if match(m) {
			return m
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case m := <-l.tc.events:
			l.seen = append(l.seen, m)
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s within %v; events: %+v", what, timeout, l.seen)
		}
	}
}

// TestClusterRelayKeepsPublishers: cluster issue, "the relay flattens the room". The owner a is full, bob is
// hosted on b and the room relayed. On b, alice's tracks are hers: her id as their stream, her identity and name
// in b's events and in a newcomer's joined, her sources, her mutes; the relay itself is nobody's participant.
// On a, alice sees bob the same way.
func TestClusterRelayKeepsPublishers(t *testing.T) {
	sp := spilledRoom(t, 60*time.Second, token(t, "big", "alice", true, true))
	b, ctx, m, alice := sp.b, sp.ctx, sp.m, sp.first
	bob := joinClient(t, ctx, b, "big", "bob")
	m.publish(t, alice)
	m.publish(t, bob)
	eventually(t, 20*time.Second, "bob receives alice's audio and video as hers, and alice bob's", func() bool {
		return receivesFrom(bob, alice.ID(), 30) && receivesFrom(alice, bob.ID(), 30)
	})

	bobLog, aliceLog := &eventLog{tc: bob}, &eventLog{tc: alice}
	notRelay := func(who string, l *eventLog) {
		for _, m := range l.seen {
			if m.Type == protocol.TypeParticipantJoined && m.Participant != nil && strings.HasPrefix(m.Participant.Identity, "relay-") {
				t.Errorf("%s was told of the relay as a participant: %+v", who, m.Participant)
			}
		}
	}
	joinedAs := func(l *eventLog, id, identity string) {
		t.Helper()
		p := l.waitFor(t, 5*time.Second, identity+" joining", func(m client.Message) bool {
			return m.Type == protocol.TypeParticipantJoined && m.Participant != nil && m.Participant.ID == id
		}).Participant
		if p.Identity != identity || p.Name != "Name of "+identity {
			t.Errorf("participant_joined for %s: identity %q, name %q", identity, p.Identity, p.Name)
		}
	}
	publishedBy := func(l *eventLog, pid, track, source string) {
		t.Helper()
		m := l.waitFor(t, 5*time.Second, "track_published of "+track, func(m client.Message) bool {
			return m.Type == protocol.TypeTrackPublished && m.Track != nil && m.Track.ID == track
		})
		if m.ParticipantID != pid || m.Track.Source != source {
			t.Errorf("track_published of %s: participant %s, source %q; want %s, %q", track, m.ParticipantID, m.Track.Source, pid, source)
		}
	}
	joinedAs(bobLog, alice.ID(), "alice")
	publishedBy(bobLog, alice.ID(), "video-"+alice.ID(), "camera")
	publishedBy(bobLog, alice.ID(), "audio-"+alice.ID(), "microphone")
	joinedAs(aliceLog, bob.ID(), "bob")
	publishedBy(aliceLog, bob.ID(), "video-"+bob.ID(), "camera")
	notRelay("bob", bobLog)
	notRelay("alice", aliceLog)

	// A newcomer on b finds alice, with her tracks, in its joined, and not the relay.
	carol := joinClient(t, ctx, b, "big", "carol")
	var found bool
	for _, p := range carol.Joined.Participants {
		if strings.HasPrefix(p.Identity, "relay-") {
			t.Errorf("carol's joined lists the relay: %+v", p)
		}
		if p.ID == alice.ID() {
			found = true
			if p.Identity != "alice" || p.Name != "Name of alice" || len(p.Tracks) != 2 {
				t.Errorf("carol's joined shows alice as %+v", p)
			}
		}
	}
	if !found {
		t.Fatalf("carol's joined on b does not list alice: %+v", carol.Joined.Participants)
	}

	// The server API on b lists the room as its participants see it: alice (hosted on a, marked remote), not the relay.
	var ps apiParticipants
	if st := apiCall(t, b, "GET", "/api/v1/rooms/big/participants", apiToken(t, ""), &ps); st != http.StatusOK {
		t.Fatalf("participants on b: %d", st)
	}
	var listed []string
	for _, p := range ps.Participants {
		listed = append(listed, fmt.Sprintf("%s(remote=%v)", p.Identity, p.Remote))
	}
	if !slices.Contains(listed, "alice(remote=true)") || !slices.Contains(listed, "bob(remote=false)") ||
		slices.ContainsFunc(listed, func(s string) bool { return strings.HasPrefix(s, "relay-") }) {
		t.Errorf("b's API lists %v, want alice (remote) and bob, and no relay", listed)
	}

	// Another session of alice's identity on b is hers, not replaced by, nor replacing, the alice relayed from a.
	alice2 := joinClient(t, ctx, b, "big", "alice")
	if !slices.ContainsFunc(alice2.Joined.Participants, func(p protocol.Participant) bool { return p.ID == alice.ID() }) {
		t.Errorf("alice's second session on b does not list alice of a: %+v", alice2.Joined.Participants)
	}

	// Alice mutes her video on a: bob sees it muted on b, then unmuted.
	for _, muted := range []bool{true, false} {
		if err := alice.Send(protocol.Request{Type: protocol.TypeMute, Track: "video-" + alice.ID(), Muted: &muted}); err != nil {
			t.Fatal(err)
		}
		m := bobLog.waitFor(t, 5*time.Second, "alice's video muted "+map[bool]string{true: "on", false: "off"}[muted], func(m client.Message) bool {
			return m.Type == protocol.TypeTrackMuted && m.Track != nil && m.Track.ID == "video-"+alice.ID() && m.Track.Muted == muted
		})
		if m.ParticipantID != alice.ID() {
			t.Errorf("track_muted on b names %s, want alice %s", m.ParticipantID, alice.ID())
		}
	}

	select {
	case <-alice2.Done():
		t.Fatalf("alice's session on b ended: %v", alice2.Err())
	default:
	}
	for _, m := range bobLog.seen {
		if m.Type == protocol.TypeParticipantLeft && m.Participant != nil && m.Participant.ID == alice.ID() {
			t.Fatal("alice of a left b when another session of her identity joined there")
		}
	}

	// Alice leaves: b tells bob she left.
	alice.Leave()
	bobLog.waitFor(t, 10*time.Second, "alice leaving", func(m client.Message) bool {
		return m.Type == protocol.TypeParticipantLeft && m.Participant != nil && m.Participant.ID == alice.ID()
	})
}

// TestRelayTrackOnlyFromRelays: a participant without the relay claim cannot show its tracks as someone else's.
func TestRelayTrackOnlyFromRelays(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mallory := joinClient(t, ctx, n, "room", "mallory")
	if err := mallory.Send(protocol.Request{Type: protocol.TypeRelayTrack, Track: "video-x", Participant: "PA_ceo", Identity: "ceo",
		Name: "The CEO"}); err != nil {
		t.Fatal(err)
	}
	m := (&eventLog{tc: mallory}).waitFor(t, 5*time.Second, "an error", func(m client.Message) bool { return m.Type == protocol.TypeError })
	if m.Code != protocol.CodeForbidden || m.Ref != protocol.TypeRelayTrack {
		t.Fatalf("relay_track from a participant: %+v, want forbidden", m)
	}
}

// TestClusterRelaySimulcast: cluster issue, "the relay crosses as one layer". A simulcast presenter on the owner
// a, two viewers on b, where the room is relayed. Every layer a viewer on b needs crosses: a viewer whose tile
// asks for the top layer gets it and one with a small tile the low layer, switching as tiles change as they
// would on a. Layers nobody on b wants stop crossing: with both tiles small, the presenter is told to send only
// the low layer (the owner's dynacast counts the relay's wishes, not the relay as a subscriber of everything).
func TestClusterRelaySimulcast(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 1)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	var mu sync.Mutex
	var told []string // the layers the presenter was last told to send
	publishSimulcast(t, ctx, a, media, "sim", func(rids []string) {
		mu.Lock()
		told = rids
		mu.Unlock()
	})
	toldOnly := func(want ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Equal(told, want)
		}
	}
	time.Sleep(1500 * time.Millisecond) // a's load reaches Redis with its next heartbeat
	viewer := func(identity string) (*client.Client, *layerWatcher) {
		api, err := loopbackAPI()
		if err != nil {
			t.Fatal(err)
		}
		w := &layerWatcher{}
		w.current.Store(-1)
		c, err := client.Dial(ctx, client.WSURL(b.baseURL()), token(t, "sim", identity, false, true), client.Options{API: api,
			OnTrack: func(_ string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				if track.Kind() == webrtc.RTPCodecTypeVideo {
					w.read(track)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c, w
	}
	tile := func(c *client.Client, w, h int) {
		t.Helper()
		if err := c.Send(protocol.Request{Type: protocol.TypeSubscription, Track: "camera", Width: &w, Height: &h}); err != nil {
			t.Fatal(err)
		}
	}
	on := func(w *layerWatcher, layer int32, what string) {
		t.Helper()
		eventually(t, 20*time.Second, what, func() bool { return w.current.Load() == layer })
	}
	big, bigW := viewer("big-screen")
	small, smallW := viewer("phone")
	eventually(t, 10*time.Second, "b hosts the two viewers and the relay", func() bool { return sfuParticipants(b) == 3 })
	eventually(t, 20*time.Second, "both viewers on b receive the video", func() bool {
		return bigW.current.Load() >= 0 && smallW.current.Load() >= 0
	})
	tile(big, 1920, 1080)
	tile(small, 320, 180)
	on(bigW, 2, "the viewer with a 1080p tile on b gets the top layer")
	on(smallW, 0, "the viewer with a small tile on b gets the low layer")

	tile(big, 320, 180)
	on(bigW, 0, "the big screen's tile shrinks: it steps down to the low layer")
	eventually(t, 15*time.Second, "nobody on b wants h or f: the presenter on a is told to send only q", toldOnly("q"))

	tile(small, 1920, 1080)
	on(smallW, 2, "the phone's tile grows: it climbs to the top layer")
	eventually(t, 10*time.Second, "the presenter is told to send f again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(told, "f")
	})
	t.Logf("big screen: %s; phone: %s", bigW, smallW)
}

// TestClusterRelaySpeakers: a speaker on the owner is an active speaker on the other node too, under its own id:
// its audio levels cross the relay with its packets, and a listener there is told who speaks.
func TestClusterRelaySpeakers(t *testing.T) {
	sp := spilledRoom(t, 60*time.Second, token(t, "talk", "alice", true, true))
	b, ctx, media, alice := sp.b, sp.ctx, sp.m, sp.first
	bob := joinClient(t, ctx, b, "talk", "bob")
	speaking := publishSpeaking(t, ctx, media, alice)
	speaking.level <- 10
	(&eventLog{tc: bob}).waitFor(t, 20*time.Second, "alice announced as the speaker on b", func(m client.Message) bool {
		return m.Type == protocol.TypeActiveSpeakers && len(m.Speakers) > 0 && m.Speakers[0].ParticipantID == alice.ID()
	})
}

// TestClusterRelayThreeNodes: the owner a is full; bob is hosted on b and carol on c, each node relaying the room
// to a. Everyone receives everyone else, each under its own id, and nothing comes back to where it was published:
// each node carries the room's six tracks once (no track relayed back as a new one), and no one receives itself.
func TestClusterRelayThreeNodes(t *testing.T) {
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 1)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	c := clusterNode(t, redis, "hk", "hk-c", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	alice := joinClient(t, ctx, a, "big", "alice")
	time.Sleep(1500 * time.Millisecond) // a's load reaches Redis with its next heartbeat
	bob := joinClient(t, ctx, b, "big", "bob")
	carol := joinClient(t, ctx, c, "big", "carol")
	people := []*testClient{alice, bob, carol}
	for _, p := range people {
		m.publish(t, p)
	}
	eventually(t, 30*time.Second, "everyone receives everyone else's audio and video", func() bool {
		for _, p := range people {
			for _, q := range people {
				if p != q && !receivesFrom(p, q.ID(), 30) {
					return false
				}
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // a loop would have brought tracks back by now
	// Videos received on each node: on a, alice gets bob's and carol's, and each relay the two of the others'
	// it does not carry; on b (c likewise), bob gets alice's and carol's, and the relay bob's alone.
	for _, x := range []struct {
		n      *node
		name   string
		videos int
	}{{a, "a", 6}, {b, "b", 3}, {c, "c", 3}} {
		if st := x.n.sfu.Stats(); st.Tracks != 6 {
			t.Errorf("%s carries %d tracks, want the six of the room once", x.name, st.Tracks)
		}
		videos := 0
		for _, s := range x.n.sfu.Subscribers() {
			for _, k := range s.VideosByLayer {
				videos += k
			}
		}
		if videos != x.videos {
			t.Errorf("%s sends %d videos, want %d", x.name, videos, x.videos)
		}
	}
	for _, p := range people {
		p.mu.Lock()
		for k := range p.received {
			if id, _, _ := strings.Cut(k, "/"); id == p.ID() || !slices.ContainsFunc(people, func(q *testClient) bool { return q.ID() == id }) {
				t.Errorf("%s receives %s", p.Joined.You.Identity, k)
			}
		}
		p.mu.Unlock()
	}
}
