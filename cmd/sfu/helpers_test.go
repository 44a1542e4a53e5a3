package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"go.uber.org/zap/zapcore"
)

const testSecret = "test-secret-0123456789"

// startTestNode runs a node on loopback with a free HTTP port and a free media port.
func startTestNode(t testing.TB, options ...func(*config)) *node {
	t.Helper()
	cfg := config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"},
		Secret: testSecret, LogLevel: zapcore.WarnLevel, MetricsAddr: "127.0.0.1:0"}
	for _, o := range options {
		o(&cfg)
	}
	n, err := startNode(cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

func (n *node) baseURL() string { return "http://" + n.addr.String() }

func token(t testing.TB, room, identity string, publish, subscribe bool) string {
	t.Helper()
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: identity,
		Name: "Name of " + identity, Publish: publish, Subscribe: subscribe}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testClient is a Pion participant that counts what it receives, per publisher and kind.
type testClient struct {
	*client.Client
	events  chan client.Message
	wantKey atomic.Bool // the SFU asked for a keyframe

	mu       sync.Mutex
	received map[string]*recvStats // key: publisher id + "/" + kind
}

type recvStats struct {
	packets atomic.Int64
	ended   atomic.Bool
}

var loopbackAPI = sync.OnceValues(func() (*webrtc.API, error) {
	return client.NewAPI([]net.IP{net.IPv4(127, 0, 0, 1)})
})

func joinClient(t *testing.T, ctx context.Context, n *node, room, identity string) *testClient {
	t.Helper()
	return joinClientToken(t, ctx, n, token(t, room, identity, true, true))
}

// joinClientToken joins with the given token.
func joinClientToken(t *testing.T, ctx context.Context, n *node, tok string) *testClient {
	t.Helper()
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	return joinClientAPI(t, ctx, n, tok, api)
}

// joinClientAPI is joinClientToken with the client's peer connections built by api.
// Each option may change the client's options.
func joinClientAPI(t *testing.T, ctx context.Context, n *node, tok string, api *webrtc.API, options ...func(*client.Options)) *testClient {
	t.Helper()
	tc := &testClient{events: make(chan client.Message, 1024), received: map[string]*recvStats{}}
	opts := client.Options{
		API:               api,
		Events:            tc.events,
		OnKeyframeRequest: func(webrtc.TrackLocal) { tc.wantKey.Store(true) },
		OnTrack:           tc.count,
	}
	for _, o := range options {
		o(&opts)
	}
	c, err := client.Dial(ctx, client.WSURL(n.baseURL()), tok, opts)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	tc.Client = c
	t.Cleanup(c.Close)
	return tc
}

// count reads a remote track until it ends, counting its packets.
func (tc *testClient) count(pid string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	st := tc.stats(pid, track.Kind().String())
	buf := make([]byte, 1500)
	for {
		if _, _, err := track.Read(buf); err != nil {
			st.ended.Store(true)
			return
		}
		st.packets.Add(1)
	}
}

func (tc *testClient) stats(pid, kind string) *recvStats {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	k := pid + "/" + kind
	if tc.received[k] == nil {
		tc.received[k] = &recvStats{}
	}
	return tc.received[k]
}

// publishSynthetic publishes a VP8 and an Opus track fed with generated frames until ctx ends.
func publishSynthetic(t testing.TB, ctx context.Context, tc *testClient, wg *sync.WaitGroup) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video-"+tc.ID(), tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio-"+tc.ID(), tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := tc.Publish(pctx, video, audio); err != nil {
		t.Fatalf("publish: %v", err)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		var buf []byte
		for i := uint32(0); ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			key := i%90 == 0 || tc.wantKey.Swap(false) // a keyframe every 3 s, and when asked
			size := 2500
			if key {
				size = 12000
			}
			buf = synth.VP8Frame(buf, size, key, 640, 360, synth.Stamp{Seq: i, Sent: time.Now()})
			if err := video.WriteSample(media.Sample{Data: buf, Duration: time.Second / 30}); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var buf []byte
		for i := uint32(0); ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			buf = synth.OpusFrame(buf, 80, synth.Stamp{Seq: i, Sent: time.Now()})
			if err := audio.WriteSample(media.Sample{Data: buf, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
		}
	}()
}

// eventually polls cond every 50 ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(tc *testClient) string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	s := ""
	for k, v := range tc.received {
		s += fmt.Sprintf("%s=%d(ended=%v) ", k, v.packets.Load(), v.ended.Load())
	}
	return s
}

// mediaRun owns the goroutines that feed synthetic media into published tracks.
type mediaRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startMedia returns a mediaRun that stops, at the latest, when the test ends.
func startMedia(t *testing.T, parent context.Context) *mediaRun {
	m := &mediaRun{}
	m.ctx, m.cancel = context.WithCancel(parent)
	t.Cleanup(m.stop)
	return m
}

// publish publishes a VP8 and an Opus track from tc, fed until stop.
func (m *mediaRun) publish(t *testing.T, tc *testClient) { publishSynthetic(t, m.ctx, tc, &m.wg) }

// stop ends the feeds and waits for them.
func (m *mediaRun) stop() {
	m.cancel()
	m.wg.Wait()
}

// joinPublishing joins each identity to room, publishes from each, and waits until each receives every other.
func joinPublishing(t *testing.T, ctx context.Context, n *node, m *mediaRun, room string, identities ...string) []*testClient {
	t.Helper()
	var cs []*testClient
	for _, id := range identities {
		c := joinClient(t, ctx, n, room, id)
		m.publish(t, c)
		cs = append(cs, c)
	}
	eventually(t, 10*time.Second, "everyone receives everyone's audio and video", func() bool {
		for _, x := range cs {
			for _, y := range cs {
				if x != y && !receivesFrom(x, y.ID(), 20) {
					return false
				}
			}
		}
		return true
	})
	return cs
}

// meeting starts a node and a meeting of identities in room, each publishing audio and video and receiving the
// others (joinPublishing); its context ends with the test, within 60 s.
func meeting(t *testing.T, room string, identities ...string) (*node, context.Context, *mediaRun, []*testClient) {
	t.Helper()
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	m := startMedia(t, ctx)
	return n, ctx, m, joinPublishing(t, ctx, n, m, room, identities...)
}

// scrape returns the node's /metrics text, from its metrics listener.
func scrape(t *testing.T, n *node) string {
	t.Helper()
	if n.metricsAddr == nil {
		t.Fatal("the node serves no metrics")
	}
	resp, err := http.Get("http://" + n.metricsAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %v %v", resp.Status, err)
	}
	return string(b)
}

// metricValue finds the value of the series named exactly (with its labels) in Prometheus text; -1 if absent.
func metricValue(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// publishOpus publishes a microphone track ("mic-" and the client's identity) from tc and sends frames, one
// every 20 ms, plays times over (0: until m stops). The returned channel gets the time each play starts and is
// closed after the last.
func publishOpus(t *testing.T, m *mediaRun, tc *testClient, frames [][]byte, plays int) <-chan time.Time {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"mic-"+tc.Joined.You.Identity, tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	if _, err := tc.Publish(pctx, tr); err != nil {
		t.Fatal(err)
	}
	starts := make(chan time.Time, max(plays, 1))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(starts)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		seq := uint32(0)
		for play := 0; plays == 0 || play < plays; play++ {
			for k, f := range frames {
				select {
				case <-m.ctx.Done():
					return
				case <-tick.C:
				}
				if k == 0 && plays > 0 {
					starts <- time.Now()
				}
				if tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: seq * 960}, Payload: f}) != nil {
					return
				}
				seq++
			}
		}
	}()
	return starts
}

// fetchTranscript downloads the room's transcript with a subscribe token for it: the status and the body.
func fetchTranscript(t *testing.T, ctx context.Context, n *node, room string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.baseURL()+"/transcript/"+room, nil)
	req.Header.Set("Authorization", "Bearer "+token(t, room, "reader", false, true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
