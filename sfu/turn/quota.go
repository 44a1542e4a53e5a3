package turn

import (
	"net"
	"sync"

	pionturn "github.com/pion/turn/v5"
	"go.uber.org/zap"
)

// DefaultMaxAllocations is how many relays one username (one participant's minted credentials) holds at once
// when Config.MaxAllocations is not set: a participant needs one per peer connection (publish and subscribe),
// and a few more across ICE restarts.
const DefaultMaxAllocations = 5

// quota counts each username's allocations with pion/turn's hooks: its QuotaHandler refuses an allocation beyond
// max (pion/turn answers 486, Allocation Quota Reached), its EventHandler counts the allocations made and ended.
// The check and the count of one allocation are not one step, but the server's one UDP socket is read by one
// goroutine, which handles an Allocate request, count included, before it reads the next.
type quota struct {
	max int
	log *zap.Logger

	mu   sync.Mutex
	held map[string]int // by username
}

func newQuota(max int, log *zap.Logger) *quota {
	if max <= 0 {
		max = DefaultMaxAllocations
	}
	return &quota{max: max, log: log, held: map[string]int{}}
}

// allow is the server's QuotaHandler.
func (q *quota) allow(username, _ string, src net.Addr) bool {
	q.mu.Lock()
	n := q.held[username]
	q.mu.Unlock()
	if n < q.max {
		return true
	}
	q.log.Info("TURN: refused an allocation beyond the quota", zap.String("username", username),
		zap.Stringer("from", src), zap.Int("held", n), zap.Int("max", q.max))
	return false
}

// events are the server's EventHandler: they count allocations by username.
func (q *quota) events() pionturn.EventHandler {
	return pionturn.EventHandler{
		OnAllocationCreated: func(_, _ net.Addr, _, username, _ string, _ net.Addr, _ int) {
			q.mu.Lock()
			q.held[username]++
			q.mu.Unlock()
		},
		OnAllocationDeleted: func(_, _ net.Addr, _, username, _ string) {
			q.mu.Lock()
			if q.held[username] <= 1 {
				delete(q.held, username)
			} else {
				q.held[username]--
			}
			q.mu.Unlock()
		},
	}
}
