package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap/zapcore"
)

// chromiumPath finds Debian's Chromium; `make test` installs it.
func chromiumPath(t testing.TB) string {
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
	return newBrowserWith(t, ctx, exe)
}

// newBrowserWith is newBrowser with more options, which win over its own (e.g. a fake camera playing a file).
func newBrowserWith(t testing.TB, ctx context.Context, exe string, extra ...chromedp.ExecAllocatorOption) context.Context {
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
	opts = append(opts, extra...)
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

// maxVideo is the largest video the page decodes.
func (s pageStats) maxVideo() (v struct{ FrameWidth, FrameHeight, FramesDecoded int }) {
	for _, x := range s.Video {
		if x.FramesDecoded > 0 && x.FrameWidth*x.FrameHeight > v.FrameWidth*v.FrameHeight {
			v.FrameWidth, v.FrameHeight, v.FramesDecoded = x.FrameWidth, x.FrameHeight, x.FramesDecoded
		}
	}
	return v
}

func (s pageStats) audioPackets() (n int) {
	for _, a := range s.Audio {
		n += a.PacketsReceived
	}
	return n
}

// startDevNode runs a node in dev mode (the page mints its own token) on loopback.
func startDevNode(t *testing.T) *node {
	t.Helper()
	n, err := startNode(config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", ICEIPs: []string{"127.0.0.1"},
		LogLevel: zapcore.WarnLevel, Dev: true, MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.shutdown(ctx)
	})
	return n
}

// openPage starts a browser on the page. A meeting page joins at once: skipPrejoin adds prejoin=0 to its address
// unless the address says otherwise (browser_prejoin_test.go tests the pre-join screen).
func openPage(t *testing.T, ctx context.Context, exe, u string) context.Context {
	t.Helper()
	tab := newBrowser(t, ctx, exe)
	u = skipPrejoin(u)
	if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return tab
}

// skipPrejoin adds prejoin=0 to the address of a meeting page (/room/...) that has no prejoin parameter, so that
// it joins at once as it did before the pre-join screen.
func skipPrejoin(u string) string {
	p, err := url.Parse(u)
	if err != nil || !strings.HasPrefix(p.Path, "/room/") || p.Query().Has("prejoin") {
		return u
	}
	if p.RawQuery == "" {
		return u + "?prejoin=0"
	}
	return u + "&prejoin=0"
}

// waitStats polls the page's statistics until ok holds, and says how long that took.
func waitStats(t *testing.T, tab context.Context, name string, timeout time.Duration, what string, ok func(pageStats) bool) (pageStats, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		st, state, err := getStats(tab)
		if err != nil {
			t.Fatalf("%s: stats: %v", name, err)
		}
		if ok(st) {
			return st, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s (state %q) after %v: want %s, have %s", name, state, timeout, what, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// setTileSize shows the page's (only) remote video at w x h CSS pixels, as a person resizing it would.
func setTileSize(t *testing.T, tab context.Context, w, h int) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const v = document.querySelector('.tile:not(.local) video');
		if (!v) return false;
		v.style.cssText = 'position:fixed;left:0;top:0;z-index:10;object-fit:contain;width:%dpx;height:%dpx';
		return true; })()`, w, h)
	found, err := chromedp.Run(tab, chromedp.Evaluate[bool](js))
	if err != nil || !found {
		t.Fatalf("resize the remote tile: found %v, %v", found, err)
	}
}

// TestBrowserSimulcast: a browser publishes 1080p in three simulcast layers; a watcher whose tile is 1080p
// decodes 1920x1080, and once its tile shrinks to 320x180 it gets a layer of at most 480x270.
func TestBrowserSimulcast(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	openPage(t, ctx, exe, n.baseURL()+"/room/simulcast?name=Pub&res=1080")
	watcher := openPage(t, ctx, exe, n.baseURL()+"/room/simulcast?name=Watcher&publish=0")
	full := func(st pageStats) bool { return st.maxVideo().FrameWidth >= 1920 && st.maxVideo().FrameHeight >= 1080 }
	st, took := waitStats(t, watcher, "watcher", 60*time.Second, "any video", func(st pageStats) bool { return st.maxVideo().FramesDecoded > 0 })
	t.Logf("first video %v after the pages opened (%s)", took.Round(time.Millisecond), st)

	small := func(st pageStats) bool {
		v := st.maxVideo()
		return v.FrameWidth > 0 && v.FrameWidth <= 480 && v.FrameHeight <= 270
	}
	setTileSize(t, watcher, 320, 180)
	st, took = waitStats(t, watcher, "watcher", 30*time.Second, "at most 480x270 for a 320x180 tile", small)
	t.Logf("small layer after the tile shrank: %v (%s)", took.Round(time.Millisecond), st)

	setTileSize(t, watcher, 1920, 1080)
	st, took = waitStats(t, watcher, "watcher", 60*time.Second, "1920x1080 video", full)
	t.Logf("1080p after the tile grew: %v (%s)", took.Round(time.Millisecond), st)

	setTileSize(t, watcher, 320, 180)
	st, took = waitStats(t, watcher, "watcher", 30*time.Second, "at most 480x270 once the tile shrinks again", small)
	t.Logf("small layer again: %v (%s)", took.Round(time.Millisecond), st)
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
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	room := "browser-test"
	tabs := map[string]context.Context{}
	for _, name := range []string{"Ann", "Ben"} {
		tabs[name] = openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=%s&res=720&simulcast=0", n.baseURL(), room, url.QueryEscape(name)))
	}
	for name, tab := range tabs {
		st, took := waitStats(t, tab, name, 90*time.Second, "the other's 1280x720 video with audio", func(st pageStats) bool {
			return st.maxVideo().FrameWidth >= 1280 && st.maxVideo().FrameHeight >= 720 && st.audioPackets() > 0
		})
		t.Logf("%s after %v: %s", name, took.Round(time.Millisecond), st)
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
	if v := metricValue(scrape(t, n), "sfu_participants"); v != 2 {
		t.Errorf("sfu_participants in /metrics: %v, want 2", v)
	}
}

// TestBrowserScreenShare: a participant shares its screen as a second video; the other page shows it in a tile
// of its own (which it does only for a track the server announced as a screen share) and decodes both videos.
func TestBrowserScreenShare(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	presenter := openPage(t, ctx, exe, n.baseURL()+"/room/share?name=Presenter&res=720&simulcast=0")
	viewer := openPage(t, ctx, exe, n.baseURL()+"/room/share?name=Viewer&publish=0")
	waitStats(t, viewer, "viewer", 60*time.Second, "the presenter's camera", func(st pageStats) bool {
		return st.maxVideo().FramesDecoded > 0
	})
	started, err := chromedp.Run(presenter, chromedp.Evaluate[bool](`window.sfu.shareScreen()`, chromedp.EvalAwaitPromise))
	if err != nil || !started {
		t.Fatalf("shareScreen: %v, %v", started, err)
	}
	waitStats(t, viewer, "viewer", 60*time.Second, "two decoding videos (camera and screen)", func(st pageStats) bool {
		decoding := 0
		for _, v := range st.Video {
			if v.FramesDecoded > 0 {
				decoding++
			}
		}
		return decoding >= 2
	})
	tiles, err := chromedp.Run(viewer, chromedp.Evaluate[int](`document.querySelectorAll('.tile.screen video').length`))
	if err != nil || tiles != 1 {
		t.Fatalf("screen tiles on the viewer's page: %d, %v; want 1", tiles, err)
	}
	// The tile is a screen tile because the server announced the track with source "screen". Headless Chromium's
	// fake capture shares a sound with the screen, which the page publishes too (screen_audio).
	eventually(t, 10*time.Second, "4 tracks on the server after the share (camera, microphone, screen, screen_audio)",
		func() bool { return n.sfu.Stats().Tracks == 4 })
}

// evalJS evaluates js on the page (awaiting a promise) and fails the test on error, saying what it was doing
// ("": the script itself).
func evalJS[T any](t testing.TB, tab context.Context, what, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		if what == "" {
			what = fmt.Sprintf("evaluate %.80q", js)
		}
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitJS polls js (a boolean expression; one that throws counts as false) every 200 ms until it holds, failing
// after timeout.
func waitJS(t *testing.T, tab context.Context, timeout time.Duration, what, js string) {
	t.Helper()
	waitJSShowing(t, tab, timeout, what, js, "null")
}

// waitJSShowing is waitJS that, on failure, shows show (an expression describing the page's state).
func waitJSShowing(t *testing.T, tab context.Context, timeout time.Duration, what, js, show string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(() => { try { return !!(`+js+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(`+show+`)`))
			t.Fatalf("after %v: want %s; page has %s (%v)", timeout, what, state, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
