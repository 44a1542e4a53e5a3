package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
)

// readyz returns /readyz's status and body.
func readyz(t *testing.T, n *node) (int, string) {
	t.Helper()
	resp, err := http.Get(n.baseURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b)
}

// TestReadyz: /readyz answers 200 while the node takes new participants and 503 with the reason while its
// cluster store does not answer or it drains; /healthz answers 200 throughout.
func TestReadyz(t *testing.T) {
	if code, body := readyz(t, startTestNode(t)); code != http.StatusOK {
		t.Fatalf("a single node: %d %q, want 200", code, body)
	}
	url := clustertest.StartRedis(t)
	n := clusterNode(t, url, "hk", "hk-ready", 10)
	if code, body := readyz(t, n); code != http.StatusOK {
		t.Fatalf("a clustered node: %d %q, want 200", code, body)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "6000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "/readyz says 503 while Redis does not answer", func() bool {
		code, body := readyz(t, n)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "Redis")
	})
	if resp, err := http.Get(n.baseURL() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while Redis is paused: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	eventually(t, 10*time.Second, "/readyz says 200 again once Redis answers", func() bool {
		code, _ := readyz(t, n)
		return code == http.StatusOK
	})
	if _, err := n.place.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(t, n); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("a draining node: %d %q, want 503 draining", code, body)
	}
}
