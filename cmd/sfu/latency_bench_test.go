package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkSFULatency measures the latency the SFU adds under load: two publishers (VP8 at about 700 kbps and
// Opus) and ten subscribers in one room, every participant a Pion client in this process, on loopback. Each
// iteration is one second of that load. It reports, from the node's own histogram, the time from a packet's
// arrival (decrypted) to the send of its last copy (p50, p99), and, from the stamps in the frames, the time
// from a publisher's send to a subscriber's receipt (p50, p99), which adds two loopback hops, two SRTP passes and
// the clients' own scheduling on this 2-core machine.
func BenchmarkSFULatency(b *testing.B) {
	n := startTestNode(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api, err := loopbackAPI()
	if err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	var e2e []time.Duration
	record := func(track *webrtc.TrackRemote) {
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			payload := pkt.Payload
			if track.Kind() == webrtc.RTPCodecTypeVideo {
				if d, err := codec.ParseVP8(payload); err != nil || !d.Start {
					continue
				}
			}
			if st, ok := synth.FindStamp(payload); ok {
				mu.Lock()
				e2e = append(e2e, time.Since(st.Sent))
				mu.Unlock()
			}
		}
	}
	for i := 0; i < 10; i++ {
		c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(b, "load", "viewer-"+string(rune('a'+i)), false, true),
			client.Options{API: api, OnTrack: func(_ string, t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { record(t) }})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	m := &mediaRun{}
	m.ctx, m.cancel = context.WithCancel(ctx)
	defer m.stop()
	for i := 0; i < 2; i++ {
		tc := &testClient{received: map[string]*recvStats{}}
		c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(b, "load", "speaker-"+string(rune('a'+i)), true, false),
			client.Options{API: api, OnKeyframeRequest: func(webrtc.TrackLocal) { tc.wantKey.Store(true) }})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		tc.Client = c
		publishSynthetic(b, m.ctx, tc, &m.wg)
	}
	time.Sleep(2 * time.Second) // connections up, first keyframes through
	mu.Lock()
	e2e = e2e[:0]
	mu.Unlock()
	before := histogram(b, n)

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		time.Sleep(time.Second)
	}
	b.StopTimer()

	after := histogram(b, n)
	mu.Lock()
	defer mu.Unlock()
	if len(e2e) == 0 {
		b.Fatal("no stamped packet arrived")
	}
	slices.Sort(e2e)
	q := func(p float64) float64 { return float64(e2e[int(p*float64(len(e2e)-1))].Microseconds()) / 1000 }
	b.ReportMetric(quantile(before, after, 0.5)*1000, "sfu-p50-ms")
	b.ReportMetric(quantile(before, after, 0.99)*1000, "sfu-p99-ms")
	b.ReportMetric(q(0.5), "e2e-p50-ms")
	b.ReportMetric(q(0.99), "e2e-p99-ms")
	b.ReportMetric(float64(len(e2e))/b.Elapsed().Seconds(), "stamps/s")
}

// histogram reads the node's forwarding-latency histogram.
func histogram(b *testing.B, n *node) *dto.Histogram {
	b.Helper()
	var m dto.Metric
	if err := n.sfu.LatencyHistogram().Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.Histogram
}

// quantile estimates a quantile of the observations made between two readings of a histogram, interpolating
// linearly inside the bucket.
func quantile(before, after *dto.Histogram, q float64) float64 {
	total := float64(after.GetSampleCount() - before.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	want := q * total
	lower := 0.0
	for i, bk := range after.Bucket {
		count := float64(bk.GetCumulativeCount() - before.Bucket[i].GetCumulativeCount())
		if count >= want {
			prev := 0.0
			if i > 0 {
				prev = float64(after.Bucket[i-1].GetCumulativeCount() - before.Bucket[i-1].GetCumulativeCount())
			}
			frac := 0.0
			if count > prev {
				frac = (want - prev) / (count - prev)
			}
			return lower + frac*(bk.GetUpperBound()-lower)
		}
		lower = bk.GetUpperBound()
	}
	return lower
}
