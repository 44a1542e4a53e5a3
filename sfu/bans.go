package sfu

import (
	"errors"
	"sync"
	"time"
)

// Bans: a participant an administrator kicked may not come back to the room until the token it joined with
// has expired, whatever token it comes back with (pen-test finding 12). The bans are this node's.
//
// TODO(cluster): share bans through the region's Redis (a key per room and identity, expiring with the ban), so
// that a kicked participant cannot rejoin the room through another node it is spread to or moved to.

// ErrKicked refuses a join of an identity an administrator kicked from the room, until the ban ends.
var ErrKicked = errors.New("kicked")

// Defaults of the ban list.
const (
	// DefaultMaxBans bounds the bans a node keeps: when full, ended bans go, then those that end soonest.
	DefaultMaxBans = 10_000
	// defaultBan is how long a kick bans a participant whose join carried no token expiry (JoinRequest.ValidUntil).
	defaultBan = time.Hour
)

type banKey struct{ room, identity string }

// banList is the bans of a node, by room and identity, each until it ends. It has its own lock, taken after
// every other (see the package's lock order).
type banList struct {
	mu    sync.Mutex
	max   int
	until map[banKey]time.Time
}

func newBanList(max int) *banList {
	return &banList{max: max, until: map[banKey]time.Time{}}
}

// add bans identity from room until then (a ban that ends later stays), pruning ended bans and, when the list
// is full, the one that ends soonest.
func (b *banList) add(room, identity string, until, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := banKey{room, identity}
	if old, ok := b.until[k]; ok && old.After(until) {
		return
	}
	for key, end := range b.until {
		if !end.After(now) {
			delete(b.until, key)
		}
	}
	if _, ok := b.until[k]; !ok && len(b.until) >= b.max { // the newest kick is the likeliest to be tried
		var soonest banKey
		var end time.Time
		for key, e := range b.until {
			if end.IsZero() || e.Before(end) {
				soonest, end = key, e
			}
		}
		delete(b.until, soonest)
	}
	b.until[k] = until
}

// banned reports whether identity is banned from room now, and until when; an ended ban is forgotten.
func (b *banList) banned(room, identity string, now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := banKey{room, identity}
	until, ok := b.until[k]
	if ok && !until.After(now) {
		delete(b.until, k)
		return time.Time{}, false
	}
	return until, ok
}

// len is the number of bans kept, ended ones not yet pruned included.
func (b *banList) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.until)
}
