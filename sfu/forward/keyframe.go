package forward

import (
	"sync"
	"time"
)

// KeyframeInterval is the shortest time between two keyframe requests (PLI) sent to a publisher for one layer.
const KeyframeInterval = 500 * time.Millisecond

// keyframeThrottle sends at most one keyframe request per KeyframeInterval; one asked for inside the interval is
// not lost but sent when the interval ends.
type keyframeThrottle struct {
	mu      sync.Mutex
	last    time.Time
	pending bool
	timer   *time.Timer
	stopped bool
}

// request calls send now, or once at the end of the interval if a request went out less than an interval ago.
// send is called without the throttle's lock held.
func (k *keyframeThrottle) request(send func()) {
	k.mu.Lock()
	if k.pending || k.stopped {
		k.mu.Unlock()
		return
	}
	if wait := KeyframeInterval - time.Since(k.last); wait > 0 {
		k.pending = true
		k.timer = time.AfterFunc(wait, func() {
			k.mu.Lock()
			k.pending = false
			k.last = time.Now()
			stopped := k.stopped
			k.mu.Unlock()
			if !stopped {
				send()
			}
		})
		k.mu.Unlock()
		return
	}
	k.last = time.Now()
	k.mu.Unlock()
	send()
}

// stop cancels a deferred request; later requests are ignored.
func (k *keyframeThrottle) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.timer != nil {
		k.timer.Stop()
	}
}
