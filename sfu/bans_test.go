package sfu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/sfu/transport"
)

// TestBanList: a ban holds for its room and identity until it ends; the list prunes ended bans and, full, drops
// the ban that ends soonest.
func TestBanList(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newBanList(3)
	b.add("r", "mallory", now.Add(time.Minute), now)
	if _, ok := b.banned("r", "mallory", now.Add(59*time.Second)); !ok {
		t.Fatal("not banned within the minute")
	}
	for _, c := range []struct{ room, identity string }{{"r", "Mallory"}, {"r2", "mallory"}, {"r", "bob"}} {
		if _, ok := b.banned(c.room, c.identity, now); ok {
			t.Errorf("%s in %s is banned", c.identity, c.room)
		}
	}
	if _, ok := b.banned("r", "mallory", now.Add(time.Minute+time.Second)); ok {
		t.Fatal("still banned after the ban's end")
	}
	if n := b.len(); n != 0 {
		t.Fatalf("an ended ban is kept: %d bans", n)
	}

	// A later kick of the same identity keeps the later end.
	b.add("r", "a", now.Add(time.Hour), now)
	b.add("r", "a", now.Add(time.Minute), now)
	if until, _ := b.banned("r", "a", now); !until.Equal(now.Add(time.Hour)) {
		t.Errorf("ban ends %v, want the later end", until)
	}

	// Bounded: ended bans go first, then the one that ends soonest.
	b.add("r", "ends-soon", now.Add(time.Second), now)
	b.add("r", "b", now.Add(2*time.Hour), now)
	b.add("r", "c", now.Add(3*time.Hour), now.Add(2*time.Second)) // ends-soon has ended by now
	if _, ok := b.banned("r", "c", now.Add(2*time.Second)); !ok || b.len() != 3 {
		t.Fatalf("after pruning: %d bans, c banned %v", b.len(), ok)
	}
	for i := range 10 {
		b.add("r", fmt.Sprint("x", i), now.Add(time.Duration(4+i)*time.Hour), now)
	}
	if n := b.len(); n != 3 {
		t.Fatalf("%d bans, want at most 3", n)
	}
	if _, ok := b.banned("r", "x9", now); !ok {
		t.Error("the latest ban was dropped, want the soonest-ending dropped")
	}
	if _, ok := b.banned("r", "a", now); ok {
		t.Error("the soonest-ending ban was kept over later ones")
	}
}

// fakeBanStore is a BanStore in memory, standing for the region's Redis; it fails every call while down.
type fakeBanStore struct {
	s     *SFU
	mu    sync.Mutex
	until map[banKey]time.Time
	down  bool
	calls int
	// lockHeld: a call came while an SFU lock was held (SFU.mu could not be taken).
	lockHeld bool
}

func (f *fakeBanStore) checkLocks() {
	if f.s.mu.TryLock() {
		f.s.mu.Unlock()
	} else {
		f.lockHeld = true
	}
}

func (f *fakeBanStore) Ban(_ context.Context, room, identity string, until time.Time) error {
	f.checkLocks()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return errors.New("redis down")
	}
	f.until[banKey{room, identity}] = until
	return nil
}

func (f *fakeBanStore) Banned(_ context.Context, room, identity string) (time.Time, bool, error) {
	f.checkLocks()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return time.Time{}, false, errors.New("redis down")
	}
	until, ok := f.until[banKey{room, identity}]
	return until, ok && until.After(time.Now()), nil
}

// TestSharedBans: a kick writes the ban to the shared store as well as the node's list; a join the store bans is
// refused (and the ban kept locally), with no SFU lock held during the store's calls; while the store fails, a
// kick still bans locally and a join the local list does not ban is admitted (fail-open).
func TestSharedBans(t *testing.T) {
	store := &fakeBanStore{until: map[banKey]time.Time{}}
	s, err := New(Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}, Bans: store})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store.s = s
	join := func(room, identity string, admin bool, validUntil time.Time) (*Participant, error) {
		return s.Join(JoinRequest{Room: room, Identity: identity, CanSubscribe: true, Admin: admin, ValidUntil: validUntil}, fuzzPeer{})
	}

	// Banned on another node: refused here, and remembered here.
	store.until[banKey{"r", "mallory"}] = time.Now().Add(time.Hour)
	if _, err := join("r", "mallory", false, time.Time{}); !errors.Is(err, ErrKicked) {
		t.Fatalf("a join the store bans: %v, want ErrKicked", err)
	}
	if _, ok := s.bans.banned("r", "mallory", time.Now()); !ok {
		t.Fatal("the store's ban is not kept in the local list")
	}
	if p, err := join("r", "bob", false, time.Time{}); err != nil {
		t.Fatalf("another identity: %v", err)
	} else {
		defer p.Close()
	}

	// A kick here is written to the store.
	chair, err := join("r", "chair", true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer chair.Close()
	end := time.Now().Add(time.Hour).Truncate(time.Second)
	eve, err := join("r", "eve", false, end)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chair.AdminAction(AdminRequest{Action: ActionKick, Participant: eve.ID()}); err != nil {
		t.Fatal(err)
	}
	if until := store.until[banKey{"r", "eve"}]; !until.Equal(end) {
		t.Fatalf("the store has eve banned until %v, want %v", until, end)
	}

	// The store fails: a kick still bans here; a join the local list does not ban is admitted.
	store.down = true
	trent, err := join("r", "trent", false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chair.AdminAction(AdminRequest{Action: ActionKick, Participant: trent.ID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := join("r", "trent", false, time.Time{}); !errors.Is(err, ErrKicked) {
		t.Fatalf("a kick while the store fails: rejoin %v, want ErrKicked", err)
	}
	if _, err := join("r", "eve", false, time.Time{}); !errors.Is(err, ErrKicked) {
		t.Fatalf("eve, kicked here, with the store failing: %v, want ErrKicked", err)
	}
	if p, err := join("r", "walter", false, time.Time{}); err != nil {
		t.Fatalf("a join while the store fails: %v, want admitted", err)
	} else {
		defer p.Close()
	}
	if store.calls == 0 || store.lockHeld {
		t.Fatalf("store calls %d, one under an SFU lock: %v", store.calls, store.lockHeld)
	}
}
