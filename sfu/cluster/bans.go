package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bans shares the kicks of a region's nodes through its Redis (sfu.BanStore): a participant an administrator
// kicked on one node is refused by every node until the ban ends (see sfu/bans.go, which also says what a node
// does when Redis does not answer).
//
// Redis key:
//
//	sfu:ban:{len(room)}:{room}:{identity}
//	                string: when the ban ends, in Unix milliseconds, expiring then (PX). The room's length in
//	                bytes comes first so that no two (room, identity) pairs share a key whatever ':' they
//	                contain ("a:b" and "c" is sfu:ban:3:a:b:c; "a" and "b:c" is sfu:ban:1:a:b:c). A ban is
//	                written only if it ends later than the one there (Lua script).
//
// Every call is bounded by the timeout given to NewBans, the connection's dial, reads and writes included.
type Bans struct {
	rdb     *redis.Client
	timeout time.Duration
}

// DefaultBanTimeout bounds each of Bans' calls to Redis.
const DefaultBanTimeout = 300 * time.Millisecond

const banKeyPrefix = "sfu:ban:"

// banScript sets a ban unless a later one is there: KEYS[1] the ban's key, ARGV[1] its end (Unix ms), ARGV[2]
// its time to live (ms).
var banScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= tonumber(ARGV[1]) then
	return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// NewBans returns the bans of the region whose Redis is at redisURL (redis://host:port/db), each call bounded by
// timeout (0: DefaultBanTimeout). It has its own connections, opened when first needed: a Redis that is down
// fails the calls, not NewBans.
func NewBans(redisURL string, timeout time.Duration) (*Bans, error) {
	if timeout <= 0 {
		timeout = DefaultBanTimeout
	}
	// No retry: it would outlast the timeout; the next join asks again.
	rdb, err := newRedis(redisURL, redisTuning{timeout: timeout, noRetries: true})
	if err != nil {
		return nil, err
	}
	return &Bans{rdb: rdb, timeout: timeout}, nil
}

// banKey is the key of room's ban of identity; see Bans.
func banKey(room, identity string) string {
	return banKeyPrefix + strconv.Itoa(len(room)) + ":" + room + ":" + identity
}

// Ban implements sfu.BanStore: identity may not join room on any node until then. A ban that has already ended
// is not written; one that ends later than this stays.
func (b *Bans) Ban(ctx context.Context, room, identity string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	ms := max(ttl.Milliseconds(), 1)
	if err := banScript.Run(ctx, b.rdb, []string{banKey(room, identity)}, until.UnixMilli(), ms).Err(); err != nil {
		return fmt.Errorf("cluster: write the ban of %q from %q: %w", identity, room, err)
	}
	return nil
}

// Banned implements sfu.BanStore.
func (b *Bans) Banned(ctx context.Context, room, identity string) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	v, err := b.rdb.Get(ctx, banKey(room, identity)).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("cluster: read the ban of %q from %q: %w", identity, room, err)
	}
	until := time.UnixMilli(v)
	if !until.After(time.Now()) { // Redis's clock is behind this node's: the ban has ended
		return time.Time{}, false, nil
	}
	return until, true, nil
}

// Close closes the connections to Redis.
func (b *Bans) Close() error { return b.rdb.Close() }
