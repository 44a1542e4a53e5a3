// Command loadtest simulates meeting participants against an SFU and reports what they experienced.
//
//	go run ./cmd/loadtest -url http://127.0.0.1:7880 -users 500 -rooms 50 -duration 60s -json out.json -html out.html
//
// Ctrl-C stops it early and prints the partial report.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/edge-sfu/sfu/loadtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var cfg loadtest.Config
	var jsonPath, htmlPath, tile, cpuProfile string
	var quiet bool
	var wait time.Duration
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:7880", "the SFU's HTTP address")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "the SFU's metrics listener (its -metrics-addr) (default: the -url host, port 7889)")
	fs.StringVar(&cfg.Secret, "secret", os.Getenv("SFU_SECRET"), "the SFU's token secret (default $SFU_SECRET); empty uses a dev-mode server's /token")
	fs.StringVar(&cfg.Scenario, "scenario", loadtest.Meeting,
		"meeting, webinar, ramp or allhands (one room: presenters, open microphones taking turns to speak, listeners)")
	fs.IntVar(&cfg.Users, "users", 500, "simulated participants")
	fs.IntVar(&cfg.Rooms, "rooms", 50, "rooms (meeting, ramp)")
	fs.IntVar(&cfg.Publishers, "publishers", 2, "participants per room that send audio and simulcast video (meeting, ramp)")
	fs.IntVar(&cfg.Presenters, "presenters", 2, "participants that send audio and simulcast video (allhands)")
	fs.IntVar(&cfg.MaxAudioStreams, "max-audio-streams", 3, "the server's -max-audio-streams: a listener must receive audio from that many microphones (every one if fewer); 0: from every one (meeting, webinar, ramp)")
	fs.IntVar(&cfg.Speakers, "speakers", 20, "participants with open microphones, audio only, taking turns to speak (allhands)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measured time after the last join (ramp: the whole run) (default 60s)")
	fs.Float64Var(&cfg.JoinRate, "join-rate", 50, "joins per second")
	fs.StringVar(&tile, "tile", "320x180", `the size at which subscribers show each video, WxH; "0x0" reports none (largest layer)`)
	fs.StringVar(&cfg.IVF, "ivf", "", "play this VP8 IVF file instead of synthetic video (one layer; no latency stamps)")
	fs.StringVar(&cfg.Ogg, "ogg", "", "play this Opus Ogg file instead of synthetic audio (no latency stamps)")
	fs.StringVar(&jsonPath, "json", "", "write the report as JSON to this file")
	fs.StringVar(&htmlPath, "html", "", "write the report with plots over time as HTML to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	fs.DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the server's /healthz before starting")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the harness's CPU profile over the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := fmt.Sscanf(tile, "%dx%d", &cfg.TileWidth, &cfg.TileHeight); err != nil || cfg.TileWidth < 0 || cfg.TileHeight < 0 {
		return fmt.Errorf("-tile %q: want WxH", tile)
	}
	if cfg.TileWidth == 0 && cfg.TileHeight == 0 {
		cfg.TileWidth, cfg.TileHeight = -1, -1 // explicit none (zero means the default)
	}
	if !quiet {
		cfg.Progress = os.Stderr
	}
	cfg.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := waitHealthy(ctx, cfg.URL, wait); err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.WriteSummary(os.Stdout)
	if jsonPath != "" {
		if err := rep.WriteJSON(jsonPath); err != nil {
			return err
		}
	}
	if htmlPath != "" {
		if err := rep.WriteHTML(htmlPath); err != nil {
			return err
		}
	}
	return nil
}

// waitHealthy polls the server's /healthz until it answers 200 or the wait is over.
func waitHealthy(ctx context.Context, base string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(strings.TrimSuffix(base, "/") + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/healthz did not answer within %v: is the server running?", base, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
