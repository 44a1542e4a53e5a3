package sfu

import (
	"fmt"
	"sync"
)

// WorkerBudget is a node's slots for work its workers do per track (a denoise chain, a captions stream), shared
// by all its rooms: a worker takes a slot when it starts on a track and gives it back when it stops. The node
// makes one and hands it to its workers; a nil budget has no limit.
type WorkerBudget struct {
	limit int
	name  string // what the operator calls the limit, for the error

	mu    sync.Mutex
	inUse int
}

// NewWorkerBudget makes a budget of limit slots (0: no limit); name is what the error calls the limit (a flag,
// e.g. "-max-worker-streams").
func NewWorkerBudget(limit int, name string) *WorkerBudget {
	return &WorkerBudget{limit: limit, name: name}
}

// Take takes a slot for work on a track, and returns the function that gives it back (once; more calls do
// nothing). When every slot is taken it fails with ErrUnavailable, naming the limit. It does not block.
func (b *WorkerBudget) Take(what string) (release func(), err error) {
	if b == nil || b.limit <= 0 {
		return func() {}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inUse >= b.limit {
		return nil, fmt.Errorf("%s: this node already runs its limit of %d denoise and captions streams (%s): %w",
			what, b.limit, b.name, ErrUnavailable)
	}
	b.inUse++
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.inUse--
			b.mu.Unlock()
		})
	}, nil
}

// InUse is how many slots are taken now.
func (b *WorkerBudget) InUse() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}
