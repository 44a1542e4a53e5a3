package sfu

import (
	"fmt"
	"testing"
	"time"
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
