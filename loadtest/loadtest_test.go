package loadtest

import (
	"context"
	"encoding/binary"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startServer runs an SFU in dev mode on loopback, as `make run` does but on free ports, with its metrics on a
// listener of their own; it returns the two base URLs.
func startServer(t *testing.T) (string, string) {
	t.Helper()
	s, err := sfu.New(sfu.Config{Net: transport.NetConfig{UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s.Collector(false))
	sig := signaling.NewServer(s, signaling.Config{Secret: []byte("loadtest-secret"), Dev: true, MaxUnjoinedPerIP: -1})
	hs := httptest.NewServer(sig)
	ms := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sig.Shutdown(ctx)
		hs.Close()
		ms.Close()
		_ = s.Close()
	})
	return hs.URL, ms.URL
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// TestSmallMeeting runs 20 users in 4 rooms (2 publishers each) for 10 s against a real server and checks that
// the figures come from what was received: everyone joined, frames arrived, latencies are positive and finite,
// and stability was computed from user-seconds.
func TestSmallMeeting(t *testing.T) {
	url, metrics := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{URL: url, MetricsURL: metrics, Users: 20, Rooms: 4, Publishers: 2, Duration: 10 * time.Second, JoinRate: 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: stability %.4f over %d user-seconds, join %v, latency %v, sfu %v, loss %.4f, freezes %d, recv %.1f Mbit/s, sfu %.2f cores %.0f MB, harness %.2f cores",
		rep.Stability, rep.UserSeconds, rep.JoinMS, rep.LatencyMS, rep.SFULatencyMS, rep.Loss, rep.Freezes, rep.RecvMbps,
		rep.SFUCPUCores, rep.SFURSSMB, rep.HarnessCPUCores)
	if rep.Joined != 20 || rep.JoinFailed != 0 {
		t.Errorf("joined %d, failed %d; want all 20", rep.Joined, rep.JoinFailed)
	}
	if rep.Publishers != 8 {
		t.Errorf("publishers %d, want 8 (2 in each of 4 rooms)", rep.Publishers)
	}
	// Each of 20 users receives 2 publishers' video (publishers 1) for about 10 s at 30 fps.
	if rep.FramesRecv < 20*30*5 {
		t.Errorf("frames received %d: too few for 20 users watching for 10 s", rep.FramesRecv)
	}
	for name, q := range map[string]Quantiles{"join": rep.JoinMS, "latency": rep.LatencyMS, "sfu latency": rep.SFULatencyMS} {
		if q.Count == 0 || !(q.P50 > 0) || !finite(q.P99) || q.P50 > q.P99 || q.P99 > q.Max {
			t.Errorf("%s quantiles %+v: want samples, 0 < p50 <= p99 <= max, finite", name, q)
		}
	}
	if rep.JoinMS.Count < 18 {
		t.Errorf("join samples %d, want one per user that receives video", rep.JoinMS.Count)
	}
	if rep.UserSeconds < 20*8 || rep.Stability <= 0 || rep.Stability > 1 {
		t.Errorf("stability %.4f over %d user-seconds: want a fraction of at least 160 user-seconds", rep.Stability, rep.UserSeconds)
	}
	if rep.Loss < 0 || rep.Loss > 0.05 || rep.PacketsRecv == 0 {
		t.Errorf("loss %.4f of %d packets: want some packets and loss under 5 %% on loopback", rep.Loss, rep.PacketsRecv)
	}
	if rep.SFUCPUCores <= 0 || rep.SFURSSMB <= 0 || rep.HarnessCPUCores <= 0 {
		t.Errorf("cpu/memory figures: sfu %.3f cores %.1f MB, harness %.3f cores; want all positive", rep.SFUCPUCores, rep.SFURSSMB, rep.HarnessCPUCores)
	}
	t.Logf("cpu per packet: server %.2f µs over %d forwarded, harness %.2f µs; %d keyframe requests", rep.ServerUSPerPacket,
		rep.PacketsForwarded, rep.HarnessUSPerPacket, rep.KeyframeRequests)
	// CPU per packet, the way issue reports and DESIGN.md count it: the server's CPU over the packets it forwarded,
	// the harness's over those it received. A busy loopback run costs microseconds, not nanoseconds or seconds.
	if rep.PacketsForwarded <= 0 || rep.ServerUSPerPacket < 0.5 || rep.ServerUSPerPacket > 10_000 ||
		rep.HarnessUSPerPacket < 0.5 || rep.HarnessUSPerPacket > 10_000 {
		t.Errorf("per packet: server %.2f µs over %d forwarded, harness %.2f µs; want both counted, in microseconds",
			rep.ServerUSPerPacket, rep.PacketsForwarded, rep.HarnessUSPerPacket)
	}
	if len(rep.Timeline) < 9 {
		t.Errorf("timeline has %d samples, want about one per second", len(rep.Timeline))
	}
	if rep.RecvMbps <= 0 || rep.SentMbps <= 0 {
		t.Errorf("bitrates: received %.2f, sent %.2f Mbit/s", rep.RecvMbps, rep.SentMbps)
	}
}

// writeIVF writes frames as a VP8 IVF file (the format ffmpeg writes with -c:v libvpx).
func writeIVF(t *testing.T, path string, frames [][]byte) {
	t.Helper()
	var b []byte
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], "VP80")
	binary.LittleEndian.PutUint16(hdr[12:], 640)
	binary.LittleEndian.PutUint16(hdr[14:], 360)
	binary.LittleEndian.PutUint32(hdr[16:], 30) // timebase 1/30
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
	b = append(b, hdr...)
	for i, f := range frames {
		fh := make([]byte, 12)
		binary.LittleEndian.PutUint32(fh, uint32(len(f)))
		binary.LittleEndian.PutUint64(fh[4:], uint64(i))
		b = append(b, fh...)
		b = append(b, f...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestIVFPlayback: with -ivf the publishers play the file's frames (one layer) and subscribers receive them.
func TestIVFPlayback(t *testing.T) {
	var frames [][]byte
	for i := 0; i < 60; i++ {
		frames = append(frames, synth.VP8Frame(nil, 1500, i%30 == 0, 640, 360, synth.Stamp{Seq: uint32(i)}))
	}
	path := filepath.Join(t.TempDir(), "clip.ivf")
	writeIVF(t, path, frames)
	got, d, err := readIVF(path)
	if err != nil || len(got) != 60 || d != time.Second/30 {
		t.Fatalf("readIVF: %d frames every %v, %v; want 60 every 33ms", len(got), d, err)
	}
	url, metrics := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{URL: url, MetricsURL: metrics, Users: 4, Rooms: 1, Publishers: 1, Duration: 4 * time.Second, IVF: path})
	if err != nil {
		t.Fatal(err)
	}
	// Three subscribers watch the one publisher for about 4 s at 30 fps.
	if rep.Joined != 4 || rep.FramesRecv < 3*30*2 {
		t.Fatalf("joined %d, frames received %d; want 4 and the file's frames at every subscriber", rep.Joined, rep.FramesRecv)
	}
}

// TestAllHands runs a small all-hands (30 users: 2 presenters, 6 open microphones taking turns, 22 listeners)
// against a real server and checks that the listeners hear the speakers and that the audio figures are counted.
func TestAllHands(t *testing.T) {
	url, metrics := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const users, presenters, speakers = 30, 2, 6
	rep, err := Run(ctx, Config{URL: url, MetricsURL: metrics, Scenario: AllHands, Users: users, Presenters: presenters, Speakers: speakers,
		Duration: 12 * time.Second, JoinRate: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: stability %.4f over %d user-seconds, audio streams max %d mean %.2f, %d open-microphone packets, %.0f packets forwarded/s, loss %.4f",
		rep.Stability, rep.UserSeconds, rep.AudioStreamsMax, rep.AudioStreamsMean, rep.SpeakerPacketsRecv,
		rep.PacketsForwardedPerS, rep.Loss)
	if rep.Joined != users || rep.JoinFailed != 0 {
		t.Errorf("joined %d, failed %d; want all %d", rep.Joined, rep.JoinFailed, users)
	}
	if rep.Rooms != 1 || rep.Publishers != presenters || rep.Speakers != speakers {
		t.Errorf("%d rooms, %d publishers, %d speakers; want 1, %d, %d", rep.Rooms, rep.Publishers, rep.Speakers, presenters, speakers)
	}
	listeners := int64(users - presenters - speakers)
	// Each listener hears someone speaking for most of the 12 s, 50 packets a second (at least a second's worth
	// each, however slow the machine).
	if rep.SpeakerPacketsRecv < listeners*50 {
		t.Errorf("the listeners received %d packets of the open microphones: too few", rep.SpeakerPacketsRecv)
	}
	if rep.UserSeconds < users*8 || rep.Stability <= 0 || rep.Stability > 1 {
		t.Errorf("stability %.4f over %d user-seconds: want a fraction of at least %d user-seconds", rep.Stability, rep.UserSeconds, users*8)
	}
	if rep.AudioStreamsMax < 1 || rep.AudioStreamsMax > presenters+speakers {
		t.Errorf("audio streams max %d: want 1 to the %d audio tracks published", rep.AudioStreamsMax, presenters+speakers)
	}
	if !(rep.AudioStreamsMean > 0) || rep.AudioStreamsMean > float64(rep.AudioStreamsMax) {
		t.Errorf("audio streams mean %.2f: want positive, at most the max %d", rep.AudioStreamsMean, rep.AudioStreamsMax)
	}
	if rep.FramesRecv == 0 || rep.JoinMS.Count < int64(users-presenters) {
		t.Errorf("frames received %d, join samples %d: want the presenters' video at everyone", rep.FramesRecv, rep.JoinMS.Count)
	}
	if !(rep.PacketsForwardedPerS > 0) || !finite(rep.PacketsForwardedPerS) {
		t.Errorf("packets forwarded per second %v: want a positive rate", rep.PacketsForwardedPerS)
	}
	var perSecond bool
	for _, s := range rep.Timeline {
		perSecond = perSecond || s.AudioStreamsMax > 0 && s.ForwardedPerS > 0
	}
	if !perSecond {
		t.Error("no second of the timeline has audio streams and packets forwarded")
	}
}

// TestAllHandsConfig: the speakers and presenters must fit in the users.
func TestAllHandsConfig(t *testing.T) {
	for _, c := range []Config{
		{Scenario: AllHands, Users: 10, Rooms: 1},                              // the default 2 + 20
		{Scenario: AllHands, Users: 10, Rooms: 1, Presenters: 5, Speakers: 6},  // 11
		{Scenario: AllHands, Users: 10, Rooms: 1, Presenters: -1, Speakers: 2}, // negative
	} {
		c.URL = "http://127.0.0.1:1"
		c.Defaults()
		if err := c.validate(); err == nil {
			t.Errorf("%d users, %d presenters, %d speakers: accepted", c.Users, c.Presenters, c.Speakers)
		}
	}
	c := Config{URL: "http://127.0.0.1:1", Scenario: AllHands, Users: 22, Rooms: 1}
	c.Defaults()
	if err := c.validate(); err != nil || c.Presenters != 2 || c.Speakers != 20 {
		t.Errorf("22 users: %v, %d presenters, %d speakers; want accepted with 2 and 20", err, c.Presenters, c.Speakers)
	}
}
