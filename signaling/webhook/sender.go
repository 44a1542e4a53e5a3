package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	randv2 "math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Defaults for Config.
const (
	DefaultQueueSize   = 1000
	DefaultAttempts    = 5
	DefaultBackoff     = 4 * time.Second // then 8, 16, 32 s (each jittered): five tries over about a minute
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 4
)

// Config configures a Sender.
type Config struct {
	// URLs receive every event (http or https).
	URLs []string
	// Secret signs the requests (SignatureHeader).
	Secret []byte
	// Node is put in every event.
	Node Node
	// QueueSize bounds the events waiting for each URL, the one being sent included (default DefaultQueueSize).
	QueueSize int
	// Attempts bounds the tries of one event to one URL (default DefaultAttempts).
	Attempts int
	// Backoff is the wait before the first retry, doubled before each next one up to MaxBackoff; each wait is
	// drawn between half of it and all of it (default DefaultBackoff; MaxBackoff: 8 × Backoff).
	Backoff, MaxBackoff time.Duration
	// Timeout bounds one request, answer included (default DefaultTimeout).
	Timeout time.Duration
	// Concurrency is how many requests to one URL may be in flight at once, each for a different room
	// (default DefaultConcurrency).
	Concurrency int
	Logger      *zap.Logger
}

// Why an event was dropped (sfu_webhook_dropped_total's reason).
const (
	dropQueueFull = "queue_full" // the URL's queue was full when it came
	dropGaveUp    = "gave_up"    // every attempt failed
	dropRejected  = "rejected"   // the receiver refused it (a 4xx other than 408, 425, 429)
	dropShutdown  = "shutdown"   // the node stopped before it was delivered
)

// Sender delivers events to the configured URLs. Its goroutines live until Close.
type Sender struct {
	cfg     Config
	log     *zap.Logger
	client  *http.Client
	targets []*target

	ctx     context.Context // the workers' and requests' lifetime
	cancel  context.CancelFunc
	workers sync.WaitGroup

	mu      sync.RWMutex // Send holds it for reading; Close takes it to stop new events
	closed  bool
	pending sync.WaitGroup // an event queued for a URL, until delivered or dropped

	delivered, failed prometheus.Counter
	dropped           map[string]prometheus.Counter
	metrics           []prometheus.Collector
}

// New checks the URLs and starts the workers.
func New(cfg Config) (*Sender, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: no URL")
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("webhook: no secret to sign with")
	}
	for _, u := range cfg.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("webhook: %q is not an http or https URL", u)
		}
	}
	cfg.QueueSize = orDefault(cfg.QueueSize, DefaultQueueSize)
	cfg.Attempts = orDefault(cfg.Attempts, DefaultAttempts)
	cfg.Backoff = orDefault(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, 8*cfg.Backoff)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.Concurrency = orDefault(cfg.Concurrency, DefaultConcurrency)
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sender{cfg: cfg, log: log,
		client: &http.Client{Timeout: cfg.Timeout,
			// A redirect is a failed try: a POST is not replayed elsewhere, and the URL is the operator's to fix.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfu_webhook_delivered_total",
			Help: "Webhook events delivered (answered 2xx), over every URL."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfu_webhook_failed_attempts_total",
			Help: "Webhook requests that failed (no answer, a redirect or a status other than 2xx); most are tried again."}),
		dropped: map[string]prometheus.Counter{}}
	droppedVec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfu_webhook_dropped_total",
		Help: "Webhook events given up for a URL, by reason: queue_full, gave_up (every attempt failed), rejected (a 4xx), shutdown."},
		[]string{"reason"})
	for _, r := range []string{dropQueueFull, dropGaveUp, dropRejected, dropShutdown} {
		s.dropped[r] = droppedVec.WithLabelValues(r)
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sfu_webhook_queued",
		Help: "Webhook events waiting for delivery, over every URL."}, func() float64 { return float64(s.queued()) })
	s.metrics = []prometheus.Collector{s.delivered, s.failed, droppedVec, queued}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, u := range cfg.URLs {
		t := &target{s: s, url: u, lanes: map[string]*lane{}, ready: make(chan *lane, cfg.QueueSize)}
		s.targets = append(s.targets, t)
		for range cfg.Concurrency {
			s.workers.Add(1)
			go func() {
				defer s.workers.Done()
				t.work(s.ctx)
			}()
		}
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// Describe implements prometheus.Collector: the sender's metrics, with no label but the reason of a drop.
func (s *Sender) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range s.metrics {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (s *Sender) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s.metrics {
		c.Collect(ch)
	}
}

// Send queues ev for every URL and returns at once; it fills ev's ID, CreatedAt (if zero) and Node. It may be
// called under any lock: it takes only the sender's own, briefly, and does no I/O.
func (s *Sender) Send(ev Event) {
	if ev.CreatedAt.IsZero() {
		ev.CreatedAt = time.Now()
	}
	ev.Node = s.cfg.Node
	p := &payload{ev: ev}
	key := ""
	if ev.Room != nil {
		key = ev.Room.Name
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped[dropShutdown].Add(float64(len(s.targets)))
		return
	}
	for _, t := range s.targets {
		t.enqueue(key, p)
	}
}

// Close stops taking events, delivers those queued until ctx ends (a node's shutdown gives it a few seconds), then
// drops the rest, counting them, and stops its goroutines.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	drained := make(chan struct{})
	go func() { // ends once every pending event is delivered or, after the sweep below, dropped
		s.pending.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	s.cancel() // ends the requests in flight and the workers
	s.workers.Wait()
	lost := 0
	for _, t := range s.targets {
		lost += t.sweep()
	}
	<-drained
	if lost > 0 {
		s.log.Warn("webhook events not delivered before shutdown", zap.Int("events", lost))
		return fmt.Errorf("webhook: %d events not delivered before shutdown", lost)
	}
	return nil
}

// queued counts the events waiting over every URL.
func (s *Sender) queued() int {
	n := 0
	for _, t := range s.targets {
		t.mu.Lock()
		n += t.queued
		t.mu.Unlock()
	}
	return n
}

// backoff is the wait before try n+1 after n failed tries (n ≥ 1): Backoff doubled n-1 times, at most
// MaxBackoff, drawn between half of it and all of it.
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.Backoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + randv2.N(d/2+1)
}

// payload is one event, encoded once for every URL and try.
type payload struct {
	ev   Event
	once sync.Once
	body []byte
	err  error
}

func (p *payload) encode() ([]byte, error) {
	p.once.Do(func() {
		var b [10]byte
		_, _ = rand.Read(b[:])
		p.ev.ID = "EV_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
		p.body, p.err = json.Marshal(p.ev)
	})
	return p.body, p.err
}

// target is one URL: its queue, kept as one lane per room so that a room's events go out in order.
type target struct {
	s     *Sender
	url   string
	ready chan *lane // lanes whose first event may be sent now; a lane is in it at most once

	mu          sync.Mutex
	lanes       map[string]*lane // lanes with events, by room name ("": events of no room)
	queued      int              // events in the lanes
	droppedFull atomic.Int64     // events dropped for a full queue since a worker last logged it
}

// lane is a room's events for one URL. Its first event is being sent, is waiting for a retry, or is in ready.
type lane struct {
	key    string
	events []*delivery
	timer  *time.Timer // the retry's, while waiting
}

// delivery is one event for one URL.
type delivery struct {
	p     *payload
	tries int
}

// enqueue adds an event to its room's lane, or drops it if the URL's queue is full.
func (t *target) enqueue(key string, p *payload) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queued >= t.s.cfg.QueueSize {
		t.s.dropped[dropQueueFull].Inc()
		t.droppedFull.Add(1) // logged by a worker: no I/O here
		return
	}
	t.queued++
	t.s.pending.Add(1)
	l := t.lanes[key]
	if l == nil {
		l = &lane{key: key}
		t.lanes[key] = l
	}
	l.events = append(l.events, &delivery{p: p})
	if len(l.events) == 1 { // the lane was idle
		t.push(l)
	}
}

// push makes l's first event ready to send; t.mu is held. ready has room: a lane holds at least one of the
// QueueSize events, and is in ready at most once.
func (t *target) push(l *lane) {
	select {
	case t.ready <- l:
	default:
		panic("webhook: ready queue full") // cannot happen: see above
	}
}

// work sends the first event of each ready lane until ctx ends.
func (t *target) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-t.ready:
			t.attempt(ctx, l)
		}
		if n := t.droppedFull.Swap(0); n > 0 {
			t.s.log.Warn("webhook queue full: events dropped", zap.String("url", redact(t.url)), zap.Int64("events", n),
				zap.Int("queue_size", t.s.cfg.QueueSize))
		}
	}
}

// attempt tries the lane's first event once, then moves on: the next event, a retry later, or nothing.
func (t *target) attempt(ctx context.Context, l *lane) {
	t.mu.Lock()
	if len(l.events) == 0 { // swept
		t.mu.Unlock()
		return
	}
	d := l.events[0]
	t.mu.Unlock()
	retry, err := t.post(ctx, d.p)
	if err == nil {
		t.s.delivered.Inc()
		t.finish(l)
		return
	}
	if ctx.Err() != nil { // shutting down: Close's sweep counts it
		return
	}
	t.s.failed.Inc()
	d.tries++
	if !retry || d.tries >= t.s.cfg.Attempts {
		reason := dropGaveUp
		if !retry {
			reason = dropRejected
		}
		t.s.dropped[reason].Inc()
		t.s.log.Warn("webhook event not delivered", zap.String("url", redact(t.url)), zap.String("event", d.p.ev.Event),
			zap.String("id", d.p.ev.ID), zap.Int("tries", d.tries), zap.String("reason", reason), zap.Error(err))
		t.finish(l)
		return
	}
	wait := t.s.backoff(d.tries)
	t.s.log.Debug("webhook retry", zap.String("url", redact(t.url)), zap.String("id", d.p.ev.ID), zap.Int("tries", d.tries),
		zap.Duration("wait", wait), zap.Error(err))
	t.mu.Lock()
	l.timer = time.AfterFunc(wait, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if l.timer != nil && len(l.events) > 0 {
			l.timer = nil
			t.push(l)
		}
	})
	t.mu.Unlock()
}

// finish takes the lane's first event off: the next one is ready, or the lane goes.
func (t *target) finish(l *lane) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l.events[0] = nil
	l.events = l.events[1:]
	t.queued--
	t.s.pending.Done()
	if len(l.events) > 0 {
		t.push(l)
	} else if t.lanes[l.key] == l {
		delete(t.lanes, l.key)
	}
}

// sweep drops every event left, once the workers have stopped, and returns how many there were.
func (t *target) sweep() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for key, l := range t.lanes {
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
		n += len(l.events)
		l.events = nil
		delete(t.lanes, key)
	}
	t.queued -= n
	t.s.dropped[dropShutdown].Add(float64(n))
	for range n {
		t.s.pending.Done()
	}
	return n
}

// post sends the event once. A nil error is a 2xx answer; otherwise retry says whether another try may succeed.
func (t *target) post(ctx context.Context, p *payload) (retry bool, err error) {
	body, err := p.encode()
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("User-Agent", "edge-sfu-webhook/1")
	req.Header.Set(DeliveryHeader, p.ev.ID)
	req.Header.Set(EventHeader, p.ev.Event)
	req.Header.Set(SignatureHeader, Sign(t.s.cfg.Secret, body, time.Now()))
	resp, err := t.s.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxResponseDrained)
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooEarly && c != http.StatusTooManyRequests:
		return false, fmt.Errorf("answered %s", resp.Status)
	default:
		return true, fmt.Errorf("answered %s", resp.Status)
	}
}

// redact drops a URL's user information and query (which may hold credentials) for the logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(bad URL)"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}
