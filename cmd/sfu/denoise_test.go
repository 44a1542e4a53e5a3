package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
	"github.com/edge-sfu/sfu/media/denoise"
	"github.com/edge-sfu/sfu/media/opus"
	"github.com/edge-sfu/sfu/signaling/client"
)

// audioRecorder keeps the audio packets a subscriber receives, by publisher.
type audioRecorder struct {
	mu   sync.Mutex
	pkts map[string][]rtp.Packet
}

func (ar *audioRecorder) packets(pid string) []rtp.Packet {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	return append([]rtp.Packet(nil), ar.pkts[pid]...)
}

// reset forgets what was recorded so far.
func (ar *audioRecorder) reset() {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	ar.pkts = map[string][]rtp.Packet{}
}

// joinRecording joins a subscriber that records every audio packet it receives.
func joinRecording(t *testing.T, ctx context.Context, n *node, room string) *audioRecorder {
	t.Helper()
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	ar := &audioRecorder{pkts: map[string][]rtp.Packet{}}
	c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, room, "listener", false, true), client.Options{
		API: api,
		OnTrack: func(pid string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if track.Kind() != webrtc.RTPCodecTypeAudio {
				return
			}
			for {
				pkt, _, err := track.ReadRTP()
				if err != nil {
					return
				}
				pkt.Payload = append([]byte(nil), pkt.Payload...)
				ar.mu.Lock()
				ar.pkts[pid] = append(ar.pkts[pid], *pkt)
				ar.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return ar
}

// encodeLoop encodes pcm as 20 ms Opus packets with libopus, as a browser would send it.
func encodeLoop(t *testing.T, pcm []int16) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	buf := make([]byte, 1500)
	for off := 0; off+960 <= len(pcm); off += 960 {
		n, err := enc.Encode(pcm[off:off+960], buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	return out
}

// publishLoop joins a publisher that asks for denoise (engine "" leaves it off) and sends frames in a loop, in
// real time, until ctx ends. It returns once the server has said which processors run on the track.
func publishLoop(t *testing.T, ctx context.Context, n *node, m *mediaRun, room, identity, engine string, frames [][]byte) string {
	t.Helper()
	tc := joinClient(t, ctx, n, room, identity)
	if engine != "" {
		if err := tc.Send(map[string]any{"type": "denoise", "enabled": true, "engine": engine}); err != nil {
			t.Fatal(err)
		}
	}
	publishOpus(t, m, tc, frames, 0)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if engine != "" {
		msg, err := client.WaitFor(pctx, tc.events, func(m client.Message) bool { return m.Type == "audio_processing" || m.Type == "error" })
		if err != nil {
			t.Fatalf("%s: no audio_processing answer: %v", identity, err)
		}
		if msg.Type == "error" || msg.Error != "" || len(msg.Processors) != 1 || msg.Processors[0] != engine {
			t.Fatalf("%s: denoise with %s: %+v", identity, engine, msg)
		}
	}
	return tc.ID()
}

// decodeTimeline decodes received packets onto a timeline by their RTP timestamps (48 kHz), and checks that
// consecutive packets step by 960 samples.
func decodeTimeline(t *testing.T, pkts []rtp.Packet) []int16 {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkts) == 0 {
		t.Fatal("no packets")
	}
	ts0 := pkts[0].Timestamp
	last := pkts[len(pkts)-1].Timestamp - ts0
	pcm := make([]int16, int(last)+960)
	buf := make([]int16, 5760)
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber == pkts[i-1].SequenceNumber+1 && p.Timestamp-pkts[i-1].Timestamp != 960 {
			t.Fatalf("packet %d: timestamp stepped by %d, want 960", i, p.Timestamp-pkts[i-1].Timestamp)
		}
		n, err := dec.Decode(p.Payload, buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		copy(pcm[p.Timestamp-ts0:], buf[:n])
	}
	return pcm
}

func rnnoiseOption(t *testing.T) func(*config) {
	dir := audiotest.RNNoiseDir(t)
	if _, err := os.Stat(filepath.Join(dir, "rnnoise.wasm")); err != nil {
		t.Fatalf("RNNoise is not installed (%v): run make deps", err)
	}
	return func(c *config) {
		c.RNNoiseDir = dir
		c.AudioProcessors = []string{denoise.NameRNNoise}
	}
}

// TestDenoiseEndToEnd: three publishers send the same noisy speech as Opus, one with RNNoise on, one with
// speexdsp, one without. A subscriber decodes what it receives: the denoised ones have at least 10 dB less noise
// in the pauses and keep the speech within 3 dB; the untouched one does not.
func TestDenoiseEndToEnd(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo: no Opus encoder")
	}
	scene := audiotest.NewScene([][]int16{
		audiotest.Speech(t, "hello world, the meeting starts now"),
		audiotest.Speech(t, "please mute your microphone when you are not speaking"),
	}, 10, 7)
	scene.Clean = scene.Clean[:len(scene.Clean)/960*960]
	scene.Noisy = scene.Noisy[:len(scene.Clean)]
	frames := encodeLoop(t, scene.Noisy)
	loop := time.Duration(len(frames)) * 20 * time.Millisecond

	n := startTestNode(t, rnnoiseOption(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*loop+60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	rec := joinRecording(t, ctx, n, "denoise")
	ids := map[string]string{}
	for _, engine := range []string{denoise.NameRNNoise, denoise.NameSpeex, ""} {
		name := engine
		if name == "" {
			name = "off"
		}
		ids[name] = publishLoop(t, ctx, n, m, "denoise", "pub-"+name, engine, frames)
	}
	// Let every denoiser hear the noise for a while, then record one loop and a second more.
	time.Sleep(2 * time.Second)
	rec.reset()
	select {
	case <-time.After(loop + time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	for _, name := range []string{denoise.NameRNNoise, denoise.NameSpeex, "off"} {
		pcm := decodeTimeline(t, rec.packets(ids[name]))
		if len(pcm) < len(scene.Clean) {
			t.Fatalf("%s: received %v of audio, want at least %v", name, time.Duration(len(pcm))*time.Second/audio.SampleRate, loop)
		}
		phase := audiotest.LoopPhase(scene.Clean, pcm)
		r := audiotest.Measure(scene.Rotate(phase), pcm[:len(scene.Clean)], 0)
		t.Logf("%s through the SFU: noise %.1f dB lower in the pauses, speech energy %+.1f dB", name, r.NoiseReduction, r.SpeechChange)
		if name == "off" {
			if r.NoiseReduction > 5 {
				t.Errorf("without denoise the noise fell by %.1f dB: the measure does not measure denoising", r.NoiseReduction)
			}
			continue
		}
		if r.NoiseReduction < 10 {
			t.Errorf("%s: noise reduced by %.1f dB, want at least 10", name, r.NoiseReduction)
		}
		if r.SpeechChange < -3 || r.SpeechChange > 3 {
			t.Errorf("%s: speech energy changed by %+.1f dB, want within 3", name, r.SpeechChange)
		}
	}
	text := scrape(t, n)
	count := metricValue(text, "sfu_audio_processing_seconds_count")
	sum := metricValue(text, "sfu_audio_processing_seconds_sum")
	if count <= 0 {
		t.Fatalf("sfu_audio_processing_seconds_count = %v", count)
	}
	t.Logf("audio processing: %.0f packets, mean %.2f ms from arrival to send", count, 1000*sum/count)
}

// publishTone publishes a microphone track of Opus packets (a 440 Hz tone) until the media run stops.
func publishTone(t *testing.T, m *mediaRun, tc *testClient) {
	t.Helper()
	var frames [][]byte
	if opus.EncoderAvailable {
		pcm := make([]int16, 48000)
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/48000))
		}
		frames = encodeLoop(t, pcm)
	} else {
		frames = [][]byte{{0xfc, 0xff, 0xfe}} // a build without cgo has no encoder; any Opus-shaped bytes do
	}
	publishOpus(t, m, tc, frames, 0)
}

// waitMessage waits for the first message of one of the types.
func waitMessage(t *testing.T, ctx context.Context, tc *testClient, types ...string) client.Message {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool { return slices.Contains(types, m.Type) })
	if err != nil {
		t.Fatalf("waiting for %v: %v", types, err)
	}
	return msg
}

// TestDenoiseSettings: a room configured to denoise does so without being asked and a participant can turn it
// off; an end-to-end encrypted room refuses denoise; an unknown engine is a bad request; a configuration that
// asks to denoise an encrypted room does not start.
func TestDenoiseSettings(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo: no Opus encoder")
	}
	rc := filepath.Join(t.TempDir(), "rooms.json")
	if err := os.WriteFile(rc, []byte(`{"rooms": {"quiet": {"denoise": true, "processors": ["speex"]}, "secret": {"e2ee": true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, rnnoiseOption(t), func(c *config) { c.RoomConfig = rc })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)

	a := joinClient(t, ctx, n, "quiet", "alice")
	publishTone(t, m, a)
	if msg := waitMessage(t, ctx, a, "audio_processing", "error"); msg.Type != "audio_processing" || !slices.Equal(msg.Processors, []string{"speex"}) {
		t.Fatalf("in a room that denoises with speex: %+v", msg)
	}
	if err := a.Send(map[string]any{"type": "denoise", "enabled": false}); err != nil {
		t.Fatal(err)
	}
	if msg := waitMessage(t, ctx, a, "audio_processing", "error"); msg.Type != "audio_processing" || len(msg.Processors) != 0 {
		t.Fatalf("after turning denoise off: %+v", msg)
	}

	b := joinE2EE(t, ctx, n, "secret", "bob", "pk-bob")
	if err := b.Send(map[string]any{"type": "denoise", "enabled": true}); err != nil {
		t.Fatal(err)
	}
	if msg := waitMessage(t, ctx, b, "error"); msg.Code != "e2ee" || msg.Ref != "denoise" {
		t.Fatalf("denoise in an encrypted room: %+v", msg)
	} else {
		t.Log(msg.Message)
	}

	if err := a.Send(map[string]any{"type": "denoise", "enabled": true, "engine": "magic"}); err != nil {
		t.Fatal(err)
	}
	if msg := waitMessage(t, ctx, a, "error"); msg.Code != "bad_request" {
		t.Fatalf("unknown engine: %+v", msg)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rooms": {"x": {"e2ee": true, "denoise": true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", Secret: testSecret, RoomConfig: bad}
	if nd, err := startNode(cfg); err == nil {
		_ = nd.shutdown(ctx)
		t.Fatal("a node started with denoise on in an encrypted room")
	} else {
		t.Log(err)
	}
}

// TestDenoiseWithoutCgo: a server built without cgo runs and forwards audio, and asking it to denoise, or for
// speex, gets a clear "unavailable" error. make test runs it with CGO_ENABLED=0.
func TestDenoiseWithoutCgo(t *testing.T) {
	if opus.EncoderAvailable {
		t.Skip("this build has cgo; make test runs this test again with CGO_ENABLED=0")
	}
	n := startTestNode(t, rnnoiseOption(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	a := joinClient(t, ctx, n, "nocgo", "alice")
	b := joinClient(t, ctx, n, "nocgo", "bob")
	publishTone(t, m, a)
	eventually(t, 10*time.Second, "bob hears alice", func() bool { return b.stats(a.ID(), "audio").packets.Load() >= 20 })
	for _, engine := range []string{"", denoise.NameSpeex} {
		if err := a.Send(map[string]any{"type": "denoise", "enabled": true, "engine": engine}); err != nil {
			t.Fatal(err)
		}
		msg := waitMessage(t, ctx, a, "error")
		if msg.Code != "unavailable" || !strings.Contains(msg.Message, "cgo") {
			t.Fatalf("denoise (engine %q) without cgo: %+v", engine, msg)
		}
		t.Log(msg.Message)
	}
}
