package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The pre-join screen, devices and keyboard shortcuts of the meeting page (prejoin.js, devices.js, shortcuts.js).

// openPrejoin opens the meeting page u (which shows the pre-join screen) and waits for the screen.
func openPrejoin(t *testing.T, ctx context.Context, exe, u string) context.Context {
	t.Helper()
	tab := newBrowser(t, ctx, exe)
	if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	waitJSShowing(t, tab, 15*time.Second, "the pre-join screen",
		`window.sfu && window.sfu.prejoin && window.sfu.prejoin.shown && !document.getElementById('prejoin').hidden`,
		`window.sfu && window.sfu.prejoin`)
	return tab
}

// remoteTile is the JS expression of the page's remote tile named name (or null).
func remoteTile(name string) string {
	return fmt.Sprintf(`Array.from(document.querySelectorAll('.tile:not(.local)')).find((el) => {
		const n = el.querySelector('.name'); return n && n.textContent.includes(%q); })`, name)
}

// TestBrowserPrejoin: the meeting page opens on the pre-join screen: the camera preview plays, the microphone
// meter moves (the fake microphone beeps), the camera select names the fake camera. The name typed and "join with
// camera off" are what the other page sees (the name on the tile, the camera muted); the choices are there again
// (localStorage) when the page is opened anew without a name. An address with ?name= joins without the screen.
func TestBrowserPrejoin(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	room := "prejoin"
	roomURL := fmt.Sprintf("%s/room/%s?res=720&simulcast=0", n.baseURL(), room)

	pub := openPrejoin(t, ctx, exe, roomURL)
	if st := evalJS[string](t, pub, "state", `window.sfu.state + ' joins=' + window.sfu.joins`); st != "connecting joins=0" {
		t.Errorf("before Join the page is %q, want connecting with no join", st)
	}
	waitJSShowing(t, pub, 15*time.Second, "the camera preview playing",
		`document.getElementById('prejoin-video').videoWidth > 0`,
		`{w: document.getElementById('prejoin-video').videoWidth}`)
	waitJSShowing(t, pub, 15*time.Second, "the microphone meter above 0 (the fake microphone beeps)",
		`window.sfu.prejoin.peak > 0.01`, `window.sfu.prejoin`)
	waitJSShowing(t, pub, 10*time.Second, "a camera with a label in the camera select",
		`Array.from(document.getElementById('prejoin-camera').options).some((o) => o.value && o.textContent.trim())`,
		`Array.from(document.getElementById('prejoin-camera').options).map((o) => [o.value, o.textContent])`)
	camLabels := evalJS[[]string](t, pub, "device labels", `navigator.mediaDevices.enumerateDevices().then((ds) =>
		ds.filter((d) => d.kind === 'videoinput').map((d) => d.label))`)
	shown := evalJS[string](t, pub, "camera option", `document.getElementById('prejoin-camera').selectedOptions[0].textContent`)
	if len(camLabels) == 0 || camLabels[0] == "" || shown != camLabels[0] {
		t.Errorf("the camera select shows %q, want the camera's label (devices: %q)", shown, camLabels)
	}
	camID := evalJS[string](t, pub, "camera id", `document.getElementById('prejoin-camera').value`)

	// The name, and the camera off; then Join.
	const name = "Ada Lovelace"
	evalJS[bool](t, pub, "clear the name", `(() => { document.getElementById('prejoin-name').value = ''; return true; })()`)
	if err := chromedp.Do(pub,
		chromedp.SendKeys(chromedp.ID("prejoin-name"), name),
		chromedp.Click(chromedp.ID("prejoin-cam-off")),
		chromedp.Click(chromedp.ID("prejoin-join")),
	); err != nil {
		t.Fatalf("fill in the pre-join screen: %v", err)
	}
	waitJSShowing(t, pub, 20*time.Second, "joined with the camera muted and the microphone on",
		`window.sfu.state === 'joined' && window.sfu.local.cam === 'off' && window.sfu.local.mic === 'on'
			&& document.getElementById('prejoin').hidden`,
		`{state: window.sfu.state, local: window.sfu.local}`)
	if mic := evalJS[bool](t, pub, "typed m", `window.sfu.local.mic === 'on'`); !mic {
		t.Errorf("typing %q in the name field muted the microphone", name)
	}

	viewer := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=Viewer&publish=0", n.baseURL(), room))
	waitJSShowing(t, viewer, 30*time.Second, "a tile named "+name+" with the camera muted and the microphone on",
		`(() => { const el = `+remoteTile(name)+`; return el && el.dataset.cam === 'off' && el.dataset.mic === 'on'; })()`,
		`Array.from(document.querySelectorAll('.tile')).map((el) => [el.querySelector('.name').textContent, el.dataset.mic, el.dataset.cam])`)

	// Opened again without a name: the screen offers what was chosen.
	if err := chromedp.Do(pub, chromedp.Navigate(roomURL)); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 15*time.Second, "the pre-join screen again", `window.sfu && window.sfu.prejoin && window.sfu.prejoin.shown`,
		`window.sfu && window.sfu.prejoin`)
	waitJSShowing(t, pub, 15*time.Second, fmt.Sprintf("the name %q, camera off and the camera %q preselected", name, camID),
		fmt.Sprintf(`document.getElementById('prejoin-name').value === %q && document.getElementById('prejoin-cam-off').checked
			&& !document.getElementById('prejoin-mic-off').checked && document.getElementById('prejoin-camera').value === %q`, name, camID),
		`{name: document.getElementById('prejoin-name').value, camOff: document.getElementById('prejoin-cam-off').checked,
			micOff: document.getElementById('prejoin-mic-off').checked, camera: document.getElementById('prejoin-camera').value}`)

	// An address that names the participant joins at once, as DESIGN.md's /room/{room}?name= promises: no screen.
	if err := chromedp.Do(pub, chromedp.Navigate(roomURL+"&name=Direct")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 20*time.Second, "a page opened with ?name= joined without the pre-join screen",
		`window.sfu.state === 'joined' && !window.sfu.prejoin.shown`, `{state: window.sfu.state, prejoin: window.sfu.prejoin}`)
}

// countPublishOffers makes the page count the publish offers it sends on its signaling sockets (window.__offers).
const countPublishOffers = `(() => {
	window.__offers = 0;
	const send = WebSocket.prototype.send;
	WebSocket.prototype.send = function (data) {
		try { const m = JSON.parse(data); if (m.type === 'offer' && m.pc === 'publish') window.__offers++; } catch (e) {}
		return send.call(this, data);
	};
	return true;
})()`

// TestBrowserDeviceSwitchAndShortcuts: in the meeting, switching the camera (the devices dialog) and the
// microphone puts new tracks on the publish connection with replaceTrack: the viewer goes on decoding the video
// and no new publish offer goes out. Then the keyboard: "m" mutes (our state and the viewer's tile, so the mute
// of the switched microphone reaches the server), "m" typed in a text field does not, "v" stops the camera, "?"
// opens the shortcuts dialog and Escape closes it, the focus back where it was; "h" and "c" fire the events the
// hand and chat modules listen to.
func TestBrowserDeviceSwitchAndShortcuts(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	room := "devswitch"

	pub := openPrejoin(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=Pub&res=720&simulcast=0&prejoin=1", n.baseURL(), room))
	evalJS[bool](t, pub, "count offers", countPublishOffers)
	if err := chromedp.Do(pub, chromedp.Click(chromedp.ID("prejoin-join"))); err != nil {
		t.Fatal(err)
	}
	viewer := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=Viewer&publish=0", n.baseURL(), room))
	st, _ := waitStats(t, viewer, "Viewer", 40*time.Second, "Pub's video decoding", func(st pageStats) bool {
		return st.maxVideo().FramesDecoded >= 30
	})
	waitJSShowing(t, viewer, 20*time.Second, "Pub's tile with the microphone on",
		`(() => { const el = `+remoteTile("Pub")+`; return el && el.dataset.mic === 'on'; })()`,
		`Array.from(document.querySelectorAll('.tile')).map((el) => el.dataset.mic)`)
	offers := evalJS[int](t, pub, "offers", `window.__offers`)
	if offers < 1 {
		t.Fatalf("%d publish offers counted before the switch: the counter does not work", offers)
	}
	oldIDs := evalJS[string](t, pub, "track ids", `document.querySelector('.tile.local video').srcObject.getTracks().map((t) => t.id).sort().join(',')`)

	// The camera from the devices dialog (the fake one again: a new track all the same), the microphone by the hook.
	if err := chromedp.Do(pub, chromedp.Click(chromedp.ID("btn-devices"))); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 10*time.Second, "the devices dialog listing the camera",
		`document.getElementById('devices-dialog').open && document.getElementById('devices-camera').value`,
		`{open: document.getElementById('devices-dialog').open}`)
	evalJS[bool](t, pub, "pick the camera", `(() => { const s = document.getElementById('devices-camera');
		s.dispatchEvent(new Event('change')); return true; })()`)
	waitJSShowing(t, pub, 10*time.Second, "one switch", `window.sfu.devices.switches === 1`, `window.sfu.devices`)
	if ok := evalJS[bool](t, pub, "switch microphone", `window.sfu.switchDevice('audioinput',
		document.getElementById('devices-mic').value)`); !ok {
		t.Fatalf("switching the microphone failed")
	}
	if err := chromedp.Do(pub, chromedp.KeyEvent("\x1b")); err != nil { // Escape closes the dialog
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 5*time.Second, "the devices dialog closed", `!document.getElementById('devices-dialog').open`, `{}`)
	newIDs := evalJS[string](t, pub, "track ids", `document.querySelector('.tile.local video').srcObject.getTracks().map((t) => t.id).sort().join(',')`)
	if newIDs == oldIDs {
		t.Fatalf("the local tracks are still %s after switching", oldIDs)
	}
	before := st.maxVideo().FramesDecoded
	st, _ = waitStats(t, viewer, "Viewer", 20*time.Second, "Pub's video still decoding after the switch", func(st pageStats) bool {
		return st.maxVideo().FramesDecoded >= before+60
	})
	if after := evalJS[int](t, pub, "offers", `window.__offers`); after != offers {
		t.Errorf("%d publish offers after switching devices, want %d (replaceTrack needs none)", after, offers)
	}

	// Shortcuts: "m" mutes the microphone we switched to; the viewer sees it.
	if err := chromedp.Do(pub, chromedp.KeyEvent("m")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 5*time.Second, "the microphone muted by m", `window.sfu.local.mic === 'off'`, `window.sfu.local`)
	waitJSShowing(t, viewer, 10*time.Second, "Pub's microphone muted on the viewer's tile",
		`(() => { const el = `+remoteTile("Pub")+`; return el && el.dataset.mic === 'off'; })()`,
		`Array.from(document.querySelectorAll('.tile')).map((el) => el.dataset.mic)`)

	// Typed in a text field (as in the chat's), "m" is a letter.
	evalJS[bool](t, pub, "text field", `(() => { const i = document.createElement('input'); i.id = 'typing';
		document.body.append(i); i.focus(); return true; })()`)
	if err := chromedp.Do(pub, chromedp.KeyEvent("mmv")); err != nil {
		t.Fatal(err)
	}
	if st := evalJS[string](t, pub, "state", `window.sfu.local.mic + ',' + window.sfu.local.cam + ',' +
		document.getElementById('typing').value`); st != "off,on,mmv" {
		t.Errorf("after typing mmv in a text field: mic,cam,text = %s, want off,on,mmv", st)
	}
	evalJS[bool](t, pub, "blur", `(() => { document.getElementById('typing').remove(); document.getElementById('btn-mic').focus(); return true; })()`)

	// "v" stops the camera; "h" and "c" fire their events.
	evalJS[bool](t, pub, "listen", `(() => { window.__events = [];
		for (const e of ['sfu:hand-toggle', 'sfu:chat-toggle']) window.addEventListener(e, () => window.__events.push(e));
		return true; })()`)
	if err := chromedp.Do(pub, chromedp.KeyEvent("vhc")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 5*time.Second, "the camera off by v, and the hand and chat events",
		`window.sfu.local.cam === 'off' && window.__events.join() === 'sfu:hand-toggle,sfu:chat-toggle'`,
		`{local: window.sfu.local, events: window.__events}`)

	// "c" opened the chat, whose text box took the focus (where "?" is typed, not a shortcut): close it first.
	evalJS[bool](t, pub, "close the chat", `(() => { if (window.sfu.toggleChat) window.sfu.toggleChat(false);
		document.getElementById('btn-mic').focus(); return true; })()`)
	// "?" opens the shortcuts dialog; Escape closes it and the focus goes back.
	if err := chromedp.Do(pub, chromedp.KeyEvent("?")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 5*time.Second, "the shortcuts dialog open, listing m",
		`window.sfu.helpOpen && document.getElementById('help-dialog').open
			&& document.getElementById('help-dialog').getAttribute('aria-labelledby') === 'help-title'
			&& Array.from(document.querySelectorAll('#help-list kbd')).some((k) => k.textContent === 'M')`,
		`{hook: window.sfu.helpOpen, open: document.getElementById('help-dialog').open}`)
	if err := chromedp.Do(pub, chromedp.KeyEvent("m")); err != nil { // the dialog has the keys
		t.Fatal(err)
	}
	if err := chromedp.Do(pub, chromedp.KeyEvent("\x1b")); err != nil {
		t.Fatal(err)
	}
	waitJSShowing(t, pub, 5*time.Second, "the dialog closed by Escape, the focus back on the mute button, still muted",
		`!window.sfu.helpOpen && !document.getElementById('help-dialog').open && document.activeElement.id === 'btn-mic'
			&& window.sfu.local.mic === 'off'`,
		`{hook: window.sfu.helpOpen, focus: document.activeElement && document.activeElement.id, mic: window.sfu.local.mic}`)
	t.Logf("Viewer: %s", st)
}
