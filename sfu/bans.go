package sfu

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Bans: a participant an administrator kicked may not come back to the room until the token it joined with
// has expired, whatever token it comes back with (pen-test finding 12).
//
// Each node keeps its bans in a bounded list (banList), checked first and always written. In a cluster the
// bans are also shared through the region's Redis (Config.Bans, a BanStore; package cluster's Bans), so that a
// kicked participant cannot rejoin the room through another node that hosts it (relayed to the owner) or that
// the room moves to (a failover):
//
//   - a kick writes the ban to the list, then to the store, before the kicked participant is told (bye), so the
//     ban is shared by the time it can try another node;
//   - a join (Join, JoinWHIP, JoinWHEP) the list does not ban asks the store, before any SFU lock is taken (no
//     I/O under the package's locks); a ban found there is kept in the list too.
//
// Every call to the store is bounded (banStoreTimeout). When the store fails or does not answer in time, the
// node fails open, and logs it: the kick still bans on the node that kicked, and a join the list
// does not ban is admitted. Refusing every join of every room while Redis is down would turn a Redis outage into
// a full outage of the region; what it costs is that, during the outage, a participant kicked on one node may
// rejoin through another until its token expires, as it could before bans were shared.

// BanStore shares bans between the nodes of a region (package cluster implements it over Redis). Its calls do
// network I/O: the SFU makes them with no lock held, each bounded by its context.
type BanStore interface {
	// Ban refuses identity's joins of room until then, on every node; a ban that ends later stays.
	Ban(ctx context.Context, room, identity string, until time.Time) error
	// Banned reports whether identity is banned from room now, and until when.
	Banned(ctx context.Context, room, identity string) (until time.Time, banned bool, err error)
}

// banStoreTimeout bounds each call to the BanStore: a join or a kick waits no longer for the region's Redis.
const banStoreTimeout = 300 * time.Millisecond

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

// kickedError is the refusal of a banned identity's join.
func kickedError(room, identity string, until time.Time) error {
	return fmt.Errorf("%w: an administrator removed %.40q from room %.40q; it may not join it again before %s",
		ErrKicked, identity, room, until.UTC().Format(time.RFC3339))
}

// checkBan refuses (ErrKicked) a join of room by identity that the node's list or, failing that, the shared
// store bans. It takes no SFU lock across the store's call; when the store fails, the join is not refused
// (fail-open, see above). enter checks the list again, under SFU.mu, for a kick made here meanwhile.
func (s *SFU) checkBan(room, identity string) error {
	now := time.Now()
	if until, banned := s.bans.banned(room, identity, now); banned {
		return kickedError(room, identity, until)
	}
	if s.banStore == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), banStoreTimeout)
	until, banned, err := s.banStore.Banned(ctx, room, identity)
	cancel()
	switch {
	case err != nil:
		s.log.Warn("shared bans: cannot check a join, admitted unless this node banned it", zap.String("room", room),
			zap.String("identity", identity), zap.Error(err))
		return nil
	case !banned || !until.After(now):
		return nil
	}
	s.bans.add(room, identity, until, now) // the next try is refused without asking Redis
	return kickedError(room, identity, until)
}
