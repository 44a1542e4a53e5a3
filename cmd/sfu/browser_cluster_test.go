package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/sfu/cluster/clustertest"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// pageSignaling is where the page's signaling goes, as its test hooks show it.
type pageSignaling struct {
	State     string   `json:"state"`
	WSURL     string   `json:"wsURL"`
	Redirects int      `json:"redirects"`
	Nodes     []string `json:"nodes"`
	Joins     int      `json:"joins"`
	JoinError string   `json:"joinError"`
	Notices   string   `json:"notices"`
}

func (s pageSignaling) String() string {
	return fmt.Sprintf("state=%s ws=%s redirects=%d nodes=%v joins=%d joinError=%q notices=%q",
		s.State, s.WSURL, s.Redirects, s.Nodes, s.Joins, s.JoinError, s.Notices)
}

const pageSignalingJS = `(() => {
	const s = window.sfu || {};
	return {
		state: s.state ? String(s.state) : 'no hook',
		wsURL: String(s.wsURL || ''),
		redirects: Number(s.redirects) || 0,
		nodes: Array.isArray(s.nodes) ? s.nodes.map(String) : [],
		joins: Number(s.joins) || 0,
		joinError: String(s.joinError || ''),
		notices: Array.from(document.querySelectorAll('.banner .banner-text')).map((e) => e.textContent).join(' | '),
	};
})()`

// waitSignaling polls the page's signaling hooks until ok holds (at most timeout), and says how long that took.
func waitSignaling(t *testing.T, tab context.Context, name string, timeout time.Duration, what string, ok func(pageSignaling) bool) (pageSignaling, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		s, err := chromedp.Run(tab, chromedp.Evaluate[pageSignaling](pageSignalingJS))
		if err != nil {
			t.Fatalf("%s: read the page's signaling hooks: %v", name, err)
		}
		if ok(s) {
			return s, time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s after %v: want %s, have %s", name, timeout, what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBrowserClusterFailover: two nodes a and b of region hk; a Pion participant publishing on a makes a the
// room's owner. A page opened on b is redirected to a (same token, no reload) and decodes the publisher's video.
// Then a dies (its heartbeat stops as in a crash, its connections go) and the publisher rejoins on b: the page,
// by itself, reconnects to b (the node joined.nodes listed) within 10 s and decodes the publisher's video again.
func TestBrowserClusterFailover(t *testing.T) {
	exe := chromiumPath(t)
	redis := clustertest.StartRedis(t)
	// The page, served by b, opens the WebSocket of a: a cross-origin socket, which a node allows because the
	// origin is another node of its region.
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	knowEachOther(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	m := startMedia(t, ctx)

	room := "browser-failover"
	pub := joinClient(t, ctx, a, room, "publisher")
	publishDecodable(t, m, pub)

	pageURL := fmt.Sprintf("%s/room/%s?name=watcher&publish=0&token=%s", b.baseURL(), room,
		url.QueryEscape(token(t, room, "watcher", true, true)))
	tab := openPage(t, ctx, exe, pageURL)
	s, took := waitSignaling(t, tab, "watcher", 30*time.Second, "joined on a after a redirect", func(s pageSignaling) bool {
		return s.State == "joined" && strings.Contains(s.WSURL, a.addr.String())
	})
	t.Logf("watcher joined on a after %v: %s", took.Round(time.Millisecond), s)
	if s.Redirects < 1 {
		t.Fatalf("the page joined on a without a redirect: %s", s)
	}
	if !strings.Contains(strings.Join(s.Nodes, " "), b.addr.String()) {
		t.Fatalf("window.sfu.nodes %v does not list b (%s)", s.Nodes, b.addr)
	}
	decoding := func(st pageStats) bool { return st.maxVideo().FramesDecoded > 0 }
	st, took := waitStats(t, tab, "watcher", 30*time.Second, "the publisher's video", decoding)
	t.Logf("watcher decodes the publisher's video on a after %v: %s", took.Round(time.Millisecond), st)
	if n := sfuParticipants(a); n != 2 || sfuParticipants(b) != 0 {
		t.Fatalf("participants: %d on a, %d on b; want both on the owner a", n, sfuParticipants(b))
	}

	// Kill a as TestOwnerFailover does.
	a.place.Abandon()
	killed := time.Now()
	_ = a.shutdown(ctx)
	select {
	case <-pub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the publisher did not notice its node die")
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	pub2 := rejoin(t, rctx, []string{client.WSURL(b.baseURL())}, token(t, room, "publisher", true, true))
	if pub2 == nil {
		t.Fatal("the publisher could not rejoin on b")
	}
	publishDecodable(t, m, pub2)
	t.Logf("the publisher is back on b %v after a died", time.Since(killed).Round(time.Millisecond))

	s, _ = waitSignaling(t, tab, "watcher", 10*time.Second-time.Since(killed), "joined again on b within 10 s of a's death",
		func(s pageSignaling) bool {
			return s.State == "joined" && s.Joins >= 2 && strings.Contains(s.WSURL, b.addr.String())
		})
	rejoined := time.Since(killed)
	t.Logf("the page rejoined on b %v after a died: %s", rejoined.Round(time.Millisecond), s)
	st, _ = waitStats(t, tab, "watcher", 20*time.Second, "the publisher's video again, on b", decoding)
	t.Logf("FAILOVER: the page rejoined on b %v and decodes the publisher's video again %v after a died: %s",
		rejoined.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), st)
	if n := sfuParticipants(b); n != 2 {
		t.Errorf("b hosts %d participants, want 2 (publisher and watcher)", n)
	}
}

// TestBrowserClusterDrain: the node a page is on drains (SIGTERM's shutdown): the page follows the "draining"
// redirect to the other node of the region by itself, without a reload, and decodes the publisher's video there.
func TestBrowserClusterDrain(t *testing.T) {
	exe := chromiumPath(t)
	redis := clustertest.StartRedis(t)
	a := clusterNode(t, redis, "hk", "hk-a", 100)
	b := clusterNode(t, redis, "hk", "hk-b", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	room := "browser-drain"
	pub := joinClient(t, ctx, a, room, "publisher")
	publishDecodable(t, m, pub)
	tab := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=watcher&publish=0&token=%s", a.baseURL(), room,
		url.QueryEscape(token(t, room, "watcher", true, true))))
	decoding := func(st pageStats) bool { return st.maxVideo().FramesDecoded > 0 }
	waitStats(t, tab, "watcher", 30*time.Second, "the publisher's video on a", decoding)
	if s, _ := waitSignaling(t, tab, "watcher", time.Second, "joined on a", func(s pageSignaling) bool { return s.State == "joined" }); s.Redirects != 0 {
		t.Fatalf("the page on the owner was redirected: %s", s)
	}

	drained := time.Now()
	_ = a.shutdown(ctx)
	msg := waitMessage(t, ctx, pub, "redirect")
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	pub2 := rejoin(t, rctx, []string{msg.URL}, token(t, room, "publisher", true, true))
	if pub2 == nil {
		t.Fatal("the publisher could not follow the redirect")
	}
	publishDecodable(t, m, pub2)
	s, _ := waitSignaling(t, tab, "watcher", 10*time.Second, "joined on b after the draining redirect", func(s pageSignaling) bool {
		return s.State == "joined" && s.Joins >= 2 && strings.Contains(s.WSURL, b.addr.String())
	})
	moved := time.Since(drained)
	if s.Redirects < 1 {
		t.Errorf("the page reached b without a redirect: %s", s)
	}
	st, _ := waitStats(t, tab, "watcher", 20*time.Second, "the publisher's video on b", decoding)
	t.Logf("DRAIN: the page joined b %v and decodes the publisher's video again %v after a began draining: %s; %s",
		moved.Round(time.Millisecond), time.Since(drained).Round(time.Millisecond), s, st)
}

// TestBrowserResidency: a page that reaches a node of another region than its room's policy names shows why it
// cannot join and does not retry.
func TestBrowserResidency(t *testing.T) {
	exe := chromiumPath(t)
	redis := clustertest.StartRedis(t)
	clusterNode(t, redis, "hk", "hk-a", 100)
	sg := clusterNode(t, redis, "sg", "sg-a", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	room := "hk-only"
	tok, err := signaling.MintToken([]byte(testSecret), signaling.Claims{Room: room, Identity: "visitor", Publish: true,
		Subscribe: true, Regions: []string{"hk"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tab := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=visitor&publish=0&token=%s", sg.baseURL(), room, url.QueryEscape(tok)))
	s, took := waitSession(t, tab, "visitor", 20*time.Second, "join refused as residency", func(s pageSession) bool {
		return s.JoinError == "residency"
	})
	t.Logf("refused after %v: %s", took.Round(time.Millisecond), s)
	if s.State != "error" || s.Joins != 0 || !strings.Contains(s.Notices, "This room is kept in another region (") {
		t.Errorf("the refused page: %s", s)
	}
	holdSession(t, tab, "visitor", 3*time.Second, "no retry", func(s pageSession) bool {
		return s.State == "error" && s.Joins == 0 && s.JoinError == "residency"
	})
	if v := metricValue(scrape(t, sg), "sfu_residency_refusals_total"); v != 1 {
		t.Errorf("sfu_residency_refusals_total = %v, want 1 (one join, no retries)", v)
	}
}

// publishDecodable publishes from tc, until m stops, a VP8 video a browser can decode (synth.VP8Frame's cannot:
// see vp8GrayKeyframe) and synthetic Opus audio.
func publishDecodable(t *testing.T, m *mediaRun, tc *testClient) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video-"+tc.ID(), tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio-"+tc.ID(), tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	if _, err := tc.Publish(pctx, video, audio); err != nil {
		t.Fatalf("publish: %v", err)
	}
	frame := vp8GrayKeyframe(320, 180)
	feed := func(every time.Duration, sample func(i uint32) media.Sample, track *webrtc.TrackLocalStaticSample) {
		defer m.wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-m.ctx.Done():
				return
			case <-tick.C:
			}
			if track.WriteSample(sample(i)) != nil {
				return
			}
		}
	}
	m.wg.Add(2)
	go feed(time.Second/30, func(uint32) media.Sample { return media.Sample{Data: frame, Duration: time.Second / 30} }, video)
	go feed(20*time.Millisecond, func(i uint32) media.Sample {
		return media.Sample{Data: synth.OpusFrame(nil, 80, synth.Stamp{Seq: i, Sent: time.Now()}), Duration: 20 * time.Millisecond}
	}, audio)
}

// vp8GrayKeyframe makes a VP8 key frame (RFC 6386) of a plain gray picture: every macroblock predicted from its
// neighbours (DC_PRED, 128 at the picture's edge) with no residual. Every frame a key frame: the decoder needs no
// history, so a receiver decodes from the first frame it gets.
func vp8GrayKeyframe(width, height int) []byte {
	const skipProb = 1 // prob_skip_false: every macroblock skips its coefficients
	e := &vp8BoolEncoder{rng: 255, bitCount: 24}
	e.literal(0, 1)  // color_space
	e.literal(0, 1)  // clamping_type
	e.literal(0, 1)  // segmentation_enabled
	e.literal(0, 1)  // filter_type
	e.literal(0, 6)  // loop_filter_level: no loop filter
	e.literal(0, 3)  // sharpness_level
	e.literal(0, 1)  // loop_filter_adj_enable
	e.literal(0, 2)  // log2_nbr_of_dct_partitions: one token partition
	e.literal(40, 7) // y_ac_qi
	e.literal(0, 5)  // no y_dc, y2_dc, y2_ac, uv_dc, uv_ac deltas
	e.literal(0, 1)  // refresh_entropy_probs
	for _, p := range vp8CoeffUpdateProbs() {
		e.put(p, false) // no token probability update
	}
	e.literal(1, 1) // mb_no_coeff_skip
	e.literal(skipProb, 8)
	mbs := ((width + 15) / 16) * ((height + 15) / 16)
	for range mbs {
		e.put(skipProb, true) // mb_skip_coeff
		e.put(145, true)      // intra_y_mode DC_PRED: 1, 0, 0 on kf_ymode_tree with kf_ymode_prob 145, 156, 163
		e.put(156, false)
		e.put(163, false)
		e.put(142, false) // intra_uv_mode DC_PRED: 0 on uv_mode_tree with kf_uv_mode_prob 142
	}
	first := e.flush()
	// The token partition: nothing to read, but a decoder refuses an empty one.
	tokens := (&vp8BoolEncoder{rng: 255, bitCount: 24}).flush()

	out := make([]byte, 10, 10+len(first)+len(tokens))
	tag := uint32(1<<4) | uint32(len(first))<<5 // key frame, version 0, show_frame, first_part_size
	out[0], out[1], out[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	out[3], out[4], out[5] = 0x9d, 0x01, 0x2a
	binary.LittleEndian.PutUint16(out[6:], uint16(width))
	binary.LittleEndian.PutUint16(out[8:], uint16(height))
	return append(append(out, first...), tokens...)
}

// vp8CoeffUpdateProbRows is RFC 6386's coeff_update_probs[4][8][3][11] (section 13.4), one row of 11 per block
// type, band and context, each row without its trailing 255s; rows separated by |, block types by element.
var vp8CoeffUpdateProbRows = [4]string{
	"|||176 246|223 241 252|249 253 253|255 244 252|234 254 254|253|255 246 254|239 253 254|254 255 254|255 248 254|251 255 254||255 253 254|251 254 254|254 255 254|255 254 253 255 254|250 255 254 255 254|254|||",
	"217|225 252 241 253 255 255 254|234 250 241 250 253 255 253 254|255 254|223 254 254|238 253 254 254|255 248 254|249 254||255 253|247 254||255 253 254|252||255 254 254|253||255 254 253|250|254|||",
	"186 251 250|234 251 244 254|251 251 243 253 254 255 254|255 253 254|236 253 254|251 253 253 254 254|255 254 254|254 254 254||255 254|254 254|254||254||||||||||",
	"248|250 254 252 254|248 254 249 253|255 253 253|246 253 253|252 254 251 254 254|255 254 252|248 254 253|253 255 254 254|255 251 254|245 251 254|253 253 254|255 251 253|252 253 254|255 254|255 252|249 255 254|255 255 254|255 255 253|250|||254|",
}

// vp8CoeffUpdateProbs lists the 1056 probabilities in the order the frame header codes them.
func vp8CoeffUpdateProbs() []uint8 {
	var probs []uint8
	for _, block := range vp8CoeffUpdateProbRows {
		rows := strings.Split(block, "|")
		if len(rows) != 8*3 {
			panic("vp8CoeffUpdateProbRows: want 24 rows per block type")
		}
		for _, row := range rows {
			n := 0
			for _, f := range strings.Fields(row) {
				v, err := strconv.Atoi(f)
				if err != nil {
					panic(err)
				}
				probs = append(probs, uint8(v))
				n++
			}
			for ; n < 11; n++ {
				probs = append(probs, 255)
			}
		}
	}
	return probs
}

// vp8BoolEncoder is RFC 6386's boolean entropy encoder (section 7.3).
type vp8BoolEncoder struct {
	out      []byte
	rng      uint32 // 128 <= rng <= 255
	bottom   uint32 // the minimum value of the remaining output
	bitCount int    // shifts before an output byte is ready
}

func (e *vp8BoolEncoder) carry() {
	i := len(e.out) - 1
	for ; i >= 0 && e.out[i] == 255; i-- {
		e.out[i] = 0
	}
	if i >= 0 {
		e.out[i]++
	}
}

// put codes bit, whose probability of being false is prob/256.
func (e *vp8BoolEncoder) put(prob uint8, bit bool) {
	split := 1 + ((e.rng-1)*uint32(prob))>>8
	if bit {
		e.bottom += split
		e.rng -= split
	} else {
		e.rng = split
	}
	for e.rng < 128 {
		e.rng <<= 1
		if e.bottom&(1<<31) != 0 {
			e.carry()
		}
		e.bottom <<= 1
		if e.bitCount--; e.bitCount == 0 {
			e.out = append(e.out, byte(e.bottom>>24))
			e.bottom &= 1<<24 - 1
			e.bitCount = 8
		}
	}
}

// literal codes the n-bit unsigned v, most significant bit first, each bit at probability 1/2.
func (e *vp8BoolEncoder) literal(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		e.put(128, v>>uint(i)&1 == 1)
	}
}

// flush writes out what is pending and returns the coded bytes.
func (e *vp8BoolEncoder) flush() []byte {
	c, v := e.bitCount, e.bottom
	if v&(1<<uint(32-c)) != 0 {
		e.carry()
	}
	v <<= uint(c & 7)
	for c >>= 3; c > 0; c-- {
		v <<= 8
	}
	for range 4 {
		e.out = append(e.out, byte(v>>24))
		v <<= 8
	}
	return e.out
}

// TestBrowserRelayedRoom: cluster issue, "the relay flattens the room". The owner a is full, so a page that
// reaches b is hosted there and the room relayed. The page names the presenter (who publishes on a) by its name,
// not the relay's, decodes 1920x1080 once its tile asks for it, and the low layer once it shrinks: every simulcast
// layer crosses the relay.
func TestBrowserRelayedRoom(t *testing.T) {
	exe := chromiumPath(t)
	room := "relayed"
	sp := spilledRoom(t, 150*time.Second, token(t, room, "ada", true, false))
	b, ctx := sp.b, sp.ctx
	publishGraySimulcast(t, sp.m, sp.first)

	tab := openPage(t, ctx, exe, fmt.Sprintf("%s/room/%s?name=viewer&publish=0&token=%s", b.baseURL(), room,
		url.QueryEscape(token(t, room, "viewer", false, true))))
	waitStats(t, tab, "viewer", 40*time.Second, "the presenter's video", func(st pageStats) bool { return st.maxVideo().FramesDecoded > 0 })
	if v := metricValue(scrape(t, b), "sfu_rooms_relayed"); v != 1 {
		t.Fatalf("sfu_rooms_relayed on b = %v: the page is not on the relayed node", v)
	}
	names, err := chromedp.Run(tab, chromedp.Evaluate[string](
		`[...document.querySelectorAll('.tile:not(.local) .name')].map(e => e.textContent).join('|')`))
	if err != nil || !strings.Contains(names, "Name of ada") || strings.Contains(names, "relay") {
		t.Fatalf("the remote tiles are named %q (%v), want the presenter's name", names, err)
	}
	setTileSize(t, tab, 1920, 1080)
	st, took := waitStats(t, tab, "viewer", 60*time.Second, "1920x1080 through the relay", func(st pageStats) bool {
		return st.maxVideo().FrameWidth >= 1920 && st.maxVideo().FrameHeight >= 1080
	})
	t.Logf("1080p on the relayed node %v after the tile grew (%s)", took.Round(time.Millisecond), st)
	setTileSize(t, tab, 320, 180)
	st, took = waitStats(t, tab, "viewer", 30*time.Second, "at most 480x270 for a 320x180 tile", func(st pageStats) bool {
		v := st.maxVideo()
		return v.FrameWidth > 0 && v.FrameWidth <= 480 && v.FrameHeight <= 270
	})
	t.Logf("the low layer on the relayed node %v after the tile shrank (%s)", took.Round(time.Millisecond), st)
}

// publishGraySimulcast publishes from tc a camera in three simulcast layers (q 480x270, h 960x540, f 1920x1080)
// of gray key frames a browser decodes, fed until m stops.
func publishGraySimulcast(t *testing.T, m *mediaRun, tc *testClient) {
	t.Helper()
	pctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	sv, err := tc.PublishSimulcastVP8(pctx, "camera", tc.ID(), "q", "h", "f")
	if err != nil {
		t.Fatalf("publish simulcast: %v", err)
	}
	for i, size := range [][2]int{{480, 270}, {960, 540}, {1920, 1080}} {
		frame := vp8GrayKeyframe(size[0], size[1])
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			tick := time.NewTicker(time.Second / 15)
			defer tick.Stop()
			for {
				select {
				case <-m.ctx.Done():
					return
				case <-tick.C:
				}
				if sv.WriteFrame(i, frame, 6000) != nil {
					return
				}
			}
		}()
	}
}
