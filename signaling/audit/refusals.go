package audit

import (
	"encoding/json"
	"net"
	"sync"
	"time"
)

// maxRefusalKeys bounds the refusal windows kept at once; refusals of further keys share one window per kind
// (identity and remote "*").
const maxRefusalKeys = 4096

// refusals rate-limits refused records per kind, identity and remote host: burst of them a window are written,
// the rest counted into a "suppressed" record. Safe for concurrent use; mu is a leaf lock.
type refusals struct {
	burst  int // < 0: no limit
	window time.Duration

	mu    sync.Mutex
	byKey map[string]*refusalWindow
}

type refusalWindow struct {
	start            time.Time
	kind, identity   string
	host             string
	written, dropped int
}

func newRefusals(burst int, window time.Duration) *refusals {
	return &refusals{burst: burst, window: window, byKey: map[string]*refusalWindow{}}
}

// sweepEvery is how often the writer looks for ended windows.
func (c *refusals) sweepEvery() time.Duration {
	return max(c.window/4, 100*time.Millisecond)
}

// admit reports whether the refusal e is to be written; summary, when not nil, is the record of the previous
// window of e's key, which ended with refusals left out, to be written before e.
func (c *refusals) admit(e entry, now time.Time) (summary *entry, write bool) {
	if c.burst < 0 {
		return nil, true
	}
	host := e.remote
	if h, _, err := net.SplitHostPort(e.remote); err == nil {
		host = h
	}
	key := e.kind + "\x00" + e.identity + "\x00" + host
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.byKey[key]
	if w == nil && len(c.byKey) >= maxRefusalKeys {
		key = e.kind + "\x00*"
		w = c.byKey[key]
		e.identity, host = "*", "*"
	}
	if w != nil && now.Sub(w.start) >= c.window {
		if w.dropped > 0 {
			s := w.summary(now)
			summary = &s
		}
		delete(c.byKey, key)
		w = nil
	}
	if w == nil {
		w = &refusalWindow{start: now, kind: e.kind, identity: e.identity, host: host}
		c.byKey[key] = w
	}
	if w.written < c.burst {
		w.written++
		return summary, true
	}
	w.dropped++
	return summary, false
}

// ended removes the windows that have ended and returns the summaries of those that left refusals out.
func (c *refusals) ended(now time.Time) []entry {
	return c.take(func(w *refusalWindow) bool { return now.Sub(w.start) >= c.window }, now)
}

// all removes every window and returns the summaries of those that left refusals out.
func (c *refusals) all(now time.Time) []entry {
	return c.take(func(*refusalWindow) bool { return true }, now)
}

func (c *refusals) take(done func(*refusalWindow) bool, now time.Time) []entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []entry
	for k, w := range c.byKey {
		if !done(w) {
			continue
		}
		if w.dropped > 0 {
			out = append(out, w.summary(now))
		}
		delete(c.byKey, k)
	}
	return out
}

func (w *refusalWindow) summary(now time.Time) entry {
	d, _ := json.Marshal(map[string]any{"kind": w.kind, "count": w.dropped, "since": w.start.UTC().Format(time.RFC3339Nano)})
	return entry{at: now, ts: now, kind: KindSuppressed, identity: w.identity, remote: w.host, detail: d}
}
