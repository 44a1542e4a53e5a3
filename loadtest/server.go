package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverFigures are what the harness reads from the server's /metrics.
type serverFigures struct {
	cpuSeconds float64 // process_cpu_seconds_total
	rssBytes   float64 // process_resident_memory_bytes
	forwarded  float64 // sfu_packets_forwarded_total
	plis       float64 // sfu_plis_total: keyframe requests sent to publishers
	goroutines float64 // go_goroutines
	// latency is the sfu_forward_latency_seconds histogram: upper bound (seconds) to cumulative count.
	latency map[float64]float64
	ok      bool
}

// scrape reads the server's /metrics. A server without process figures (another platform) gives zeros.
func scrape(ctx context.Context, hc *http.Client, base string) (serverFigures, error) {
	f := serverFigures{latency: map[float64]float64{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return f, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return f, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return f, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "process_cpu_seconds_total":
			f.cpuSeconds = v
		case name == "process_resident_memory_bytes":
			f.rssBytes = v
		case name == "sfu_packets_forwarded_total":
			f.forwarded = v
		case name == "sfu_plis_total":
			f.plis = v
		case name == "go_goroutines":
			f.goroutines = v
		case strings.HasPrefix(name, `sfu_forward_latency_seconds_bucket{le="`):
			le := strings.TrimSuffix(strings.TrimPrefix(name, `sfu_forward_latency_seconds_bucket{le="`), `"}`)
			if b, err := strconv.ParseFloat(le, 64); err == nil {
				f.latency[b] = v
			}
		}
	}
	f.ok = true
	return f, sc.Err()
}

// histogramQuantiles estimates quantiles (ms) of the observations between two scrapes of a Prometheus
// histogram, interpolating inside buckets.
func histogramQuantiles(before, after map[float64]float64) Quantiles {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	var q Quantiles
	if len(bounds) == 0 {
		return q
	}
	delta := func(b float64) float64 { return after[b] - before[b] }
	total := delta(bounds[len(bounds)-1])
	if total <= 0 {
		return q
	}
	q.Count = int64(total)
	at := func(p float64) float64 {
		want := p * total
		lower, prev := 0.0, 0.0
		for _, b := range bounds {
			c := delta(b)
			if c >= want {
				if math.IsInf(b, 1) {
					return lower * 1000
				}
				frac := 0.0
				if c > prev {
					frac = (want - prev) / (c - prev)
				}
				return (lower + frac*(b-lower)) * 1000
			}
			lower, prev = b, c
		}
		return lower * 1000
	}
	q.P50, q.P95, q.P99 = at(0.5), at(0.95), at(0.99)
	// The largest bucket with observations bounds the maximum.
	for i := len(bounds) - 1; i > 0; i-- {
		if delta(bounds[i]) > delta(bounds[i-1]) {
			if !math.IsInf(bounds[i], 1) {
				q.Max = bounds[i] * 1000
			} else {
				q.Max = bounds[i-1] * 1000
			}
			break
		}
	}
	return q
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
