package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zapcore"
)

// chromiumPath finds Debian's Chromium; `make test` installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("no chromium (install it with `make deps`)")
	}
	t.Fatal("no chromium: install Debian's chromium package (`make deps` does) or set CHROMIUM")
	return ""
}

// newBrowser starts one headless Chromium with a fake camera and microphone.
func newBrowser(t *testing.T, ctx context.Context, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", "fps=30"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.WindowSize(1280, 800),
		// Keep a hidden tab's timers and rendering at full speed: these pages are never on screen.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // start the browser now
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// pageStats is what window.sfu.stats() returns.
type pageStats struct {
	Video []struct {
		FrameWidth    int     `json:"frameWidth"`
		FrameHeight   int     `json:"frameHeight"`
		FramesDecoded int     `json:"framesDecoded"`
		FPS           float64 `json:"framesPerSecond"`
	} `json:"video"`
	Audio []struct {
		PacketsReceived int `json:"packetsReceived"`
	} `json:"audio"`
}

func (s pageStats) String() string {
	out := ""
	for _, v := range s.Video {
		out += fmt.Sprintf("video %dx%d decoded=%d fps=%.0f; ", v.FrameWidth, v.FrameHeight, v.FramesDecoded, v.FPS)
	}
	for _, a := range s.Audio {
		out += fmt.Sprintf("audio packets=%d; ", a.PacketsReceived)
	}
	return out
}

func getStats(ctx context.Context) (pageStats, string, error) {
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.sfu ? String(window.sfu.state) : 'no hook'`))
	if err != nil {
		return pageStats{}, "", err
	}
	st, err := chromedp.Run(ctx, chromedp.Evaluate[pageStats](
		`window.sfu && window.sfu.stats ? window.sfu.stats() : {video: [], audio: []}`, chromedp.EvalAwaitPromise))
	return st, state, err
}

// TestBrowsersSeeAndHearEachOther: two headless Chromium open /room/X; each decodes the other's 720p video and
// receives its audio through the SFU.
func TestBrowsersSeeAndHearEachOther(t *testing.T) {
	exe := chromiumPath(t)
	n, err := startNode(config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"},
		LogLevel: zapcore.WarnLevel}) // no secret: dev mode, the page mints its own token
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	room := "browser-test"
	tabs := map[string]context.Context{}
	for _, name := range []string{"Ann", "Ben"} {
		tab := newBrowser(t, ctx, exe)
		u := fmt.Sprintf("%s/room/%s?name=%s&res=720", n.baseURL(), room, url.QueryEscape(name))
		if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
			t.Fatalf("%s: open %s: %v", name, u, err)
		}
		tabs[name] = tab
	}

	start := time.Now()
	for name, tab := range tabs {
		var last pageStats
		var state string
		ok := false
		for time.Since(start) < 90*time.Second && !ok {
			last, state, err = getStats(tab)
			if err != nil {
				t.Fatalf("%s: stats: %v", name, err)
			}
			video, audio := false, false
			for _, v := range last.Video {
				video = video || (v.FrameWidth >= 1280 && v.FrameHeight >= 720 && v.FramesDecoded > 0)
			}
			for _, a := range last.Audio {
				audio = audio || a.PacketsReceived > 0
			}
			ok = video && audio
			if !ok {
				time.Sleep(250 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("%s (state %q) never decoded the other's 1280x720 video with audio: %s", name, state, last)
		}
		t.Logf("%s after %v: %s", name, time.Since(start).Round(time.Millisecond), last)
	}
	// SFU_SCREENSHOT_DIR=dir keeps a picture of each page, to look at the meeting as a person would.
	if dir := os.Getenv("SFU_SCREENSHOT_DIR"); dir != "" {
		for name, tab := range tabs {
			png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
			}
			if err != nil {
				t.Errorf("screenshot of %s: %v", name, err)
			}
		}
	}
	if st := n.sfu.Stats(); st.Participants != 2 || st.Tracks != 4 {
		t.Errorf("server sees %d participants and %d tracks, want 2 and 4", st.Participants, st.Tracks)
	}
	// The node's metrics show the meeting.
	resp, err := http.Get(n.baseURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: %s", resp.Status)
	}
}
