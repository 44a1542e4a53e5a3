package sfu

import (
	"slices"
	"sync"
	"testing"

	"github.com/edge-sfu/sfu/sfu/transport"
)

// noticeLog is an Observer that keeps what it is told.
type noticeLog struct {
	mu      sync.Mutex
	notices []Notice
}

func (l *noticeLog) Observe(n Notice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notices = append(l.notices, n)
}

// lines describes the notices of one room, one line each: kind, identity, reason or limit.
func (l *noticeLog) lines(room string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := map[NoticeKind]string{NoticeRoomStarted: "started", NoticeRoomFinished: "finished", NoticeParticipantJoined: "joined",
		NoticeParticipantLeft: "left", NoticeTrackPublished: "published", NoticeTrackUnpublished: "unpublished", NoticeLimit: "limit"}
	var out []string
	for _, n := range l.notices {
		if n.Room.Name != room {
			continue
		}
		s := names[n.Kind]
		if n.Participant.Identity != "" {
			s += " " + n.Participant.Identity
		}
		if n.Reason != "" {
			s += " (" + n.Reason + ")"
		}
		if n.Limit != "" {
			s += " " + n.Limit
		}
		out = append(out, s)
	}
	return out
}

// The observer hears each room's life in order: started, joins, a refused join (room_full), leaves with their
// reasons (replaced, kicked, the one the signaling layer gives, room_ended, shutdown), finished; a room that opens
// again has a new id.
func TestObserverNotices(t *testing.T) {
	obs := &noticeLog{}
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, MaxParticipants: 2, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	join := func(room, identity string) (*Participant, error) {
		return s.Join(JoinRequest{Room: room, Identity: identity, CanSubscribe: true}, fuzzPeer{})
	}
	must := func(p *Participant, err error) *Participant {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	must(join("r", "a"))
	must(join("r", "b"))
	if _, err := join("r", "c"); err == nil {
		t.Fatal("a third participant joined a room of 2")
	}
	a2 := must(join("r", "a")) // a reconnects: the old session is replaced
	if _, err := s.RemoveParticipant("r", "b"); err != nil {
		t.Fatal(err)
	}
	a2.Leave("timeout")
	obs.mu.Lock()
	first := obs.notices[0].Room.ID
	obs.mu.Unlock()

	must(join("x", "d"))
	if _, err := s.EndRoom("x"); err != nil {
		t.Fatal(err)
	}
	must(join("r", "e"))
	_ = s.Close()

	want := []string{"started", "joined a", "joined b", "limit c room_full", "left a (replaced)", "joined a",
		"left b (kicked)", "left a (timeout)", "finished", "started", "joined e", "left e (shutdown)", "finished"}
	if got := obs.lines("r"); !slices.Equal(got, want) {
		t.Errorf("room r:\n got %q\nwant %q", got, want)
	}
	if got, want := obs.lines("x"), []string{"started", "joined d", "left d (room_ended)", "finished"}; !slices.Equal(got, want) {
		t.Errorf("room x:\n got %q\nwant %q", got, want)
	}
	ids := map[string]bool{}
	for _, n := range obs.notices {
		if n.Kind == NoticeRoomStarted {
			if ids[n.Room.ID] || n.Room.ID == "" {
				t.Errorf("room %s started with id %q, seen before", n.Room.Name, n.Room.ID)
			}
			ids[n.Room.ID] = true
		}
	}
	if len(ids) != 3 || !ids[first] {
		t.Errorf("room ids %v", ids)
	}
}

// The node's limits are told too: a join refused while every join slot is taken (join_busy, no room), and a
// worker stream refused by the budget (worker_streams, in its room).
func TestObserverLimits(t *testing.T) {
	obs := &noticeLog{}
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, MaxConcurrentJoins: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release, err := s.takeJoinSlot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(JoinRequest{Room: "r", Identity: "a"}, fuzzPeer{}); err == nil {
		t.Fatal("joined with every join slot taken")
	}
	release()
	p, err := s.Join(JoinRequest{Room: "r", Identity: "a"}, fuzzPeer{})
	if err != nil {
		t.Fatal(err)
	}
	b := NewWorkerBudget(1, "-max-worker-streams")
	if _, err := b.TakeFor(p.room, "denoise"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TakeFor(p.room, "denoise"); err == nil {
		t.Fatal("a second stream on a budget of 1")
	}
	if got, want := obs.lines(""), []string{"limit join_busy"}; !slices.Equal(got, want) {
		t.Errorf("the node's notices %q, want %q", got, want)
	}
	if got, want := obs.lines("r"), []string{"started", "joined a", "limit worker_streams"}; !slices.Equal(got, want) {
		t.Errorf("room r's notices %q, want %q", got, want)
	}
}
