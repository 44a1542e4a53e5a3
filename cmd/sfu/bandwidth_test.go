package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
)

// Synthetic simulcast layers like the browser client's: rid, size, bitrate at 30 fps.
var testLayers = []struct {
	rid           string
	width, height int
	bps           int
}{
	{"q", 480, 270, 150_000},
	{"h", 960, 540, 500_000},
	{"f", 1920, 1080, 2_500_000},
}

// publishSimulcast publishes one VP8 track in three layers of generated frames; each frame's stamp carries its
// layer in the top byte of the sequence number. A keyframe comes every 3 s and whenever the SFU asks.
func publishSimulcast(t *testing.T, ctx context.Context, n *node, m *mediaRun, room string, onLayers func([]string)) *client.Client {
	t.Helper()
	api, err := loopbackAPI()
	if err != nil {
		t.Fatal(err)
	}
	var wantKey [3]atomic.Bool
	pub, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, room, "presenter", true, false), client.Options{
		API: api,
		OnKeyframeRequest: func(tr webrtc.TrackLocal) {
			for i, l := range testLayers {
				if l.rid == tr.RID() {
					wantKey[i].Store(true)
				}
			}
		},
		OnLayers: func(_ string, rids, _ []string) {
			if onLayers != nil {
				onLayers(rids)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	rids := make([]string, len(testLayers))
	for i, l := range testLayers {
		rids[i] = l.rid
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sv, err := pub.PublishSimulcastVP8(pctx, "camera", "presenter", rids...)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range testLayers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			tick := time.NewTicker(time.Second / 30)
			defer tick.Stop()
			var buf []byte
			for f := uint32(0); ; f++ {
				select {
				case <-m.ctx.Done():
					return
				case <-tick.C:
				}
				key := f%90 == 0 || wantKey[i].Swap(false)
				size := l.bps / 8 / 30
				if key {
					size *= 3
				}
				buf = synth.VP8Frame(buf, size, key, l.width, l.height, synth.Stamp{Seq: uint32(i)<<24 | f, Sent: time.Now()})
				for j := 26; j < len(buf); j++ { // every packet of the frame can tell its layer
					buf[j] = layerMark | byte(i)
				}
				if err := sv.WriteFrame(i, buf, 3000); err != nil {
					return
				}
			}
		}()
	}
	return pub
}

// layerMark fills the frames of layer i with layerMark|i after their stamp.
const layerMark = 0xa0

// layerWatcher records which layer a subscriber receives and every switch between layers.
type layerWatcher struct {
	current atomic.Int32 // -1 before the first frame
	mu      sync.Mutex
	changes []layerChange
	packets int
}

type layerChange struct {
	at       time.Time
	from, to int32
	keyframe bool   // the new layer's first packet starts a keyframe
	seqStep  uint16 // its sequence number minus the previous packet's
}

func (w *layerWatcher) read(track *webrtc.TrackRemote) {
	var lastSeq uint16
	first := true
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		d, err := codec.ParseVP8(pkt.Payload)
		if err != nil {
			continue
		}
		w.mu.Lock()
		w.packets++
		if !first && int16(pkt.SequenceNumber-lastSeq) <= 0 {
			w.mu.Unlock() // a retransmission of an older packet: not a switch
			continue
		}
		if last := pkt.Payload[len(pkt.Payload)-1]; last&0xf0 == layerMark {
			layer := int32(last & 0x0f)
			if prev := w.current.Load(); prev != layer {
				w.changes = append(w.changes, layerChange{at: time.Now(), from: prev, to: layer,
					keyframe: d.Start && d.Keyframe, seqStep: pkt.SequenceNumber - lastSeq})
				w.current.Store(layer)
			}
		}
		lastSeq, first = pkt.SequenceNumber, false
		w.mu.Unlock()
	}
}

func (w *layerWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := fmt.Sprintf("%d packets; switches:", w.packets)
	for _, c := range w.changes {
		s += fmt.Sprintf(" %d->%d (key %v, step %d) at %s;", c.from, c.to, c.keyframe, c.seqStep, c.at.Format("05.000"))
	}
	return s
}

// TestBandwidthAdaptation: a subscriber behind a 400 kbps link receives the low layer; when the limit lifts it
// climbs to the top layer; when the limit returns it steps down. Every switch starts on a keyframe and the
// sequence numbers it receives run on without a gap at the switches made while nothing is lost.
func TestBandwidthAdaptation(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	media := startMedia(t, ctx)

	link, err := newBottleneck(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	link.setRate(400_000)
	api, err := client.NewAPIOnConn(link)
	if err != nil {
		t.Fatal(err)
	}
	w := &layerWatcher{}
	w.current.Store(-1)
	sub, err := client.Dial(ctx, client.WSURL(n.baseURL()), token(t, "bw", "viewer", false, true), client.Options{
		API: api,
		OnTrack: func(_ string, track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			if track.Kind() == webrtc.RTPCodecTypeVideo {
				w.read(track)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publishSimulcast(t, ctx, n, media, "bw", nil)

	steady := func(layer int32, hold, timeout time.Duration, what string) time.Duration {
		t.Helper()
		start := time.Now()
		var since time.Time
		for time.Since(start) < timeout {
			if w.current.Load() == layer {
				if since.IsZero() {
					since = time.Now()
				}
				if time.Since(since) >= hold {
					return since.Sub(start)
				}
			} else {
				since = time.Time{}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: not on layer %d for %v within %v; %s", what, layer, hold, timeout, w)
		return 0
	}

	took := steady(0, 2*time.Second, 30*time.Second, "behind a 400 kbps link")
	t.Logf("settled on the low layer after %v (link dropped %d packets)", took.Round(time.Millisecond), link.drops.Load())

	w.mu.Lock()
	upFrom := len(w.changes)
	w.mu.Unlock()
	link.setRate(0)
	took = steady(2, time.Second, 45*time.Second, "with the limit lifted")
	t.Logf("reached the top layer %v after the limit lifted", took.Round(time.Millisecond))

	link.setRate(400_000)
	limited := time.Now()
	for w.current.Load() == 2 && time.Since(limited) < 10*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	down := time.Since(limited)
	if w.current.Load() == 2 {
		t.Fatalf("still on the top layer 10 s after the limit returned; %s", w)
	}
	t.Logf("stepped down %v after the limit returned", down.Round(time.Millisecond))
	steady(0, time.Second, 30*time.Second, "with the limit back")

	t.Logf("%s", w)
	w.mu.Lock()
	defer w.mu.Unlock()
	verified := 0
	for i, c := range w.changes {
		if c.from < 0 || c.seqStep != 1 {
			continue // packets were lost around the switch (or it is the first): its start may be among them
		}
		verified++
		if !c.keyframe {
			t.Errorf("switch %d (%d->%d) did not start on a keyframe", i, c.from, c.to)
		}
	}
	for i, c := range w.changes[upFrom:] {
		if c.to > c.from && c.from >= 0 && c.seqStep != 1 {
			t.Errorf("switch %d (%d->%d) on an unlimited link: sequence step %d, want 1", upFrom+i, c.from, c.to, c.seqStep)
		}
	}
	if verified < 2 {
		t.Errorf("only %d switches happened without loss around them; want at least the two up", verified)
	}
	if down > 3*time.Second {
		t.Errorf("took %v to step down after the limit returned; the target is 1 s", down)
	}
}

// TestDynacast: the publisher is told to send only the layers someone receives: the low one for a small tile,
// the top one again as soon as a tile needs it.
func TestDynacast(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	var mu sync.Mutex
	var told [][]string
	lastTold := func() []string {
		mu.Lock()
		defer mu.Unlock()
		if len(told) == 0 {
			return nil
		}
		return told[len(told)-1]
	}
	sub := joinClient(t, ctx, n, "dyn", "viewer")
	publishSimulcast(t, ctx, n, media, "dyn", func(rids []string) {
		mu.Lock()
		told = append(told, rids)
		mu.Unlock()
	})
	var trackID string
	eventually(t, 10*time.Second, "the viewer receives the video", func() bool {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		for k, v := range sub.received {
			if v.packets.Load() > 10 && len(k) > 6 && k[len(k)-6:] == "/video" {
				trackID = "camera"
				return true
			}
		}
		return false
	})
	wantsTop := func() bool {
		l := lastTold()
		return len(l) > 0 && l[len(l)-1] == "f"
	}
	eventually(t, 5*time.Second, "with no tile size the viewer gets the top layer, which is wanted", wantsTop)
	if err := sub.Send(map[string]any{"type": "subscription", "track": trackID, "width": 320, "height": 180}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the publisher is told to send only q", func() bool {
		l := lastTold()
		return len(l) == 1 && l[0] == "q"
	})
	if err := sub.Send(map[string]any{"type": "subscription", "track": trackID, "width": 1920, "height": 1080}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "the publisher is told to send f again", wantsTop)
	t.Logf("top layer requested %v after the tile grew", time.Since(start).Round(time.Millisecond))
}
