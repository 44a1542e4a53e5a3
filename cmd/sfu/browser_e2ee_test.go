package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/signaling/client"
)

// The frame format and key schedule of signaling/web/e2ee.js and e2ee-worker.js (PROTOCOL.md, "End-to-end
// encryption"), written again here from the document: a Go reader of what the server forwards.
const (
	e2eeTrailer = 14 // IV (12), clear length, key index
	e2eeTag     = 16
)

// e2eeEpoch0 is the AES-GCM key of epoch 0 for passphrase in room.
func e2eeEpoch0(t *testing.T, passphrase, room string) cipher.AEAD {
	t.Helper()
	base, err := pbkdf2.Key(sha256.New, passphrase, []byte("edge-sfu e2ee v1 room:"+room), 100_000, 32)
	if err != nil {
		t.Fatal(err)
	}
	k, err := hkdf.Key(sha256.New, base, []byte(room), "edge-sfu e2ee v1 media 0", 16)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

// openE2EEFrame opens one sealed frame: its clear header followed by the plain rest, and its key index.
func openE2EEFrame(key cipher.AEAD, f []byte) ([]byte, byte, error) {
	n := len(f)
	if n < e2eeTrailer+e2eeTag {
		return nil, 0, errors.New("shorter than a sealed frame")
	}
	index, clear := f[n-1], int(f[n-2])
	if clear+e2eeTag+e2eeTrailer > n {
		return nil, index, errors.New("clear length past the frame")
	}
	aad := append(append([]byte{}, f[:clear]...), byte(clear), index)
	plain, err := key.Open(nil, f[n-e2eeTrailer:n-2], f[clear:n-e2eeTrailer], aad)
	if err != nil {
		return nil, index, err
	}
	return append(append([]byte{}, f[:clear]...), plain...), index, nil
}

// frameSpy keeps the frames a Pion subscriber receives, as the server forwards them: VP8 frames put together
// from their packets, and Opus packets.
type frameSpy struct {
	mu    sync.Mutex
	video map[string][][]byte // publisher id -> frames, in arrival order (the last 400)
	audio map[string][][]byte
}

func (s *frameSpy) onTrack(pid string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	var frame []byte
	started := false
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		if track.Kind() == webrtc.RTPCodecTypeAudio {
			s.keep(s.audio, pid, append([]byte{}, pkt.Payload...))
			continue
		}
		var vp8 codecs.VP8Packet
		payload, err := vp8.Unmarshal(pkt.Payload)
		if err != nil {
			started = false
			continue
		}
		if vp8.S == 1 && vp8.PID == 0 {
			frame, started = append([]byte{}, payload...), true
		} else if started {
			frame = append(frame, payload...)
		}
		if pkt.Marker && started {
			s.keep(s.video, pid, frame)
			started = false
		}
	}
}

func (s *frameSpy) keep(m map[string][][]byte, pid string, f []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append(m[pid], f)
	if len(list) > 400 {
		list = list[len(list)-400:]
	}
	m[pid] = list
}

func (s *frameSpy) frames(kind, pid string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.video
	if kind == "audio" {
		m = s.audio
	}
	return append([][]byte{}, m[pid]...)
}

// e2eePage opens the meeting page of room as name, with passphrase in the address's fragment ("" none).
func e2eePage(t *testing.T, ctx context.Context, exe string, n *node, room, name, query, passphrase string) context.Context {
	t.Helper()
	u := fmt.Sprintf("%s/room/%s?name=%s&token=%s%s", n.baseURL(), room, name, url.QueryEscape(token(t, room, name, true, true)), query)
	if passphrase != "" {
		u += "#e2ee=" + url.QueryEscape(passphrase)
	}
	return openPage(t, ctx, exe, u)
}

// setParticipantTileSize shows participant pid's video at w x h CSS pixels, as a person resizing its tile would.
func setParticipantTileSize(t *testing.T, tab context.Context, pid string, w, h int) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const v = document.querySelector('.tile[data-participant-id=%q] video');
		if (!v) return false;
		v.style.cssText = 'position:fixed;left:0;top:0;z-index:10;object-fit:contain;width:%dpx;height:%dpx';
		return true; })()`, pid, w, h)
	if !evalJS[bool](t, tab, "resize a tile", js) {
		t.Fatalf("no tile of %s to resize", pid)
	}
}

// e2eeState is what a page's hook says of its encryption.
const e2eeStateJS = `window.sfu.e2ee`

// TestBrowserE2EE: three pages in one end-to-end encrypted room. Two with the same passphrase (in the address)
// decode each other's video, each tile with a lock; the third, whose passphrase (typed into the prompt the room
// asks for) is another, decodes nothing and shows "cannot decrypt". The server still switches an encrypted
// simulcast subscriber between layers as its tile changes, so it finds keyframes in ciphertext. What it forwards
// is sealed: a Go subscriber reads the VP8 start code in clear and opens the frames with the passphrase's key, but
// they are not the plain frames, and another passphrase's key opens none. When a member leaves the keys change:
// the frames sent after that no longer open with the passphrase's key, and the two pages still see each other.
func TestBrowserE2EE(t *testing.T) {
	exe := chromiumPath(t)
	n := e2eeRoomNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	const room, pass = "sealed", "correct horse battery"

	spy := &frameSpy{video: map[string][][]byte{}, audio: map[string][][]byte{}}
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	joinClientAPI(t, ctx, n, token(t, room, "spy", false, true), api, func(o *client.Options) {
		o.E2EE = "spy-without-a-key"
		o.OnTrack = spy.onTrack
	})

	a := e2eePage(t, ctx, exe, n, room, "Ann", "&res=720", pass) // three layers: 320x180, 640x360, 1280x720
	b := e2eePage(t, ctx, exe, n, room, "Ben", "&res=720&simulcast=0", pass)
	waitJS(t, a, 30*time.Second, "Ann joined", `window.sfu.state === 'joined' && window.sfu.participantId`)
	waitJS(t, b, 30*time.Second, "Ben joined", `window.sfu.state === 'joined' && window.sfu.participantId`)
	aID := evalJS[string](t, a, "", `window.sfu.participantId`)
	bID := evalJS[string](t, b, "", `window.sfu.participantId`)

	// Ann and Ben see each other, each tile with its lock.
	for _, x := range []struct {
		tab, other context.Context
		who, peer  string
	}{{a, b, "Ann", bID}, {b, a, "Ben", aID}} {
		lock := fmt.Sprintf(`window.sfu.e2ee.tiles[%q] === 'ok' && window.sfu.e2ee.members === 1 &&
			getComputedStyle(document.querySelector('.tile[data-participant-id=%q] .e2ee-lock')).display !== 'none'`, x.peer, x.peer)
		waitJSShowing(t, x.tab, 60*time.Second, x.who+"'s tile of the other with a lock", lock, e2eeStateJS)
		first, took := waitStats(t, x.tab, x.who, 60*time.Second, "decoded video", func(st pageStats) bool { return st.maxVideo().FramesDecoded > 10 })
		t.Logf("%s decodes the other's video after %v: %s", x.who, took.Round(time.Millisecond), first)
		polls := 0
		waitStats(t, x.tab, x.who, 20*time.Second, "more frames decoded", func(st pageStats) bool {
			if st.maxVideo().FramesDecoded > first.maxVideo().FramesDecoded+30 {
				return true
			}
			if polls++; polls%20 == 0 { // what the pages say, should this fail
				t.Logf("%s receives %s; its transforms %s; the publisher sends %s", x.who, st,
					evalJS[string](t, x.tab, "", `JSON.stringify(window.sfu.e2ee.transforms.filter((x) => x.kind === 'video'))`),
					evalJS[string](t, x.other, "", `window.sfu.publishStats().then((s) => JSON.stringify(s.video))`))
			}
			return false
		})
	}

	// Layers on ciphertext: Ben's tile of Ann small gets the small layer, large an upper one.
	setParticipantTileSize(t, b, aID, 320, 180)
	st, took := waitStats(t, b, "Ben", 40*time.Second, "320x180 for a 320x180 tile", func(st pageStats) bool {
		v := st.maxVideo()
		return v.FrameWidth > 0 && v.FrameWidth <= 320
	})
	t.Logf("small layer %v after the tile shrank: %s", took.Round(time.Millisecond), st)
	// Up again. The small tile let dynacast pause Ann's upper layers; the large one wakes them, and Ann's browser
	// sends them once its bandwidth estimate climbs back (on a busy machine that can take a while: the browser's
	// doing, not the server's).
	setParticipantTileSize(t, b, aID, 1280, 720)
	polls := 0
	st, took = waitStats(t, b, "Ben", 90*time.Second, "an upper layer for a 720p tile", func(st pageStats) bool {
		if st.maxVideo().FrameWidth > 320 {
			return true
		}
		if polls++; polls%20 == 0 { // what the pages say, should this fail
			t.Logf("Ben receives %s; Ann sends %s", evalJS[string](t, b, "", `window.sfu.stats().then((s) => JSON.stringify(s.video))`),
				evalJS[string](t, a, "", `window.sfu.publishStats().then((s) => JSON.stringify(s.video))`))
		}
		return false
	})
	t.Logf("an upper layer %v after the tile grew: %s", took.Round(time.Millisecond), st)

	// Cat opens the room without a passphrase: the room asks for one, and Cat types a wrong one.
	c := e2eePage(t, ctx, exe, n, room, "Cat", "&publish=0", "")
	waitJSShowing(t, c, 30*time.Second, "the passphrase prompt", `window.sfu.e2ee.prompt && document.getElementById('e2ee-dialog').open`, e2eeStateJS)
	if err := chromedp.Do(c, chromedp.SendKeys(chromedp.ID("e2ee-passphrase"), "wrong horse")); err != nil {
		t.Fatalf("type the passphrase: %v", err)
	}
	if err := chromedp.Do(c, chromedp.Click(chromedp.ID("e2ee-join"))); err != nil {
		t.Fatalf("press join: %v", err)
	}
	waitJS(t, c, 30*time.Second, "Cat joined after the prompt", `window.sfu.state === 'joined' && window.sfu.e2ee.on`)

	// The server still hears who speaks: the audio level travels in an RTP header extension, outside the frames.
	waitJS(t, b, 30*time.Second, "Ann among the active speakers Ben is told of",
		fmt.Sprintf(`window.sfu.speakers.some((s) => s.participant_id === %q)`, aID))

	// Cat: "cannot decrypt" on both tiles, nothing decoded, and a notice that nobody shares the passphrase.
	for _, pid := range []string{aID, bID} {
		failed := fmt.Sprintf(`window.sfu.e2ee.tiles[%q] === 'failed' &&
			getComputedStyle(document.querySelector('.tile[data-participant-id=%q] .e2ee-fail')).display !== 'none'`, pid, pid)
		waitJSShowing(t, c, 60*time.Second, "Cat's tile showing cannot decrypt", failed, e2eeStateJS)
	}
	waitJS(t, c, 10*time.Second, "the mismatch notice", `[...document.querySelectorAll('.banner')].some((b) => b.dataset.key === 'e2ee')`)
	// The video that cannot be opened is hidden (not a frozen picture), so the page reports its tile as 0x0 and
	// the server stops sending it: no decoder left asking Ann for keyframes.
	waitJS(t, c, 10*time.Second, "Cat's videos of Ann and Ben hidden", fmt.Sprintf(`[%q, %q].every((id) =>
		document.querySelector('.tile[data-participant-id="' + id + '"] video').getBoundingClientRect().width === 0)`, aID, bID))
	videoBytes := `window.sfu.stats().then((s) => s.video.reduce((n, v) => n + v.bytesReceived, 0))`
	time.Sleep(2 * time.Second) // the server has heard of the 0x0 tiles
	before := evalJS[int](t, c, "", videoBytes)
	time.Sleep(3 * time.Second)
	after := evalJS[int](t, c, "", videoBytes)
	t.Logf("Cat received %d bytes of video in 3 s once its tiles said cannot decrypt", after-before)
	if after-before > 20_000 {
		t.Errorf("Cat still receives video it cannot open: %d bytes in 3 s", after-before)
	}
	if got := framesDecoded(t, c, "Cat"); got != 0 {
		t.Errorf("Cat, with another passphrase, decoded %d frames; want none", got)
	}

	// What the server forwarded: sealed frames, the VP8 keyframe header in clear.
	right, wrong := e2eeEpoch0(t, pass, room), e2eeEpoch0(t, "wrong horse", room)
	checkSealed := func(kind string, frames [][]byte) (opened, keyframes int) {
		for _, f := range frames {
			if _, _, err := openE2EEFrame(wrong, f); err == nil {
				t.Errorf("a %s frame opens with another passphrase's key", kind)
			}
			plain, index, err := openE2EEFrame(right, f)
			if err != nil || index != 0 {
				continue
			}
			opened++
			if bytes.Equal(plain, f[:len(plain)]) {
				t.Errorf("a forwarded %s frame is its plain frame", kind)
			}
			if kind == "video" && plain[0]&1 == 0 { // a keyframe: its 10 first bytes are in clear, start code included
				keyframes++
				if !bytes.Equal(f[3:6], []byte{0x9d, 0x01, 0x2a}) || !bytes.Equal(f[:10], plain[:10]) || int(f[len(f)-2]) != 10 {
					t.Errorf("a keyframe's header is not in clear: % x", f[:10])
				}
			}
		}
		return opened, keyframes
	}
	videoOpened, keyframes := checkSealed("video", spy.frames("video", aID))
	audioOpened, _ := checkSealed("audio", spy.frames("audio", aID))
	t.Logf("the Go subscriber opened %d video frames (%d keyframes) and %d audio frames of Ann's with the passphrase's key", videoOpened, keyframes, audioOpened)
	if videoOpened < 30 || keyframes < 1 || audioOpened < 30 {
		t.Fatalf("of what the server forwarded, %d video frames (%d keyframes) and %d audio frames open with the passphrase's key; want 30, 1 and 30",
			videoOpened, keyframes, audioOpened)
	}

	// A member leaves: new keys, which the passphrase alone does not give.
	dctx, dcancel := context.WithCancel(ctx)
	d := e2eePage(t, dctx, exe, n, room, "Dan", "&publish=0", pass)
	waitJS(t, d, 30*time.Second, "Dan joined", `window.sfu.state === 'joined' && window.sfu.e2ee.members === 2`)
	waitJS(t, a, 20*time.Second, "Ann counts Dan as a member", `window.sfu.e2ee.members === 2`)
	dcancel() // Dan's browser goes away
	for _, x := range []struct {
		tab context.Context
		who string
	}{{a, "Ann"}, {b, "Ben"}} {
		waitJSShowing(t, x.tab, 30*time.Second, x.who+" sealing with epoch 1", `window.sfu.e2ee.members === 1 && window.sfu.e2ee.sending === 1`, e2eeStateJS)
	}
	decoded := framesDecoded(t, b, "Ben")
	waitJSShowing(t, b, 30*time.Second, "Ben still opening Ann's frames", fmt.Sprintf(`window.sfu.e2ee.tiles[%q] === 'ok'`, aID), e2eeStateJS)
	waitStats(t, b, "Ben", 30*time.Second, "frames decoded after the keys changed", func(st pageStats) bool {
		return st.maxVideo().FramesDecoded > decoded+30
	})
	var newer, opened int
	count := func() bool {
		newer, opened = 0, 0
		for _, f := range spy.frames("video", aID) {
			if len(f) > e2eeTrailer && f[len(f)-1] == 1 {
				newer++
				if _, _, err := openE2EEFrame(right, f); err == nil {
					opened++
				}
			}
		}
		return newer >= 30
	}
	deadline := time.Now().Add(20 * time.Second)
	for !count() && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("after Dan left: %d of Ann's frames under key 1, %d of them open with the passphrase's key", newer, opened)
	if newer < 30 || opened != 0 {
		t.Errorf("after a member left: %d frames under the new key, %d of them open with the passphrase's key; want 30 and 0", newer, opened)
	}

	// A screen share is sealed like the camera: Ben decodes it, its tile with a lock.
	if !evalJS[bool](t, a, "share the screen", `window.sfu.shareScreen()`) {
		t.Fatal("Ann's screen share did not start")
	}
	screen := receivedTrack(t, b, 30*time.Second, "video", "screen")
	waitDecoded(t, b, 30*time.Second, screen.Received, "Ben decodes Ann's encrypted screen share", func(w, h int) bool { return w > 0 })
	waitJS(t, b, 10*time.Second, "a lock on the screen tile", `[...document.querySelectorAll('.tile.screen')].some((el) =>
		el.dataset.e2ee === 'ok' && getComputedStyle(el.querySelector('.e2ee-lock')).display !== 'none')`)

	// DESIGN.md's contract: #e2ee= joins with end-to-end encryption, in a room no setting made E2EE too (its first
	// participant decides); a room already plain refuses it rather than join unencrypted.
	navigate := func(room, pass string) {
		u := fmt.Sprintf("%s/room/%s?name=Cat&prejoin=0&token=%s#e2ee=%s", n.baseURL(), room, url.QueryEscape(token(t, room, "Cat", true, true)), url.QueryEscape(pass))
		if err := chromedp.Do(c, chromedp.Navigate(u)); err != nil {
			t.Fatalf("open %s: %v", room, err)
		}
	}
	navigate("fresh-room", "any horse")
	waitJSShowing(t, c, 30*time.Second, "Cat joined a new room encrypting", `window.sfu.state === 'joined' && window.sfu.e2ee.on`, e2eeStateJS)
	joinClient(t, ctx, n, "plain-room", "plain") // a plain room
	navigate("plain-room", "any horse")
	waitJSShowing(t, c, 30*time.Second, "Cat refused from a plain room, with the reason", `window.sfu.joinError === 'e2ee' &&
		[...document.querySelectorAll('.banner')].some((b) => b.textContent.includes('not end-to-end encrypted'))`, `window.sfu.state`)
}

// TestBrowserLandingE2EE: a passphrase typed on the landing page goes into the meeting's address as its fragment
// (never to the server), and the meeting joins encrypting: the room is end-to-end encrypted on the node.
func TestBrowserLandingE2EE(t *testing.T) {
	exe := chromiumPath(t)
	n := startDevNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tab := newBrowser(t, ctx, exe)
	if err := chromedp.Do(tab, chromedp.Navigate(n.baseURL()+"/")); err != nil {
		t.Fatal(err)
	}
	for id, text := range map[string]string{"room": "secret-standup", "name": "Eve", "e2ee": "pass word"} {
		if err := chromedp.Do(tab, chromedp.SendKeys(chromedp.ID(id), text)); err != nil {
			t.Fatalf("type into #%s: %v", id, err)
		}
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`#join-form button[type="submit"]`))); err != nil {
		t.Fatalf("press join: %v", err)
	}
	waitJS(t, tab, 20*time.Second, "the pre-join screen", `window.sfu && window.sfu.prejoin.shown`)
	if got := evalJS[string](t, tab, "", `location.hash`); got != "#e2ee=pass%20word" {
		t.Errorf("the meeting's fragment is %q, want #e2ee=pass%%20word", got)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("prejoin-join"))); err != nil {
		t.Fatalf("join: %v", err)
	}
	waitJSShowing(t, tab, 30*time.Second, "joined encrypting", `window.sfu.state === 'joined' && window.sfu.e2ee.on`, e2eeStateJS)
	if rm, err := n.sfu.Room("secret-standup"); err != nil || !rm.E2EE {
		t.Errorf("the room on the node: %+v, %v; want end-to-end encrypted", rm, err)
	}
}
