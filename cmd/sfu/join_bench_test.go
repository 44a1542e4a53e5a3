package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
)

// BenchmarkJoin measures join time as a user feels it: from opening the WebSocket to the first packet of a
// publisher's video (which starts on a keyframe), for a subscriber joining a room where one participant
// publishes. It reports the median and 95th percentile of joins spaced 600 ms apart.
func BenchmarkJoin(b *testing.B) {
	n := startTestNode(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	api, err := loopbackAPI()
	if err != nil {
		b.Fatal(err)
	}
	pubTok := token(b, "bench", "publisher", true, true)
	tc := &testClient{received: map[string]*recvStats{}}
	pub, err := client.Dial(ctx, client.WSURL(n.baseURL()), pubTok, client.Options{API: api,
		OnKeyframeRequest: func(webrtc.TrackLocal) { tc.wantKey.Store(true) }})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	tc.Client = pub
	var senders sync.WaitGroup
	defer senders.Wait()
	defer cancel()
	publishSynthetic(b, ctx, tc, &senders)

	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first := make(chan struct{})
		var once sync.Once
		start := time.Now()
		c, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(b, "bench", "viewer", false, true), client.Options{
			API: api,
			OnTrack: func(_ string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				buf := make([]byte, 1500)
				for {
					if _, _, err := track.Read(buf); err != nil {
						return
					}
					if track.Kind() == webrtc.RTPCodecTypeVideo {
						once.Do(func() { close(first) })
					}
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-first:
			times = append(times, time.Since(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no video within 10 s of joining")
		}
		c.Leave()
		// Keyframe requests to a publisher are throttled to one per 500 ms; a join right after another shares
		// the later keyframe. Space the joins so each one measures a join on its own.
		b.StopTimer()
		time.Sleep(600 * time.Millisecond)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[(len(times)*95)/100].Microseconds())/1000, "p95-ms")
}
