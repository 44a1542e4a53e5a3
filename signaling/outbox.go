package signaling

import "sync"

// outbox holds the messages waiting for a session's writer, at most sendQueue of them. It grows with use: a
// socket that has not joined holds an empty one, where a channel of sendQueue slots costs 6 KiB from the start.
type outbox struct {
	mu    sync.Mutex
	msgs  [][]byte
	ready chan struct{} // one slot: signalled when messages are waiting
}

func newOutbox() *outbox { return &outbox{ready: make(chan struct{}, 1)} }

// put queues b; it reports false, queueing nothing, when sendQueue messages are waiting already.
func (o *outbox) put(b []byte) bool {
	o.mu.Lock()
	if len(o.msgs) >= sendQueue {
		o.mu.Unlock()
		return false
	}
	o.msgs = append(o.msgs, b)
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default: // signalled already
	}
	return true
}

// take returns the waiting messages, leaving spare (emptied) to queue the next: the writer hands back the batch
// it has sent, so that two slices serve the session's life.
func (o *outbox) take(spare [][]byte) [][]byte {
	clear(spare)
	o.mu.Lock()
	defer o.mu.Unlock()
	msgs := o.msgs
	o.msgs = spare[:0]
	return msgs
}
