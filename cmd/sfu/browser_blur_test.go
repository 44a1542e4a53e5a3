package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Background blur (signaling/web/blur.js): the page blurs its camera's background before sending it. The camera is
// a file the test makes (blur_scene_test.go): a person's head and shoulders over a sharp checkerboard.

// blurGL is how the test's Chromium gets WebGL, which the segmentation model runs on: the GPU process with
// SwiftShader, a software GPU (newBrowser's --disable-gpu leaves a WebGL about 50 times slower here).
var blurGL = []chromedp.ExecAllocatorOption{
	chromedp.Flag("disable-gpu", false),
	chromedp.Flag("use-angle", "swiftshader"),
	chromedp.Flag("enable-unsafe-swiftshader", true),
}

// newBlurBrowser starts a Chromium whose camera plays the scene (written to a file of the test's), with WebGL.
func newBlurBrowser(t testing.TB, ctx context.Context, exe string, sc blurScene) context.Context {
	t.Helper()
	file := filepath.Join(t.TempDir(), "person.y4m")
	if err := writeY4M(file, sc.img, 30); err != nil {
		t.Fatal(err)
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.Flag("use-file-for-fake-video-capture", file)}, blurGL...)
	return newBrowserWith(t, ctx, exe, opts...)
}

// regionStats is what a region of a picture looks like: its mean luma and its detail (the mean absolute luma
// difference between neighbouring pixels, across and down), which blur takes away.
type regionStats struct {
	Luma   float64 `json:"luma"`
	Detail float64 `json:"detail"`
}

func luma(r, g, b uint8) float64 { return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) }

// statsOf measures r in img.
func statsOf(img *image.RGBA, r image.Rectangle) regionStats {
	var sum, detail float64
	var n, nd int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.RGBAAt(x, y)
			l := luma(c.R, c.G, c.B)
			sum += l
			n++
			if x+1 < r.Max.X {
				c2 := img.RGBAAt(x+1, y)
				d := l - luma(c2.R, c2.G, c2.B)
				if d < 0 {
					d = -d
				}
				detail += d
				nd++
			}
			if y+1 < r.Max.Y {
				c2 := img.RGBAAt(x, y+1)
				d := l - luma(c2.R, c2.G, c2.B)
				if d < 0 {
					d = -d
				}
				detail += d
				nd++
			}
		}
	}
	return regionStats{Luma: sum / float64(n), Detail: detail / float64(nd)}
}

// sentStatsJS measures regions (as [x0, y0, x1, y1]) of the next frame of the camera track the page sends now
// (window.sfu.sentVideo: the track on its publish connection), the same way as statsOf. It resolves to null while
// the page sends no camera.
const sentStatsJS = `(async (regions) => {
	const sent = window.sfu.sentVideo && window.sfu.sentVideo();
	if (!sent || sent.readyState !== 'live') return null;
	const track = sent.clone();
	const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
	let frame = null;
	try {
		for (let i = 0; i < 3; i++) { // a fresh frame, not one queued before
			const { value, done } = await reader.read();
			if (done) break;
			if (frame) frame.close();
			frame = value;
		}
	} finally {
		reader.cancel().catch(() => {});
		track.stop();
	}
	if (!frame) return null;
	const w = frame.displayWidth, h = frame.displayHeight;
	const canvas = new OffscreenCanvas(w, h);
	const ctx = canvas.getContext('2d');
	ctx.drawImage(frame, 0, 0);
	frame.close();
	const luma = (d, i) => 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
	return { w, h, regions: regions.map(([x0, y0, x1, y1]) => {
		const rw = x1 - x0, rh = y1 - y0;
		const d = ctx.getImageData(x0, y0, rw, rh).data;
		let sum = 0, detail = 0, nd = 0;
		for (let y = 0; y < rh; y++) {
			for (let x = 0; x < rw; x++) {
				const i = (y * rw + x) * 4, l = luma(d, i);
				sum += l;
				if (x + 1 < rw) { detail += Math.abs(l - luma(d, i + 4)); nd++; }
				if (y + 1 < rh) { detail += Math.abs(l - luma(d, i + rw * 4)); nd++; }
			}
		}
		return { luma: sum / (rw * rh), detail: detail / nd };
	}) };
})`

// sentRegions measures the scene's background and foreground regions in what the page sends now.
func sentRegions(t *testing.T, tab context.Context, sc blurScene) (bg, fg []regionStats) {
	t.Helper()
	var rects [][4]int
	for _, r := range append(append([]image.Rectangle{}, sc.background...), sc.foreground...) {
		rects = append(rects, [4]int{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y})
	}
	arg, _ := json.Marshal(rects)
	var got *struct {
		W, H    int
		Regions []regionStats
	}
	deadline := time.Now().Add(20 * time.Second)
	for got == nil {
		got = evalJS[*struct {
			W, H    int
			Regions []regionStats
		}](t, tab, "measure the sent video", sentStatsJS+"("+string(arg)+")")
		if got == nil {
			if time.Now().After(deadline) {
				t.Fatal("the page sends no camera")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if got.W != sceneW || got.H != sceneH {
		t.Fatalf("the page sends %dx%d, want the camera's %dx%d", got.W, got.H, sceneW, sceneH)
	}
	return got.Regions[:len(sc.background)], got.Regions[len(sc.background):]
}

// checkSent says how the sent video's regions compare with the camera's: with blur, the background has lost
// most of its detail and the person kept theirs; without, both are as the camera shows them.
func checkSent(t *testing.T, tab context.Context, sc blurScene, blurred bool, when string) {
	t.Helper()
	bg, fg := sentRegions(t, tab, sc)
	near := func(a, b float64) bool { return a > b-20 && a < b+20 }
	for i, r := range sc.background {
		in := statsOf(sc.img, r)
		out := bg[i]
		switch {
		case blurred && out.Detail > 0.3*in.Detail:
			t.Errorf("%s: background %v keeps its detail (%.1f, camera %.1f): not blurred", when, r, out.Detail, in.Detail)
		case !blurred && (out.Detail < 0.7*in.Detail || !near(out.Luma, in.Luma)):
			t.Errorf("%s: background %v is %+v, camera %+v: want it as the camera shows it", when, r, out, in)
		}
	}
	for i, r := range sc.foreground {
		in := statsOf(sc.img, r)
		out := fg[i]
		if out.Detail < 0.7*in.Detail || !near(out.Luma, in.Luma) {
			t.Errorf("%s: the person's %v is %+v, camera %+v: want it sharp, as the camera shows it", when, r, out, in)
		}
	}
}

// waitBlur waits until the page's blur state (window.sfu.blur) is on or off, with frames flowing when on.
func waitBlur(t *testing.T, tab context.Context, on bool, what string) {
	t.Helper()
	cond := `window.sfu.blur.on === false && !window.sfu.blur.loading`
	if on {
		cond = `window.sfu.blur.on === true && window.sfu.blur.frames > 5`
	}
	start := time.Now()
	waitJSShowing(t, tab, 45*time.Second, what, cond, `window.sfu.blur`)
	t.Logf("%s: after %v, %s", what, time.Since(start).Round(time.Millisecond), evalJS[string](t, tab, "blur state", `JSON.stringify(window.sfu.blur)`))
}

// framesFlow waits until the page's blur pipeline has put out more frames than it had (bounded; no rate asked).
func framesFlow(t *testing.T, tab context.Context, what string) {
	t.Helper()
	before := evalJS[int](t, tab, "blur frames", `window.sfu.blur.frames`)
	waitJSShowing(t, tab, 20*time.Second, what, fmt.Sprintf(`window.sfu.blur.frames > %d + 10`, before), `window.sfu.blur`)
}

// TestBrowserBlur: the pre-join screen's box turns background blur on (its preview shows it): the page then sends its camera with the
// background (a checkerboard) blurred and the person (face and striped shirt) as sharp as the camera shows them,
// frames flowing, which a viewer decodes; the meeting's button turns it off (the background sent as the camera
// shows it) and on again. The server sees one camera track throughout (replaceTrack, no new offer).
func TestBrowserBlur(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	sc := newBlurScene()
	tab := newBlurBrowser(t, ctx, exe, sc)
	csp := watchCSP(t, tab)
	base := n.baseURL() + "/room/blur?res=720&simulcast=0"
	if err := chromedp.Do(tab, chromedp.Navigate(base+"&prejoin=1&name=Ann")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 15*time.Second, "the pre-join screen", `window.sfu && window.sfu.prejoin.shown`)
	if evalJS[bool](t, tab, "the box", `document.getElementById('prejoin-blur').checked`) {
		t.Fatal("the blur box is ticked on a first visit")
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("prejoin-blur"))); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, tab, 30*time.Second, "the preview blurred", `window.sfu.prejoin.blurred`, `window.sfu.prejoin`)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("prejoin-join"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 30*time.Second, "joined", `window.sfu.state === 'joined'`)
	waitBlur(t, tab, true, "blur on after the pre-join box")
	framesFlow(t, tab, "blurred frames flowing")
	checkSent(t, tab, sc, true, "blur from the pre-join screen")
	if st := evalJS[string](t, tab, "button", `document.getElementById('btn-blur').getAttribute('aria-pressed')`); st != "true" {
		t.Errorf("the blur button's aria-pressed is %q with blur on", st)
	}

	// What the server forwards plays at the other end: a viewer decodes the blurred camera, frames flowing.
	viewer := openPage(t, ctx, exe, n.baseURL()+"/room/blur?name=Viewer&publish=0")
	st, _ := waitStats(t, viewer, "viewer", 30*time.Second, "the blurred camera decoded", func(st pageStats) bool { return st.maxVideo().FramesDecoded > 0 })
	waitStats(t, viewer, "viewer", 30*time.Second, "more frames decoded", func(s pageStats) bool {
		return s.maxVideo().FramesDecoded > st.maxVideo().FramesDecoded+30
	})

	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("btn-blur"))); err != nil {
		t.Fatal(err)
	}
	waitBlur(t, tab, false, "blur off after the button")
	checkSent(t, tab, sc, false, "blur turned off")
	if st := evalJS[string](t, tab, "button", `document.getElementById('btn-blur').getAttribute('aria-pressed')`); st != "false" {
		t.Errorf("the blur button's aria-pressed is %q with blur off", st)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("btn-blur"))); err != nil {
		t.Fatal(err)
	}
	waitBlur(t, tab, true, "blur on again after the button")
	checkSent(t, tab, sc, true, "blur turned on in the meeting")
	if tracks := n.sfu.Stats().Tracks; tracks != 2 {
		t.Errorf("the server has %d tracks, want 2 (camera and microphone: blur replaces the track, no new one)", tracks)
	}
	if v := csp(); len(v) > 0 {
		t.Errorf("the page broke its Content-Security-Policy: %q", v)
	}
}

// TestBrowserBlurRemembered: the choice survives a reload (the pre-join box is ticked again, the meeting starts
// blurred); a camera switch keeps blurring, on the new camera; ?blur=0 and ?blur=1 win over the choice
// remembered.
func TestBrowserBlurRemembered(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	sc := newBlurScene()
	tab := newBlurBrowser(t, ctx, exe, sc)
	base := n.baseURL() + "/room/blur?res=720&simulcast=0"
	if err := chromedp.Do(tab, chromedp.Navigate(base+"&prejoin=0&name=Ann")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 30*time.Second, "joined", `window.sfu.state === 'joined' && window.sfu.sentVideo()`)
	if evalJS[bool](t, tab, "blur on", `window.sfu.setBlur(true)`) != true {
		t.Fatalf("setBlur(true) failed: %s", evalJS[string](t, tab, "blur state", `JSON.stringify(window.sfu.blur)`))
	}

	// A reload: the pre-join screen shows the box ticked, and the meeting starts blurred.
	if err := chromedp.Do(tab, chromedp.Navigate(base+"&prejoin=1&name=Ann")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 15*time.Second, "the pre-join screen after a reload", `window.sfu && window.sfu.prejoin.shown`)
	if !evalJS[bool](t, tab, "the box", `document.getElementById('prejoin-blur').checked`) {
		t.Error("after a reload the blur box is not ticked: the choice was not remembered")
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("prejoin-join"))); err != nil {
		t.Fatal(err)
	}
	waitBlur(t, tab, true, "blur on after a reload")

	// A camera switch (the same fake camera, a new track): still blurred.
	before := evalJS[string](t, tab, "sent track", `window.sfu.sentVideo() ? window.sfu.sentVideo().id : ''`)
	if !evalJS[bool](t, tab, "switch camera", `navigator.mediaDevices.enumerateDevices().then((ds) =>
		window.sfu.switchDevice('videoinput', ds.find((d) => d.kind === 'videoinput').deviceId))`) {
		t.Fatal("the camera switch failed")
	}
	after := evalJS[string](t, tab, "sent track", `window.sfu.sentVideo() ? window.sfu.sentVideo().id : ''`)
	if after == "" || after == before {
		t.Errorf("the sent track is %q after the switch (before: %q): want a new one", after, before)
	}
	waitBlur(t, tab, true, "blur on after a camera switch")
	framesFlow(t, tab, "blurred frames flowing after the switch")
	checkSent(t, tab, sc, true, "after a camera switch")

	// The address wins over the choice remembered.
	if err := chromedp.Do(tab, chromedp.Navigate(base+"&prejoin=0&name=Ann&blur=0")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tab, 30*time.Second, "joined with ?blur=0", `window.sfu.state === 'joined' && window.sfu.sentVideo()`)
	waitBlur(t, tab, false, "blur off with ?blur=0")
	checkSent(t, tab, sc, false, "?blur=0")
	evalJS[bool](t, tab, "forget the choice", `(localStorage.setItem('sfu.blur', '0'), true)`)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"&prejoin=0&name=Ann&blur=1")); err != nil {
		t.Fatal(err)
	}
	waitBlur(t, tab, true, "blur on with ?blur=1")
	checkSent(t, tab, sc, true, "?blur=1")
}

// TestBrowserBlurFallback: on a node without the segmentation model, a page asked to blur (?blur=1) says why it
// cannot, in a banner, and sends its camera as it is: not black, not frozen; the pre-join screen says it under
// its box.
func TestBrowserBlurFallback(t *testing.T) {
	exe := chromiumPath(t)
	n := startTestNode(t, segmentationOption(t.TempDir()), func(c *config) { c.Dev = true })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc := newBlurScene()
	tab := newBlurBrowser(t, ctx, exe, sc)
	if err := chromedp.Do(tab, chromedp.Navigate(n.baseURL()+"/room/nomodel?name=Bo&res=720&simulcast=0&prejoin=0&blur=1")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, tab, 30*time.Second, "the blur banner", `document.querySelector('.banner[data-key="blur"]')`, `window.sfu.blur`)
	text := evalJS[string](t, tab, "banner", `document.querySelector('.banner[data-key="blur"] .banner-text').textContent`)
	if !strings.Contains(text, "segmentation model") {
		t.Errorf("the banner says %q: want why blur is unavailable", text)
	}
	st := evalJS[map[string]any](t, tab, "blur state", `window.sfu.blur`)
	if st["on"] != false || !strings.Contains(fmt.Sprint(st["error"]), "blur.noModel") {
		t.Errorf("blur state %v: want off with the error blur.noModel", st)
	}
	waitJS(t, tab, 30*time.Second, "joined", `window.sfu.state === 'joined'`)
	checkSent(t, tab, sc, false, "no model: the camera as it is")
	eventually(t, 30*time.Second, "the camera's frames encoded and sent", func() bool {
		v, err := chromedp.Run(tab, chromedp.Evaluate[int](`window.sfu.publishStats().then((s) => s.framesEncoded)`, chromedp.EvalAwaitPromise))
		return err == nil && v > 30
	})
	if st := evalJS[string](t, tab, "button", `document.getElementById('btn-blur').getAttribute('aria-pressed')`); st != "false" {
		t.Errorf("the blur button's aria-pressed is %q after the fallback", st)
	}

	// The pre-join screen says it before joining, under its box.
	if err := chromedp.Do(tab, chromedp.Navigate(n.baseURL()+"/room/nomodel?name=Bo&res=720&simulcast=0&prejoin=1&blur=1")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, tab, 30*time.Second, "the pre-join screen's note that blur is unavailable",
		`window.sfu.prejoin.shown && document.getElementById('prejoin-blur').checked && !document.getElementById('prejoin-blur-note').hidden &&
		document.getElementById('prejoin-blur-note').textContent.includes('segmentation model')`,
		`document.getElementById('prejoin-blur-note').textContent`)
}

// BenchmarkBrowserBlur measures what background blur costs on this machine: a page sends its 1280x720 camera (the
// scene file, 30 frames per second) for 10 s, with blur off and on. It reports the frames per second the page
// sends (fps: frames encoded), and with blur on the frames per second out of the blur pipeline (blur-fps) and the
// processing time it adds to a frame (ms/frame). Skipped without Chromium. Run it alone:
//
//	go test -run '^$' -bench BenchmarkBrowserBlur ./cmd/sfu/
func BenchmarkBrowserBlur(b *testing.B) {
	if _, err := exec.LookPath("chromium"); err != nil && os.Getenv("CHROMIUM") == "" {
		b.Skip("no chromium (install it with `make deps`)")
	}
	exe := chromiumPath(b)
	n := startTestNode(b, func(c *config) { c.Dev = true })
	sc := newBlurScene()
	const window = 10 * time.Second
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			tab := newBlurBrowser(b, ctx, exe, sc)
			u := fmt.Sprintf("%s/room/bench-%s?name=B&res=720&simulcast=0&prejoin=0&blur=%d", n.baseURL(), name, map[bool]int{false: 0, true: 1}[on])
			if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
				b.Fatal(err)
			}
			ready := `window.sfu && window.sfu.state === 'joined' && window.sfu.sentVideo() && (window.sfu.blur.on || !window.sfu.blur.requested)`
			deadline := time.Now().Add(60 * time.Second)
			for !evalJS[bool](b, tab, "ready", `!!(`+ready+`)`) {
				if time.Now().After(deadline) {
					b.Fatalf("the page is not sending after 60 s: %s", evalJS[string](b, tab, "", `JSON.stringify(window.sfu.blur)`))
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // past the start (the first mask, the encoder's ramp-up)
			type sample struct {
				Encoded int     `json:"encoded"`
				Frames  int     `json:"frames"`
				TotalMs float64 `json:"totalMs"`
				At      float64 `json:"at"`
			}
			const take = `window.sfu.publishStats().then((s) => ({ encoded: s.framesEncoded, frames: window.sfu.blur.frames,
				totalMs: window.sfu.blur.totalMs, at: performance.now() }))`
			b.ResetTimer()
			first := evalJS[sample](b, tab, "stats", take)
			time.Sleep(window)
			last := evalJS[sample](b, tab, "stats", take)
			b.StopTimer()
			secs := (last.At - first.At) / 1000
			b.ReportMetric(float64(last.Encoded-first.Encoded)/secs, "fps")
			if on {
				frames := last.Frames - first.Frames
				b.ReportMetric(float64(frames)/secs, "blur-fps")
				if frames > 0 {
					b.ReportMetric((last.TotalMs-first.TotalMs)/float64(frames), "ms/frame")
				}
			}
		})
	}
}
