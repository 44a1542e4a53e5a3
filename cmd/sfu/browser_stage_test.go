package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// waitJSValue polls js until ok holds of its value, for at most timeout.
func waitJSValue[T any](t *testing.T, tab context.Context, timeout time.Duration, what, js string, ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := chromedp.Run(tab, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(v)
			t.Fatalf("after %v: want %s; have %s (err %v)", timeout, what, b, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clickOn clicks the element the CSS selector names, as a person would with the mouse.
func clickOn(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// remoteTrack is what window.sfu.remoteTracks() lists.
type remoteTrack struct {
	Participant string `json:"participant"`
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Source      string `json:"source"`
	Received    string `json:"received"`
}

// inboundVideo is one inbound video of window.sfu.stats(), with the id of its track.
type inboundVideo struct {
	TrackIdentifier string `json:"trackIdentifier"`
	FrameWidth      int    `json:"frameWidth"`
	FrameHeight     int    `json:"frameHeight"`
	FramesDecoded   int    `json:"framesDecoded"`
}

// receivedTrack waits until the page received the remote track of that kind and source, and returns it.
func receivedTrack(t *testing.T, tab context.Context, timeout time.Duration, kind, source string) remoteTrack {
	t.Helper()
	var found remoteTrack
	waitJSValue(t, tab, timeout, fmt.Sprintf("a received %s track with source %s", kind, source),
		`window.sfu.remoteTracks ? window.sfu.remoteTracks() : []`, func(ts []remoteTrack) bool {
			for _, x := range ts {
				if x.Kind == kind && x.Source == source && x.Received != "" {
					found = x
					return true
				}
			}
			return false
		})
	return found
}

// waitDecoded waits until the video of that track decodes a picture of which ok holds.
func waitDecoded(t *testing.T, tab context.Context, timeout time.Duration, trackID, what string, ok func(w, h int) bool) inboundVideo {
	t.Helper()
	start := time.Now()
	var got inboundVideo
	waitJSValue(t, tab, timeout, what+" for track "+trackID, `window.sfu.stats().then((s) => s.video)`, func(vs []inboundVideo) bool {
		for _, v := range vs {
			if v.TrackIdentifier == trackID && v.FramesDecoded > 0 && ok(v.FrameWidth, v.FrameHeight) {
				got = v
				return true
			}
		}
		return false
	})
	t.Logf("%s: %dx%d after %v", what, got.FrameWidth, got.FrameHeight, time.Since(start).Round(time.Millisecond))
	return got
}

// TestBrowserPinTakesLargeLayer: a 1080p simulcast camera shown in the strip (a screen share holds the stage)
// decodes a small layer; pinned, it takes the stage and decodes 1920x1080; once another tile is pinned it goes
// back to the strip and a small layer. The grid view shows every tile equal and is remembered (and ?view= wins);
// a tile's full-screen button shows that tile full screen.
func TestBrowserPinTakesLargeLayer(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()

	pub := openPage(t, ctx, exe, n.baseURL()+"/room/pin?name=Pub&res=1080")
	viewer := openPage(t, ctx, exe, n.baseURL()+"/room/pin?name=Viewer&publish=0")
	cam := receivedTrack(t, viewer, 60*time.Second, "video", "camera")
	if ok := evalJS[bool](t, pub, "", `window.sfu.shareScreen()`); !ok {
		t.Fatal("shareScreen failed on the publisher's page")
	}
	receivedTrack(t, viewer, 30*time.Second, "video", "screen")
	pid := evalJS[string](t, viewer, "", `document.querySelector('.tile:not(.local):not(.screen)').dataset.participantId`)
	camTile := fmt.Sprintf(`.tile[data-participant-id=%q]:not(.screen)`, pid)
	screenTile := `.tile.screen`

	// Unpinned, the camera is in the strip under the screen share: a small layer.
	small := func(w, h int) bool { return w > 0 && w <= 480 && h <= 270 }
	full := func(w, h int) bool { return w >= 1920 && h >= 1080 }
	waitJSValue(t, viewer, 10*time.Second, "the screen share on the stage", `!!document.querySelector('.tile.screen.on-stage')`,
		func(b bool) bool { return b })
	waitDecoded(t, viewer, 40*time.Second, cam.Received, "camera in the strip: at most 480x270", small)

	// Pinned: the camera takes the stage from the screen share, the SFU sends it the full layer.
	clickOn(t, viewer, camTile+" .tile-pin")
	if st := evalJS[map[string]any](t, viewer, "", `window.sfu.stage`); st["pinned"] != pid {
		t.Fatalf("after clicking the camera's pin: sfu.stage %v, want pinned %q", st, pid)
	}
	pinBtn := evalJS[map[string]string](t, viewer, "", `(() => { const b = document.querySelector('`+camTile+` .tile-pin');
		return {pressed: b.getAttribute('aria-pressed'), label: b.getAttribute('aria-label'), tag: b.tagName}; })()`)
	if pinBtn["pressed"] != "true" || pinBtn["label"] != "Unpin from the stage" || pinBtn["tag"] != "BUTTON" {
		t.Errorf("the pinned tile's pin button: %v; want a button, aria-pressed true, labelled %q", pinBtn, "Unpin from the stage")
	}
	if on := evalJS[bool](t, viewer, "", `document.querySelector('`+camTile+`').classList.contains('on-stage')`); !on {
		t.Fatal("the pinned camera is not on the stage")
	}
	waitDecoded(t, viewer, 30*time.Second, cam.Received, "pinned camera on the stage: 1920x1080", full)

	// Pinning the screen tile (with the keyboard this time) moves the pin: the camera goes back to the strip
	// and gets a small layer again.
	if err := chromedp.Do(viewer, chromedp.Focus(chromedp.CSS(screenTile+" .tile-pin")), chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatalf("pin the screen with the keyboard: %v", err)
	}
	waitJSValue(t, viewer, 5*time.Second, "the screen tile pinned and on the stage",
		`window.sfu.stage.pinned.includes(':') && !!document.querySelector('.tile.screen.on-stage.pinned')`,
		func(b bool) bool { return b })
	if p := evalJS[string](t, viewer, "", `(b => b.getAttribute('aria-pressed') + ' ' + b.getAttribute('aria-label'))(document.querySelector('`+camTile+` .tile-pin'))`); p != "false Pin to the stage" {
		t.Errorf("the camera's pin after pinning the screen: aria-pressed and label %q, want %q", p, "false Pin to the stage")
	}
	waitDecoded(t, viewer, 30*time.Second, cam.Received, "unpinned camera back in the strip: at most 480x270", small)

	// Grid view: no stage, every tile the same size; the choice is remembered, and ?view= overrides it.
	clickOn(t, viewer, "#btn-view")
	grid := evalJS[map[string]any](t, viewer, "", `(() => {
		const tiles = Array.from(document.querySelectorAll('#grid .tile')).map((el) => Math.round(el.getBoundingClientRect().width));
		return {stage: document.getElementById('grid').classList.contains('stage'), view: window.sfu.stage.view,
			pressed: document.getElementById('btn-view').getAttribute('aria-pressed'), kept: localStorage.getItem('sfu.view'),
			widths: tiles};
	})()`)
	if grid["stage"] != false || grid["view"] != "grid" || grid["pressed"] != "true" || grid["kept"] != "grid" {
		t.Fatalf("after the view button: %v; want no stage, view grid, pressed, kept grid", grid)
	}
	if ws, _ := grid["widths"].([]any); len(ws) != 3 || ws[0] != ws[1] || ws[1] != ws[2] {
		t.Errorf("tile widths in grid view: %v, want 3 equal", grid["widths"])
	}
	page := n.baseURL() + "/room/pin?name=Viewer&publish=0"
	for _, c := range []struct{ url, want string }{{page, "grid"}, {page + "&view=speaker", "speaker"}} {
		if err := chromedp.Do(viewer, chromedp.Navigate(c.url)); err != nil {
			t.Fatal(err)
		}
		waitJSValue(t, viewer, 10*time.Second, "view "+c.want+" at "+c.url, `window.sfu.stage.view`, func(v string) bool { return v == c.want })
	}

	// Full screen: the tile's button shows that tile full screen; Escape (or the button again) leaves.
	receivedTrack(t, viewer, 30*time.Second, "video", "camera")
	clickOn(t, viewer, camTile+" .tile-fullscreen")
	waitJSValue(t, viewer, 5*time.Second, "the camera tile full screen",
		`document.fullscreenElement === document.querySelector('`+camTile+`') && window.sfu.stage.fullscreen === '`+pid+`'`,
		func(b bool) bool { return b })
	label := evalJS[string](t, viewer, "", `document.querySelector('`+camTile+` .tile-fullscreen').getAttribute('aria-label')`)
	if label != "Exit full screen" {
		t.Errorf("the full-screen button of the full-screen tile says %q, want %q", label, "Exit full screen")
	}
	if err := chromedp.Do(viewer, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJSValue(t, viewer, 5*time.Second, "no full-screen element after Escape",
		`document.fullscreenElement === null && window.sfu.stage.fullscreen === ''`, func(b bool) bool { return b })
}

// quality is what window.sfu.quality holds.
type quality struct {
	Tiles  map[string]string `json:"tiles"`
	Uplink struct {
		Limited bool   `json:"limited"`
		Reason  string `json:"reason"`
	} `json:"uplink"`
}

// TestBrowserConnectionQuality: on a loopback meeting the other's tile shows "good" (icon and label); the
// rating function calls 10 % loss with a 500 ms round trip poor and a big tile on the smallest layer fair at
// best. The publisher's page shows no "limited uplink" banner on loopback; fed stats that say bandwidth or CPU
// limits its encoder, or a bandwidth estimate far below what its layers need, it shows the banner, which goes
// once the stats are clean.
func TestBrowserConnectionQuality(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	opened := time.Now()
	pub := openPage(t, ctx, exe, n.baseURL()+"/room/quality?name=Pub&res=720")
	viewer := openPage(t, ctx, exe, n.baseURL()+"/room/quality?name=Viewer&publish=0")
	receivedTrack(t, viewer, 60*time.Second, "video", "camera")
	pid := evalJS[string](t, viewer, "", `document.querySelector('.tile:not(.local):not(.screen)').dataset.participantId`)
	waitJSValue(t, viewer, 30*time.Second, "the publisher's tile rated good", `window.sfu.quality`, func(q quality) bool {
		return q.Tiles[pid] == "good"
	})
	badge := evalJS[map[string]string](t, viewer, "", fmt.Sprintf(`(() => { const b = document.querySelector('.tile[data-participant-id=%q] .quality-badge');
		return {hidden: String(b.hidden), level: b.dataset.level, label: b.getAttribute('aria-label'), title: b.title, role: b.getAttribute('role')}; })()`, pid))
	if badge["hidden"] != "false" || badge["level"] != "good" || badge["label"] != "Connection: good" || badge["title"] != badge["label"] || badge["role"] != "img" {
		t.Errorf("quality badge: %v; want shown, good, labelled %q", badge, "Connection: good")
	}

	// The rating itself, on synthetic stats.
	for _, c := range []struct{ in, want string }{
		{`{lossPct: 10, rttMs: 500}`, "poor"},
		{`{lossPct: 0.5, rttMs: 20}`, "good"},
		{`{lossPct: 3, rttMs: 20}`, "fair"},
		{`{rttMs: 300}`, "fair"},
		{`{lossPct: 0, rttMs: 5, wantWidth: 1920, wantHeight: 1080, gotWidth: 480, gotHeight: 270}`, "fair"},
		{`{lossPct: 0, rttMs: 5, wantWidth: 1920, wantHeight: 1080, gotWidth: 320, gotHeight: 180}`, "poor"},
		{`{lossPct: 0, rttMs: 5, wantWidth: 1280, wantHeight: 720, gotWidth: 1280, gotHeight: 720}`, "good"},
	} {
		if got := evalJS[string](t, viewer, "", `window.sfu.qualityOf(`+c.in+`).level`); got != c.want {
			t.Errorf("qualityOf(%s) = %q, want %q", c.in, got, c.want)
		}
	}
	// Our uplink: a loopback meeting shows no banner (checked past the page's 10 s grace for the bandwidth
	// estimate's ramp-up, and the two samples that would show it).
	noBanner := `!document.querySelector('.banner[data-key="uplink"]') && !window.sfu.quality.uplink.limited`
	if time.Since(opened) < 18*time.Second {
		time.Sleep(18*time.Second - time.Since(opened))
	}
	if !evalJS[bool](t, pub, "", noBanner) {
		t.Fatalf("uplink banner on a loopback meeting: %v", evalJS[any](t, pub, "", `window.sfu.quality.uplink`))
	}
	t.Logf("the publisher's uplink as the page rates it: %v", evalJS[any](t, pub, "", `window.sfu.quality.uplink.sample`))

	// A limited uplink. Nothing here limits it for real: capping the encodings (setParameters maxBitrate) makes
	// Chromium send less with qualityLimitationReason "none", and DevTools' network emulation (a global
	// Network.emulateNetworkConditionsByRule with loss, latency, upload throughput) changed neither the loss nor
	// the round trip the page saw when tried. So the page's uplink check reads synthetic samples (sfu.feedUplink) in place of the publish
	// connection's stats; the rest (rating, two samples in a row, the banner, the hook) is the page's own.
	evalJS[any](t, pub, "", `window.sfu.feedUplink({reasons: ['bandwidth', 'none'], availableKbps: 300, neededKbps: 3150})`)
	waitJSValue(t, pub, 15*time.Second, "the uplink banner when the encoder is held back by bandwidth", `window.sfu.quality`,
		func(q quality) bool { return q.Uplink.Limited && q.Uplink.Reason == "bandwidth" })
	text := evalJS[string](t, pub, "", `(document.querySelector('.banner[data-key="uplink"] .banner-text') || {}).textContent || ''`)
	if !strings.Contains(text, "too slow") {
		t.Errorf("uplink banner text %q", text)
	}
	evalJS[any](t, pub, "", `window.sfu.feedUplink({reasons: ['none', 'none', 'none'], availableKbps: 5000, neededKbps: 3150})`)
	waitJSValue(t, pub, 15*time.Second, "the uplink banner gone once the uplink is clear", noBanner, func(b bool) bool { return b })

	// The bandwidth estimate alone far below what the layers need.
	evalJS[any](t, pub, "", `window.sfu.feedUplink({reasons: ['none'], availableKbps: 400, neededKbps: 3150})`)
	waitJSValue(t, pub, 15*time.Second, "the uplink banner when the bandwidth estimate is below what the layers need",
		`window.sfu.quality`, func(q quality) bool { return q.Uplink.Limited && q.Uplink.Reason == "bandwidth" })

	// A busy processor is said differently.
	evalJS[any](t, pub, "", `window.sfu.feedUplink({reasons: ['cpu'], availableKbps: 5000, neededKbps: 3000})`)
	waitJSValue(t, pub, 15*time.Second, "the uplink banner for a busy CPU", `window.sfu.quality`,
		func(q quality) bool { return q.Uplink.Limited && q.Uplink.Reason == "cpu" })
	evalJS[any](t, pub, "", `window.sfu.feedUplink({reasons: ['none'], availableKbps: 5000, neededKbps: 3000})`)
	waitJSValue(t, pub, 15*time.Second, "the banner gone with a clean sample", noBanner, func(b bool) bool { return b })
}

// TestBrowserScreenShareAudio: the screen share asks for the screen's sound; when the browser gives it (headless
// Chromium's fake capture does), the page publishes it as screen_audio and the viewer receives it; it stops with
// the share. A share from a stand-in getDisplayMedia (a canvas and a Web Audio tone) shows the constraints ask
// for audio and that its sound goes out as screen_audio too.
func TestBrowserScreenShareAudio(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	presenter := openPage(t, ctx, exe, n.baseURL()+"/room/share-audio?name=Presenter&res=720&simulcast=0")
	viewer := openPage(t, ctx, exe, n.baseURL()+"/room/share-audio?name=Viewer&publish=0")
	receivedTrack(t, viewer, 60*time.Second, "video", "camera")

	// The browser's own capture: headless Chromium gives a fake sound with the fake screen.
	if ok := evalJS[bool](t, presenter, "", `window.sfu.shareScreen()`); !ok {
		t.Fatal("shareScreen failed")
	}
	sa := receivedTrack(t, viewer, 30*time.Second, "audio", "screen_audio")
	waitJSValue(t, viewer, 20*time.Second, "packets of the screen's sound", `window.sfu.stats().then((s) => s.audio)`,
		func(as []struct {
			TrackIdentifier string `json:"trackIdentifier"`
			PacketsReceived int    `json:"packetsReceived"`
		}) bool {
			for _, a := range as {
				if a.TrackIdentifier == sa.Received && a.PacketsReceived > 0 {
					return true
				}
			}
			return false
		})
	eventually(t, 10*time.Second, "4 tracks on the server while sharing with sound (camera, microphone, screen, screen_audio)",
		func() bool { return n.sfu.Stats().Tracks == 4 })
	if ok := evalJS[bool](t, presenter, "", `window.sfu.stopScreen()`); !ok {
		t.Fatal("stopScreen")
	}
	waitJSValue(t, viewer, 20*time.Second, "no screen_audio track once the share stopped",
		`window.sfu.remoteTracks().filter((x) => x.source === 'screen_audio' || x.source === 'screen').length`,
		func(k int) bool { return k == 0 })

	// A stand-in for the browser's picker: it records what the page asks for and returns a canvas with a tone.
	evalJS[bool](t, presenter, "", `(() => {
		navigator.mediaDevices.getDisplayMedia = async (constraints) => {
			window.__displayConstraints = JSON.parse(JSON.stringify(constraints));
			const canvas = document.createElement('canvas');
			canvas.width = 640; canvas.height = 360;
			const g = canvas.getContext('2d');
			setInterval(() => { g.fillStyle = '#' + Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, '0'); g.fillRect(0, 0, 640, 360); }, 100);
			const ac = new AudioContext();
			const osc = ac.createOscillator();
			const dest = ac.createMediaStreamDestination();
			osc.connect(dest); osc.start();
			return new MediaStream([...canvas.captureStream(15).getVideoTracks(), ...dest.stream.getAudioTracks()]);
		};
		return true; })()`)
	if ok := evalJS[bool](t, presenter, "", `window.sfu.shareScreen()`); !ok {
		t.Fatal("shareScreen with the stand-in picker failed")
	}
	asked := evalJS[map[string]any](t, presenter, "", `window.__displayConstraints`)
	if asked["audio"] != true || asked["systemAudio"] != "include" {
		t.Errorf("getDisplayMedia constraints %v: want audio true and systemAudio include", asked)
	}
	sa2 := receivedTrack(t, viewer, 30*time.Second, "audio", "screen_audio")
	if sa2.ID == sa.ID {
		t.Errorf("the second share's sound has the first one's id %s", sa.ID)
	}
}
