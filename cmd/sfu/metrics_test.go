package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsListener: /metrics is served on the metrics listener only, not on the public one, and by default
// carries no room name or participant id; -metrics-detail adds them.
func TestMetricsListener(t *testing.T) {
	for _, detail := range []bool{false, true} {
		n := startTestNode(t, func(c *config) { c.MetricsDetail = detail })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		media := startMedia(t, ctx)
		a := joinClient(t, ctx, n, "board-meeting-7", "alice")
		b := joinClient(t, ctx, n, "board-meeting-7", "bob")
		media.publish(t, a)
		eventually(t, 10*time.Second, "bob receives alice", func() bool { return receivesFrom(b, a.ID(), 10) })

		resp, err := http.Get(n.baseURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the public listener serves /metrics")
		}
		text := scrape(t, n)
		if metricValue(text, "sfu_participants") != 2 {
			t.Errorf("detail %v: sfu_participants is not 2 in:\n%s", detail, text)
		}
		leaks := strings.Contains(text, "board-meeting-7") || strings.Contains(text, b.ID())
		if leaks != detail {
			t.Errorf("detail %v: room name or participant id in /metrics: %v", detail, leaks)
		}
		if !detail && metricValue(text, "sfu_subscriber_packets_sent_total") <= 0 {
			t.Error("the summed subscriber figures are missing")
		}
		cancel()
	}
}
