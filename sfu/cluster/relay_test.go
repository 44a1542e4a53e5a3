package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// fakeRelays is relays whose runs the test ends and whose re-placements it answers.
type fakeRelays struct {
	*relays
	runs    chan fakeRun // each run as it starts
	placed  chan string  // each re-placement's room, as it asks
	answers chan Lease   // the lease each re-placement finds (ownerAt)
	ends    chan string  // the rooms the relays ended here because they were ended on another node
}

// ownerAt is the lease of a room owned by the node at url; "": this node.
func ownerAt(url string) Lease {
	return Lease{Owner: NodeInfo{URL: url}, Mine: url == "", Regions: []string{"hk"}}
}

type fakeRun struct {
	room, owner string
	ctx         context.Context
	end         chan error // ends the run with the error, as when a side's connection ends
}

func newFakeRelays(t *testing.T) *fakeRelays {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeRelays{runs: make(chan fakeRun, 16), placed: make(chan string, 16), answers: make(chan Lease, 16), ends: make(chan string, 16)}
	f.relays = &relays{ctx: ctx, log: zaptest.NewLogger(t), rooms: map[string]*roomRelay{}, retry: 10 * time.Millisecond,
		run: func(ctx context.Context, room, owner string, _ []string) error {
			r := fakeRun{room, owner, ctx, make(chan error, 1)}
			f.runs <- r
			select {
			case <-ctx.Done():
				return nil
			case err := <-r.end:
				return err
			}
		},
		place: func(ctx context.Context, room string) (Lease, error) {
			f.placed <- room
			select {
			case <-ctx.Done():
				return Lease{}, ctx.Err()
			case l := <-f.answers:
				return l, nil
			}
		},
		end: func(room string) { f.ends <- room }}
	t.Cleanup(func() {
		cancel()
		f.close()
	})
	return f
}

func (f *fakeRelays) waitPlaced(t *testing.T, room string) {
	t.Helper()
	select {
	case got := <-f.placed:
		if got != room {
			t.Fatalf("placed %q, want %q", got, room)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%q was not placed again after its relay ended", room)
	}
}

func (f *fakeRelays) waitRun(t *testing.T) fakeRun {
	t.Helper()
	select {
	case r := <-f.runs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no relay run started")
		return fakeRun{}
	}
}

func (f *fakeRelays) noRun(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case r := <-f.runs:
		t.Fatalf("an unexpected relay run of %q to %s", r.room, r.owner)
	case <-time.After(within):
	}
}

func ended(ctx context.Context, within time.Duration) bool {
	select {
	case <-ctx.Done():
		return true
	case <-time.After(within):
		return false
	}
}

// TestRelaysAcquire: a room's participants share one relay, started by the first and stopped after the last
// leaves; releasing twice counts once.
func TestRelaysAcquire(t *testing.T) {
	f := newFakeRelays(t)
	release1 := f.acquire("big", "http://a.test", []string{"hk"})
	run := f.waitRun(t)
	if run.room != "big" || run.owner != "http://a.test" {
		t.Fatalf("relay run of %q to %s, want big to http://a.test", run.room, run.owner)
	}
	release2 := f.acquire("big", "http://a.test", []string{"hk"})
	other := f.acquire("other", "http://b.test", []string{"hk"})
	otherRun := f.waitRun(t)
	f.noRun(t, 100*time.Millisecond) // the second participant of big shares its relay
	if n := f.count(); n != 2 {
		t.Fatalf("%d rooms relayed, want 2", n)
	}

	release1()
	release1() // counted out once only
	if ended(run.ctx, 100*time.Millisecond) {
		t.Fatal("the relay stopped while a participant of the room is still here")
	}
	release2()
	if !ended(run.ctx, 5*time.Second) {
		t.Fatal("the relay goes on after the room's last participant here left")
	}
	if n := f.count(); n != 1 {
		t.Fatalf("%d rooms relayed, want 1 (other)", n)
	}
	other()
	if !ended(otherRun.ctx, 5*time.Second) || f.count() != 0 {
		t.Fatalf("other's relay goes on (%d rooms relayed)", f.count())
	}
}

// TestRelaysReplace: when the owner's connection ends, the room is placed again and the relay connects to the
// new owner; when the room is then placed here, the relay stops.
func TestRelaysReplace(t *testing.T) {
	f := newFakeRelays(t)
	release := f.acquire("big", "http://a.test", []string{"hk"})
	defer release()
	first := f.waitRun(t)
	if first.owner != "http://a.test" {
		t.Fatalf("first run to %s, want the owner a", first.owner)
	}
	first.end <- errors.New("the owner's connection ended")
	f.waitPlaced(t, "big")
	f.answers <- ownerAt("http://b.test")
	second := f.waitRun(t)
	if second.owner != "http://b.test" {
		t.Fatalf("the relay reconnected to %s, want the new owner b", second.owner)
	}

	second.end <- errors.New("the owner's connection ended")
	f.waitPlaced(t, "big")
	f.answers <- ownerAt("") // the room is now this node's: no relay is needed
	f.noRun(t, 200*time.Millisecond)
}

// TestRelayEndsEndedRoom: cluster issue, "a relay never recreates an ended room". An administrator ended the room
// on the owner while the relay was reconnecting, so the end did not cross it: the room's lease says when it was
// ended, and the relay ends the room here too instead of connecting again (or taking the room over).
func TestRelayEndsEndedRoom(t *testing.T) {
	f := newFakeRelays(t)
	release := f.acquire("board", "http://a.test", []string{"hk"})
	defer release()
	f.waitRun(t).end <- errors.New("the owner's connection ended")
	f.waitPlaced(t, "board")
	l := ownerAt("http://a.test")
	l.EndedAt = time.Now()
	f.answers <- l
	select {
	case room := <-f.ends:
		if room != "board" {
			t.Fatalf("ended %q", room)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end the room the owner ended")
	}
	f.noRun(t, 200*time.Millisecond)
}

// TestRelaysClose: close stops every relay and waits for its goroutine.
func TestRelaysClose(t *testing.T) {
	f := newFakeRelays(t)
	_ = f.acquire("r1", "http://a.test", []string{"hk"})
	_ = f.acquire("r2", "http://a.test", []string{"hk"})
	r1, r2 := f.waitRun(t), f.waitRun(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.close()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return")
	}
	if r1.ctx.Err() == nil || r2.ctx.Err() == nil {
		t.Fatal("a relay runs on after close")
	}
}

// The roster says who publishes a track from what its side's node tells the relay, waits for a track it does not
// know yet, and follows mutes and departures.
func TestRoster(t *testing.T) {
	alice := protocol.Participant{ID: "PA_a", Identity: "alice", Name: "Alice",
		Tracks: []protocol.Track{{ID: "mic-a", Kind: "audio", Source: "microphone", Muted: true}}}
	r := newRoster(client.Message{Type: protocol.TypeJoined, Participants: []protocol.Participant{alice}})
	ctx := context.Background()
	p, owner, ok := r.publisher(ctx, "mic-a", time.Second)
	if !ok || p.Identity != "alice" || p.Name != "Alice" || owner.source != "microphone" || !owner.muted {
		t.Fatalf("mic-a: %+v %+v %v", p, owner, ok)
	}

	// A track published while the relay waits for it.
	bob := protocol.Participant{ID: "PA_b", Identity: "bob", Name: "Bob"}
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.apply(client.Message{Type: protocol.TypeParticipantJoined, Participant: &bob})
		r.apply(client.Message{Type: protocol.TypeTrackPublished, ParticipantID: "PA_b", Track: &protocol.Track{ID: "cam-b", Kind: "video", Source: "screen"}})
	}()
	if p, owner, ok := r.publisher(ctx, "cam-b", 5*time.Second); !ok || p.Identity != "bob" || owner.source != "screen" {
		t.Fatalf("cam-b, published while waiting: %+v %+v %v", p, owner, ok)
	}
	if _, _, ok := r.publisher(ctx, "nobody's", 50*time.Millisecond); ok {
		t.Fatal("a track no one published has a publisher")
	}

	if id := r.apply(client.Message{Type: protocol.TypeTrackMuted, ParticipantID: "PA_a", Track: &protocol.Track{ID: "mic-a", Muted: false}}); id != "mic-a" {
		t.Fatalf("an unmute of mic-a: %q", id)
	}
	if muted, known := r.muted("mic-a"); !known || muted {
		t.Fatalf("mic-a after the unmute: muted %v, known %v", muted, known)
	}
	r.apply(client.Message{Type: protocol.TypeParticipantLeft, Participant: &alice})
	if _, known := r.muted("mic-a"); known {
		t.Fatal("alice left, her track is still known")
	}
}
