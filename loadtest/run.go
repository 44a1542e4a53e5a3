// Package loadtest simulates participants of the SFU, each a Pion client using the real signaling, and measures
// what they experience: join time, latency, loss, freezes and stability, with the server's CPU and memory.
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
)

// Scenarios.
const (
	Meeting = "meeting" // Rooms rooms of Users/Rooms participants, Publishers of them sending audio and video
	Webinar = "webinar" // one room: one presenter, everyone else watching
	Ramp    = "ramp"    // a meeting whose users keep joining at JoinRate for the whole run
	// AllHands is one large room: Presenters send audio and video, Speakers keep their microphones open (audio
	// only) and take turns to speak, with now and then an interjection, and everyone else listens and watches.
	AllHands = "allhands"
)

// Config describes a run.
type Config struct {
	URL        string // the server, http://host:port
	MetricsURL string // its Prometheus listener, http://host:port (default: the server's host, port 7889)
	Secret     string // the server's token secret; empty: use its dev-mode /token endpoint
	Scenario   string
	Users      int
	Rooms      int
	Publishers int // per room (meeting, ramp)
	Presenters int // allhands: participants sending audio and video
	Speakers   int // allhands: participants with open microphones, sending audio only
	// MaxAudioStreams is the server's -max-audio-streams: without a speech schedule a user must receive audio from
	// at least this many of the microphones it could hear (every one if fewer; one fewer if it has a microphone
	// of its own, which may hold a place). 0: every microphone, as from a server that forwards them all.
	MaxAudioStreams int
	Duration        time.Duration // measured time after the last join
	JoinRate        float64       // joins per second
	// TileWidth and TileHeight are the size at which every subscriber shows each video (a gallery of small
	// tiles by default); negative reports nothing, so subscribers get the largest layer their bandwidth allows.
	TileWidth, TileHeight int
	IVF, Ogg              string    // play these files instead of synthetic media
	Progress              io.Writer // the live progress line; nil for none
	Log                   io.Writer // problems worth a line; nil for none
}

// Defaults fills in what is zero: the 500-user meeting of 50 rooms of 10 with 2 publishers per room, 60 s,
// 50 joins a second, 320x180 tiles; for allhands, 2 presenters and 20 speakers.
func (c *Config) Defaults() {
	if c.Scenario == "" {
		c.Scenario = Meeting
	}
	if c.Users == 0 {
		c.Users = 500
	}
	if c.Rooms == 0 {
		c.Rooms = 50
	}
	if c.Publishers == 0 {
		c.Publishers = 2
	}
	if c.Scenario == AllHands && c.Presenters == 0 {
		c.Presenters = 2
	}
	if c.Scenario == AllHands && c.Speakers == 0 {
		c.Speakers = 20
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.JoinRate == 0 {
		c.JoinRate = 50
	}
	if c.TileWidth == 0 && c.TileHeight == 0 {
		c.TileWidth, c.TileHeight = 320, 180
	}
}

// Limits keep a run bounded.
const (
	MaxUsers    = 5000
	MaxDuration = 2 * time.Hour
	joinGrace   = 2 * time.Second // a user's seconds count towards stability from its scheduled join plus this
)

func (c *Config) validate() error {
	switch {
	case c.Scenario != Meeting && c.Scenario != Webinar && c.Scenario != Ramp && c.Scenario != AllHands:
		return fmt.Errorf("scenario %q: want meeting, webinar, ramp or allhands", c.Scenario)
	case c.Users < 1 || c.Users > MaxUsers:
		return fmt.Errorf("users %d: want 1 to %d", c.Users, MaxUsers)
	case c.Rooms < 1 || c.Rooms > c.Users:
		return fmt.Errorf("rooms %d: want 1 to the number of users", c.Rooms)
	case c.MaxAudioStreams < 0:
		return errors.New("max audio streams must not be negative")
	case c.Publishers < 0:
		return errors.New("publishers must not be negative")
	case c.Presenters < 0 || c.Speakers < 0:
		return errors.New("presenters and speakers must not be negative")
	case c.Scenario == AllHands && c.Presenters+c.Speakers > c.Users:
		return fmt.Errorf("%d presenters and %d speakers: more than the %d users", c.Presenters, c.Speakers, c.Users)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("duration %v: want up to %v", c.Duration, MaxDuration)
	case c.JoinRate <= 0:
		return errors.New("join rate must be positive")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want http://host:port", c.URL)
	}
	if c.MetricsURL == "" { // the server's host, its default metrics port
		c.MetricsURL = "http://" + net.JoinHostPort(u.Hostname(), "7889")
	}
	if m, err := url.Parse(c.MetricsURL); err != nil || (m.Scheme != "http" && m.Scheme != "https") || m.Host == "" {
		return fmt.Errorf("metrics url %q: want http://host:port", c.MetricsURL)
	}
	c.MetricsURL = strings.TrimSuffix(c.MetricsURL, "/")
	return nil
}

// runner is one run's state.
type runner struct {
	cfg   Config
	wsURL string
	api   *webrtc.API
	hc    *http.Client
	feeds *feeds
	mics  *openMics // allhands
	// speech is the allhands speakers' schedule, nil in the other scenarios: with it, a listener need not
	// receive the audio of those not speaking.
	speech *schedule
	users  []*user
	start  time.Time

	join        histogram
	latency     histogram
	window      atomic.Pointer[histogram] // latency of the current second
	joinedCount atomic.Int64
	joinFails   atomic.Int64
	disconnects atomic.Int64
	packets     atomic.Int64
	expected    atomic.Int64
	bytes       atomic.Int64
	frames      atomic.Int64
	freezes     atomic.Int64

	logMu sync.Mutex
}

func (r *runner) observeLatency(d time.Duration) {
	r.latency.observe(d)
	r.window.Load().observe(d)
}

func (r *runner) log(format string, args ...any) {
	if r.cfg.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.cfg.Log, "\n"+format+"\n", args...)
}

func (r *runner) joinFailed(u *user, err error) {
	r.joinFails.Add(1)
	r.log("%s: join failed: %v", u.identity, err)
}

// token mints a token with the secret, or asks a dev-mode server for one.
func (r *runner) token(ctx context.Context, room, identity string) (string, error) {
	if r.cfg.Secret != "" {
		return signaling.MintToken([]byte(r.cfg.Secret), signaling.Claims{Room: room, Identity: identity, Name: identity,
			Publish: true, Subscribe: true}, r.cfg.Duration+time.Hour)
	}
	q := url.Values{"room": {room}, "name": {identity}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.URL, "/")+"/token?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", errors.New("the server is not in dev mode: give its secret (-secret or SFU_SECRET)")
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil || body.Token == "" {
		return "", fmt.Errorf("dev token: %s: %v", resp.Status, err)
	}
	return body.Token, nil
}

// plan lays out the users: their rooms, who publishes, and when each joins.
func (r *runner) plan() {
	c := r.cfg
	step := time.Duration(float64(time.Second) / c.JoinRate)
	if c.Scenario == Ramp { // joins spread over the whole run
		step = c.Duration / time.Duration(c.Users)
	}
	for i := 0; i < c.Users; i++ {
		u := &user{run: r, streams: map[string]*stream{}, joinAt: time.Duration(i) * step, ready: make(chan struct{})}
		switch c.Scenario {
		case Webinar:
			u.room = "webinar"
			u.publisher = i == 0
			u.identity = fmt.Sprintf("viewer-%04d", i)
			if i == 0 {
				u.identity = "presenter"
			}
		case AllHands:
			u.room = "allhands"
			switch {
			case i < c.Presenters:
				u.publisher, u.identity = true, fmt.Sprintf("presenter-%02d", i)
			case i < c.Presenters+c.Speakers:
				u.openMic, u.identity = true, fmt.Sprintf("speaker-%03d", i-c.Presenters)
			default:
				u.identity = fmt.Sprintf("listener-%04d", i)
			}
		default:
			room := i % c.Rooms
			u.room = fmt.Sprintf("room-%03d", room)
			u.publisher = i/c.Rooms < c.Publishers
			u.identity = fmt.Sprintf("user-%04d", i)
		}
		r.users = append(r.users, u)
	}
	// Publishers join first in each room so that the others' join time includes receiving video, then the open
	// microphones, then the listeners.
	if c.Scenario != Ramp {
		k := 0
		for _, rank := range []int{0, 1, 2} {
			for _, u := range r.users {
				if u.joinRank() == rank {
					u.joinAt = time.Duration(k) * step
					k++
				}
			}
		}
	}
}

// startSpeech draws the speakers' schedule for a run of length total and starts their open microphones, which
// send until ctx ends.
func (r *runner) startSpeech(ctx context.Context, wg *sync.WaitGroup, total time.Duration) {
	r.speech = newSchedule(r.speakers(), total+turnLen, speechSeed)
	r.mics = &openMics{sched: r.speech, start: r.start, sent: &r.feeds.sent}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.mics.run(ctx)
	}()
}

// joinRank orders the joins: publishers, open microphones, listeners.
func (u *user) joinRank() int {
	switch {
	case u.publisher:
		return 0
	case u.openMic:
		return 1
	}
	return 2
}

// speakers are the identities of the open microphones.
func (r *runner) speakers() []string {
	var ids []string
	for _, u := range r.users {
		if u.openMic {
			ids = append(ids, u.identity)
		}
	}
	return ids
}

// Run runs the load test until it ends or ctx is cancelled (then the report is partial).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	switch cfg.Scenario {
	case Webinar:
		cfg.Rooms, cfg.Publishers = 1, 1
	case AllHands:
		cfg.Rooms = 1
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Each connection gets its own loopback socket: the SFU sends everything from one port, so connections
	// sharing a socket could not be told apart by address.
	api, err := client.NewAPI([]net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	f, err := newFeeds(cfg.IVF, cfg.Ogg)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, wsURL: client.WSURL(cfg.URL), api: api, feeds: f,
		hc: &http.Client{Timeout: 10 * time.Second}}
	r.window.Store(&histogram{})
	r.plan()

	before, err := scrape(ctx, r.hc, r.cfg.MetricsURL)
	if err != nil {
		return nil, fmt.Errorf("the server does not answer: %w", err)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	lastJoin := r.users[len(r.users)-1].joinAt
	total := lastJoin + cfg.Duration
	measureFrom := lastJoin + joinGrace // the steady window: packets_forwarded_per_s, CPU per packet, RSS slope
	if cfg.Scenario == Ramp {
		total, measureFrom = cfg.Duration, 0
	}
	r.start = time.Now()
	var wg sync.WaitGroup
	if cfg.Scenario == AllHands {
		r.startSpeech(runCtx, &wg, total)
	}
	wg.Add(1)
	go func() { // schedule the joins
		defer wg.Done()
		for _, u := range r.users {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(time.Until(r.start.Add(u.joinAt))):
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				u.join(runCtx)
			}()
		}
	}()

	rep := &Report{Scenario: cfg.Scenario, URL: cfg.URL, Users: cfg.Users, Rooms: cfg.Rooms, Publishers: r.publishers(),
		Speakers: len(r.speakers())}
	var good, counted int64
	var audio audioTally
	cpu0 := selfCPU()
	prev := sampleState{at: r.start, cpu: cpu0, server: before}
	fwd := forwardedFrom{at: r.start, count: before.forwarded, serverCPU: before.cpuSeconds, harnessCPU: cpu0, set: measureFrom == 0}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(total)
	defer deadline.Stop()
	rssPeak := before.rssBytes
loop:
	for {
		select {
		case <-ctx.Done():
			rep.Partial = true
			break loop
		case <-deadline.C:
			break loop
		case now := <-tick.C:
			s, st := r.sample(now, prev)
			prev = st
			good += st.good
			counted += st.counted
			audio.add(st.audio)
			if !fwd.set && now.Sub(r.start) >= measureFrom && st.server.ok {
				fwd = forwardedFrom{at: now, count: st.server.forwarded, serverCPU: st.server.cpuSeconds, harnessCPU: st.cpu,
					received: st.packets, set: true}
			}
			rssPeak = max(rssPeak, st.server.rssBytes)
			rep.Timeline = append(rep.Timeline, s)
			if cfg.Progress != nil {
				fmt.Fprint(cfg.Progress, progressLine(s, now.Sub(r.start), total, int(r.joinedCount.Load()), cfg.Users))
			}
		}
	}
	end := time.Now()
	elapsed := end.Sub(r.start)
	after, _ := scrape(context.Background(), r.hc, r.cfg.MetricsURL)
	harnessCPU := selfCPU()
	stop()
	wg.Wait()
	f.wait()
	if cfg.Progress != nil {
		fmt.Fprintln(cfg.Progress)
	}

	rep.DurationS = elapsed.Seconds()
	rep.Joined = int(r.joinedCount.Load())
	rep.JoinFailed = int(r.joinFails.Load())
	rep.Disconnects = int(r.disconnects.Load())
	rep.UserSeconds = counted
	if counted > 0 {
		rep.Stability = float64(good) / float64(counted)
	}
	rep.AudioStreamsMax, rep.AudioStreamsMean, rep.SpeakerPacketsRecv = audio.max, audio.mean(), audio.speakerPackets
	rep.JoinMS = r.join.quantiles()
	rep.LatencyMS = r.latency.quantiles()
	rep.SFULatencyMS = histogramQuantiles(before.latency, after.latency)
	if exp := r.expected.Load(); exp > 0 {
		rep.Loss = max(0, 1-float64(r.packets.Load())/float64(exp))
	}
	rep.Freezes = r.freezes.Load()
	rep.FramesRecv = r.frames.Load()
	rep.PacketsRecv = r.packets.Load()
	rep.RecvMbps = float64(r.bytes.Load()) * 8 / elapsed.Seconds() / 1e6
	rep.SentMbps = float64(f.sent.Load()) * 8 / elapsed.Seconds() / 1e6
	if !fwd.set { // stopped before the steady window: the whole run
		fwd = forwardedFrom{at: r.start, count: before.forwarded, serverCPU: before.cpuSeconds, harnessCPU: cpu0}
	}
	if after.ok {
		rep.PacketsForwarded = int64(after.forwarded - before.forwarded)
		if n := after.forwarded - fwd.count; n > 0 {
			rep.ServerUSPerPacket = (after.cpuSeconds - fwd.serverCPU) * 1e6 / n
		}
		rep.KeyframeRequests = int64(after.plis - before.plis)
		if d := end.Sub(fwd.at).Seconds(); d > 0 {
			rep.PacketsForwardedPerS = (after.forwarded - fwd.count) / d
		}
		from := fwd.at.Sub(r.start).Seconds()
		rep.SFURSSSlopeMBPerMin = slope(rep.Timeline, from, func(s Sample) float64 { return s.SFURSSMB })
		rep.SFUGoroutinesSlopePerMin = slope(rep.Timeline, from, func(s Sample) float64 { return s.SFUGoroutines })
		rep.SFUGoroutines = after.goroutines
		rep.SFUCPUCores = (after.cpuSeconds - before.cpuSeconds) / elapsed.Seconds()
		rep.SFURSSMB = after.rssBytes / 1e6
		rep.SFURSSPeakMB = max(rssPeak, after.rssBytes) / 1e6
	}
	rep.HarnessCPUCores = (harnessCPU - cpu0).Seconds() / elapsed.Seconds()
	if n := rep.PacketsRecv - fwd.received; n > 0 {
		rep.HarnessUSPerPacket = (harnessCPU - fwd.harnessCPU).Seconds() * 1e6 / float64(n)
	}
	rep.HarnessSaturated = rep.HarnessCPUCores >= 0.8*float64(runtime.NumCPU())
	return rep, nil
}

func (r *runner) publishers() int {
	n := 0
	for _, u := range r.users {
		if u.publisher {
			n++
		}
	}
	return n
}

// forwardedFrom is the server's count of packets forwarded at the start of the measured window.
// forwardedFrom is the start of the steady window: after the last join and its grace (for a ramp, or a run
// stopped before then, the start of the run), with the counters there.
type forwardedFrom struct {
	at         time.Time
	count      float64       // server: packets forwarded
	serverCPU  float64       // server: CPU seconds
	harnessCPU time.Duration // harness: CPU time
	received   int64         // harness: packets received
	set        bool
}

// slope is the least-squares slope of a figure of the samples from `from` seconds on, per minute (0 with fewer
// than 10 samples, or where the figure is 0: not scraped): flat after warm-up is near 0.
func slope(timeline []Sample, from float64, figure func(Sample) float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range timeline {
		y := figure(s)
		if s.T < from || y <= 0 {
			continue
		}
		x := s.T / 60
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	if n < 10 || n*sxx-sx*sx == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// sampleState carries what a sample needs from the previous one, and a second's counts.
type sampleState struct {
	at             time.Time
	cpu            time.Duration
	server         serverFigures
	bytes, packets int64
	sent           int64
	expected       int64
	freezes        int64
	good, counted  int64
	audio          audioTally
}

// sample measures one second.
func (r *runner) sample(now time.Time, prev sampleState) (Sample, sampleState) {
	st := sampleState{at: now, cpu: selfCPU(), bytes: r.bytes.Load(), packets: r.packets.Load(),
		expected: r.expected.Load(), freezes: r.freezes.Load(), sent: r.feeds.sent.Load()}
	dt := now.Sub(prev.at).Seconds()
	s := Sample{T: now.Sub(r.start).Seconds()}
	stableUsers, countedUsers := 0, 0
	from, to := prev.at.Sub(r.start), now.Sub(r.start)
	for _, u := range r.users {
		if to < u.joinAt+joinGrace {
			continue
		}
		countedUsers++
		if !u.connected() {
			continue
		}
		s.Connected++
		f := u.second(r.speech, r.cfg.MaxAudioStreams, from, to, now)
		if f.good {
			stableUsers++
		}
		if u.listener() {
			st.audio.listened(f)
		}
	}
	st.good, st.counted = int64(stableUsers), int64(countedUsers)
	s.AudioStreamsMax, s.AudioStreams = st.audio.max, st.audio.mean()
	if countedUsers > 0 {
		s.Stable = float64(stableUsers) / float64(countedUsers)
	} else {
		s.Stable = 1
	}
	s.RecvMbps = float64(st.bytes-prev.bytes) * 8 / dt / 1e6
	s.SentMbps = float64(st.sent-prev.sent) * 8 / dt / 1e6
	if exp := st.expected - prev.expected; exp > 0 {
		s.Loss = max(0, 1-float64(st.packets-prev.packets)/float64(exp))
	}
	s.Freezes = st.freezes - prev.freezes
	w := r.window.Swap(&histogram{})
	q := w.quantiles()
	s.LatencyP50, s.LatencyP99 = q.P50, q.P99
	s.HarnessCPU = (st.cpu - prev.cpu).Seconds() / dt
	if srv, err := scrape(context.Background(), r.hc, r.cfg.MetricsURL); err == nil && srv.ok {
		st.server = srv
		if prev.server.ok {
			s.SFUCPU = (srv.cpuSeconds - prev.server.cpuSeconds) / dt
			s.ForwardedPerS = (srv.forwarded - prev.server.forwarded) / dt
		}
		s.SFURSSMB = srv.rssBytes / 1e6
		s.SFUGoroutines = srv.goroutines
	} else {
		st.server = prev.server
	}
	return s, st
}
