package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var secret = []byte("webhook-test-secret")

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"EV_1","event":"room_started"}`)
	now := time.Unix(1_800_000_000, 0)
	header := Sign(secret, body, now)
	if err := Verify(secret, header, body, now.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for _, c := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"wrong secret", []byte("another secret"), header, body, now, ErrBadSignature},
		{"altered body", secret, header, []byte(`{"id":"EV_1","event":"room_finished"}`), now, ErrBadSignature},
		{"old timestamp", secret, header, body, now.Add(DefaultTolerance + time.Second), ErrStale},
		{"future timestamp", secret, header, body, now.Add(-DefaultTolerance - time.Second), ErrStale},
		{"timestamp changed", secret, "t=" + strconv.FormatInt(now.Unix()+1, 10) + header[len("t=1800000000"):], body, now, ErrBadSignature},
		{"no signature", secret, "t=1800000000", body, now, ErrBadSignature},
		{"empty header", secret, "", body, now, ErrBadSignature},
	} {
		if err := Verify(c.secret, c.header, c.body, c.now, DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// received is what a test receiver got: each request's event, delivery id and verified signature.
type received struct {
	Event    Event
	Delivery string
}

// receiver is a test webhook endpoint on loopback; answer decides each request's status (nil: 200).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(r received, try int) int
	tries  map[string]int
}

func newReceiver(t *testing.T, answer func(r received, try int) int) *receiver {
	rc := &receiver{t: t, answer: answer, tries: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := Verify(secret, r.Header.Get(SignatureHeader), body, time.Now(), DefaultTolerance); err != nil {
		rc.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("receiver: %v", err)
	}
	got := received{Event: ev, Delivery: r.Header.Get(DeliveryHeader)}
	rc.mu.Lock()
	rc.tries[got.Delivery]++
	try := rc.tries[got.Delivery]
	rc.got = append(rc.got, got)
	rc.mu.Unlock()
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(got, try)
	}
	w.WriteHeader(status)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func newSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	cfg.Secret = secret
	cfg.Backoff = orDefault(cfg.Backoff, 10*time.Millisecond)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func roomEvent(room, event string, n int) Event {
	return Event{Event: event, Room: &Room{Name: room, SID: "RM_" + room}, Reason: strconv.Itoa(n)}
}

// A room's events arrive in the order they were sent, a failed one is tried again with the same id before the
// room's next, and another room's events are not held up by it.
func TestOrderAndRetry(t *testing.T) {
	rc := newReceiver(t, func(r received, try int) int {
		if r.Event.Room.Name == "a" && r.Event.Reason == "1" && try < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	s := newSender(t, Config{URLs: []string{rc.srv.URL}, Backoff: 20 * time.Millisecond})
	for i := range 5 {
		s.Send(roomEvent("a", ParticipantJoined, i))
		s.Send(roomEvent("b", ParticipantJoined, i))
	}
	waitFor(t, "ten events delivered", func() bool { return value(s.delivered) == 10 })
	var order = map[string][]string{}
	ids := map[string]string{}
	for _, r := range rc.requests() {
		if r.Delivery != r.Event.ID {
			t.Errorf("delivery header %q, body id %q", r.Delivery, r.Event.ID)
		}
		key := r.Event.Room.Name + r.Event.Reason
		if prev, ok := ids[key]; ok && prev != r.Delivery {
			t.Errorf("event %s retried with id %s, first %s", key, r.Delivery, prev)
		}
		ids[key] = r.Delivery
		order[r.Event.Room.Name] = append(order[r.Event.Room.Name], r.Event.Reason)
	}
	if got := order["a"]; len(got) != 7 || got[0] != "0" || got[1] != "1" || got[2] != "1" || got[3] != "1" || got[4] != "2" || got[6] != "4" {
		t.Errorf("room a's requests: %v, want 0 1 1 1 2 3 4", got)
	}
	if got := order["b"]; len(got) != 5 || got[0] != "0" || got[4] != "4" {
		t.Errorf("room b's requests: %v, want 0 1 2 3 4", got)
	}
	if f := value(s.failed); f != 2 {
		t.Errorf("failed attempts %v, want 2", f)
	}
}

// A receiver that keeps failing gets Attempts tries, then the event is dropped as gave_up; one that refuses with
// a 4xx gets one try.
func TestGiveUp(t *testing.T) {
	rc := newReceiver(t, func(r received, _ int) int {
		if r.Event.Event == RoomStarted {
			return http.StatusBadRequest
		}
		return http.StatusServiceUnavailable
	})
	s := newSender(t, Config{URLs: []string{rc.srv.URL}, Attempts: 3, Backoff: time.Millisecond})
	s.Send(roomEvent("a", RoomFinished, 0))
	s.Send(roomEvent("b", RoomStarted, 0))
	waitFor(t, "both given up", func() bool {
		return value(s.dropped[dropGaveUp]) == 1 && value(s.dropped[dropRejected]) == 1
	})
	if n := len(rc.requests()); n != 4 {
		t.Errorf("%d requests, want 3 tries of one and 1 of the other", n)
	}
}

// When a URL's queue is full, new events are dropped and counted; Send does not wait for the receiver.
func TestQueueFullDrops(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(received, int) int {
		<-release
		return http.StatusOK
	})
	s := newSender(t, Config{URLs: []string{rc.srv.URL}, QueueSize: 3, Concurrency: 1})
	defer close(release)
	for i := range 10 {
		s.Send(roomEvent("a", TrackPublished, i))
	}
	if d := value(s.dropped[dropQueueFull]); d != 7 {
		t.Errorf("dropped %v, want 7 (a queue of 3)", d)
	}
	if q := s.queued(); q != 3 {
		t.Errorf("queued %d, want 3", q)
	}
}

// Close delivers what is queued while its context lasts, then drops and counts the rest; Send after Close drops.
func TestCloseDrains(t *testing.T) {
	rc := newReceiver(t, nil)
	s := newSender(t, Config{URLs: []string{rc.srv.URL}})
	for i := range 20 {
		s.Send(roomEvent(strconv.Itoa(i%4), ParticipantLeft, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.requests()); n != 20 {
		t.Errorf("%d delivered before Close returned, want 20", n)
	}
	s.Send(roomEvent("a", RoomFinished, 0))
	if d := value(s.dropped[dropShutdown]); d != 1 {
		t.Errorf("dropped at shutdown %v, want 1", d)
	}

	down := newReceiver(t, func(received, int) int { return http.StatusBadGateway })
	s2 := newSender(t, Config{URLs: []string{down.srv.URL}, Backoff: time.Hour})
	s2.Send(roomEvent("a", RoomStarted, 0))
	s2.Send(roomEvent("a", RoomFinished, 1))
	waitFor(t, "the first try", func() bool { return value(s2.failed) == 1 })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := s2.Close(ctx2); err == nil {
		t.Error("Close with undelivered events: no error")
	}
	if d := value(s2.dropped[dropShutdown]); d != 2 {
		t.Errorf("dropped at shutdown %v, want 2", d)
	}
}

// The waits between tries grow, stay within their bounds, and five tries take about a minute by default.
func TestBackoffBounded(t *testing.T) {
	s := &Sender{cfg: Config{Backoff: DefaultBackoff, MaxBackoff: 8 * DefaultBackoff}}
	for range 100 {
		var total time.Duration
		for n := 1; n < DefaultAttempts; n++ {
			d := s.backoff(n)
			hi := min(DefaultBackoff<<(n-1), 8*DefaultBackoff)
			if d < hi/2 || d > hi {
				t.Fatalf("wait %d: %v, want in [%v, %v]", n, d, hi/2, hi)
			}
			total += d
		}
		if total < 30*time.Second || total > 60*time.Second {
			t.Fatalf("the waits of %d tries add up to %v, want 30 s to 1 min", DefaultAttempts, total)
		}
	}
	for n := 1; n < 64; n++ {
		if d := s.backoff(n); d > 8*DefaultBackoff {
			t.Fatalf("wait %d: %v, over the maximum", n, d)
		}
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"ftp://example.org/hook", "example.org/hook", "http://"} {
		if _, err := New(Config{URLs: []string{u}, Secret: secret}); err == nil {
			t.Errorf("%q taken", u)
		}
	}
}
