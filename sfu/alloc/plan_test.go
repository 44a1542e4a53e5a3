package alloc

import (
	"fmt"
	"testing"
	"time"
)

var planT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var allLayers = [MaxLayers]bool{true, true, true}

// camera is a video with three layers received (320x180, 640x360, 1280x720, not yet measured: nominal rates
// 150 k, 500 k and 2.5 M in full), shown at w x h, bound a minute before planT0 and forwarding nothing yet.
func camera(key string, w, h int) Video {
	return Video{Key: key, Active: allLayers, Live: allLayers, LayerCap: MaxLayers,
		Sizes: [MaxLayers][2]int{{320, 180}, {640, 360}, {1280, 720}}, TileW: w, TileH: h,
		BoundAt: planT0.Add(-time.Minute), Current: -1, Target: -1, Temporal: 2}
}

func forwarding(v Video, layer, temporal int32) Video {
	v.Current, v.Target, v.Temporal = layer, layer, temporal
	return v
}

// fwd is a decision to forward layer up to temporal layer t; paused one to forward nothing.
func fwd(desired, layer, t int32) Decision {
	return Decision{Desired: desired, Layer: layer, Temporal: t}
}
func paused(desired int32) Decision { return Decision{Desired: desired, Layer: -1} }

type planRound struct {
	at       time.Duration // after planT0
	estimate float64
	edit     func(vs []Video) // before the round, after the last round's decisions were applied
	want     []Decision
	sending  float64 // checked unless 0
}

// steady is rounds every Interval from `from` to `to` inclusive, at one estimate, each with the same decisions.
func steady(from, to time.Duration, estimate float64, want ...Decision) []planRound {
	var rs []planRound
	for at := from; at <= to; at += Interval {
		rs = append(rs, planRound{at: at, estimate: estimate, want: want})
	}
	return rs
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name   string
		audio  float64
		videos []Video
		// apply: each round's decisions are applied to the videos before the next (the DownTrack switched);
		// otherwise the videos stay as given, but for edits.
		apply  bool
		rounds []planRound
	}{
		{
			name: "hidden tile pauses", audio: 50_000,
			videos: []Video{forwarding(camera("hidden", 0, 0), 2, 2), camera("shown", 1280, 720)},
			rounds: []planRound{{estimate: 10e6, want: []Decision{paused(-1), fwd(2, 2, 2)}, sending: 2_550_000}},
		},
		{
			// Layer 2 is paused at the publisher (dynacast). A tile of unknown size asks only for the live
			// layers for TileGrace after it was bound, then for the top layer (still forwarding only live
			// layers, until layer 2 is live again).
			name: "unknown tile: grace", audio: 50_000, apply: true,
			videos: func() []Video {
				v := camera("new", TileUnknown, TileUnknown)
				v.Live = [MaxLayers]bool{true, true, false}
				v.BoundAt = planT0.Add(-time.Second)
				old := camera("old", TileUnknown, TileUnknown)
				old.Live = v.Live
				return []Video{v, old}
			}(),
			rounds: []planRound{
				{at: 0, estimate: 10e6, want: []Decision{fwd(1, 1, 2), fwd(2, 1, 2)}},
				{at: TileGrace - time.Second - 1, estimate: 10e6, want: []Decision{fwd(1, 1, 2), fwd(2, 1, 2)}},
				{at: TileGrace - time.Second, estimate: 10e6, want: []Decision{fwd(2, 1, 2), fwd(2, 1, 2)}},
				{at: TileGrace, estimate: 10e6, edit: func(vs []Video) { vs[0].Live[2] = true },
					want: []Decision{fwd(2, 2, 2), fwd(2, 1, 2)}},
			},
		},
		{
			// 650 k after audio: the screen share (listed second, smaller tile) goes first and takes layer 1 in
			// full (500 k), though its tile would do with layer 0; the camera gets what is left, 150 k.
			name: "screen share first, at least the middle layer", audio: 50_000,
			videos: []Video{camera("cam", 1280, 720), func() Video {
				v := camera("screen", 320, 180)
				v.Screen = true
				return v
			}()},
			rounds: []planRound{{estimate: 700_000, want: []Decision{fwd(2, 0, 2), fwd(1, 1, 2)}, sending: 700_000}},
		},
		{
			// The same with a camera and a speaker's smaller tile: the speaker first.
			name: "speaker first", audio: 50_000,
			videos: []Video{camera("cam", 1280, 720), func() Video {
				v := camera("speaker", 640, 360)
				v.Speaker = true
				return v
			}()},
			rounds: []planRound{{estimate: 700_000, want: []Decision{fwd(2, 0, 2), fwd(1, 1, 2)}, sending: 700_000}},
		},
		{
			// Without a speaker the larger tile goes first.
			name: "no speaker: larger tile first", audio: 50_000,
			videos: []Video{camera("cam", 1280, 720), camera("small", 640, 360)},
			rounds: []planRound{{estimate: 700_000, want: []Decision{fwd(2, 1, 2), fwd(1, 0, 2)}, sending: 700_000}},
		},
		{
			// A publisher's layer cap (layers from the cap up are not received live either) limits what is
			// desired, whatever the tile and the budget; a cap of 0 leaves nothing.
			name: "publisher layer cap", audio: 50_000,
			videos: func() []Video {
				var vs []Video
				for c := int32(3); c >= 0; c-- {
					v := camera(fmt.Sprint("cap", c), 1280, 720)
					v.LayerCap = c
					for l := c; l < MaxLayers; l++ {
						v.Live[l] = false
					}
					vs = append(vs, v)
				}
				return vs
			}(),
			rounds: []planRound{{estimate: 10e6, want: []Decision{fwd(2, 2, 2), fwd(1, 1, 2), fwd(0, 0, 2), paused(-1)},
				sending: 50_000 + 2_500_000 + 500_000 + 150_000}},
		},
		{
			// A new late-drop count steps that video down one option (here a temporal layer) and holds it there
			// for upHold, however much bandwidth there is: the CPU, not the link, was short. A higher count steps it
			// down again; after upHold without new drops it may rise. The other video, with no new drops, keeps
			// its layer.
			name: "late drops step down and hold", audio: 50_000, apply: true,
			videos: []Video{forwarding(camera("late", 1280, 720), 2, 2), forwarding(camera("other", 640, 360), 1, 2)},
			rounds: []planRound{
				{at: 0, estimate: 10e6, want: []Decision{fwd(2, 2, 2), fwd(1, 1, 2)}},
				{at: Interval, estimate: 10e6, edit: func(vs []Video) { vs[0].LateDrops = 4 },
					want: []Decision{fwd(2, 2, 1), fwd(1, 1, 2)}, sending: 50_000 + 1_875_000 + 500_000},
				{at: 2 * Interval, estimate: 10e6, want: []Decision{fwd(2, 2, 1), fwd(1, 1, 2)}},
				{at: 3 * Interval, estimate: 10e6, edit: func(vs []Video) { vs[0].LateDrops = 5 },
					want: []Decision{fwd(2, 2, 0), fwd(1, 1, 2)}},
				{at: 3*Interval + upHold - time.Millisecond, estimate: 10e6, want: []Decision{fwd(2, 2, 0), fwd(1, 1, 2)}},
				{at: 3*Interval + upHold + 4*Interval, estimate: 10e6, want: []Decision{fwd(2, 2, 2), fwd(1, 1, 2)}},
			},
		},
		{
			// The DownTrack turned its upper temporal layers off when the frames were late; the allocator steps
			// down from what it chose last (2, 2), to (2, 1), not from (2, 0) to a lower spatial layer, which would
			// cost a keyframe.
			name: "late drops step down from the last choice", audio: 50_000,
			videos: []Video{forwarding(camera("cam", 1280, 720), 2, 2)},
			rounds: []planRound{
				{at: 0, estimate: 10e6, want: []Decision{fwd(2, 2, 2)}},
				{at: Interval, estimate: 10e6, edit: func(vs []Video) { vs[0].LateDrops, vs[0].Temporal = 1, 0 },
					want: []Decision{fwd(2, 2, 1)}},
			},
		},
		{
			// A video hidden for a while and shown again keeps its late-drop count: the old drops are not taken
			// for new ones (which would step it down and forget the proven rate).
			name: "late drops seen before a video was hidden", audio: 50_000, apply: true,
			videos: []Video{forwarding(camera("cam", 1280, 720), 2, 2)},
			rounds: []planRound{
				{at: 0, estimate: 10e6, edit: func(vs []Video) { vs[0].LateDrops = 4 }, want: []Decision{fwd(2, 2, 1)}},
				{at: Interval, estimate: 10e6, edit: func(vs []Video) { vs[0].TileW, vs[0].TileH = 0, 0 }, want: []Decision{paused(-1)}},
				{at: 10 * time.Second, estimate: 10e6, edit: func(vs []Video) {
					vs[0].TileW, vs[0].TileH = 1280, 720
					vs[0].Current, vs[0].Target, vs[0].Temporal = 2, 2, 2
				}, want: []Decision{fwd(2, 2, 2)}},
			},
		},
		{
			// The estimate falls from 3 M to 1 M: layer 2 (2.5 M) goes at once. It is back at 3 M a round later,
			// but layer 2 comes back only once the 1 M sample is more than upHold old: at 3.5 s, not 3.25 s.
			name: "fall at once, rise after upHold", audio: 50_000, apply: true,
			videos: []Video{camera("cam", 1280, 720)},
			rounds: append(append([]planRound{
				{at: 0, estimate: 3e6, want: []Decision{fwd(2, 2, 2)}, sending: 2_550_000},
				{at: 250 * time.Millisecond, estimate: 1e6, want: []Decision{fwd(2, 1, 2)}, sending: 550_000},
			}, steady(500*time.Millisecond, 250*time.Millisecond+upHold, 3e6, fwd(2, 1, 2))...),
				planRound{at: 500*time.Millisecond + upHold, estimate: 3e6, want: []Decision{fwd(2, 2, 2)}, sending: 2_550_000}),
		},
		{
			// No layer received live (none yet, or all paused at the publisher): nothing to choose from. The video
			// is paused, and still desires the layer its tile asks for, so that dynacast turns it on.
			name: "no live layer", audio: 50_000,
			videos: func() []Video {
				v := camera("dark", 640, 360)
				v.Live = [MaxLayers]bool{}
				return []Video{v}
			}(),
			rounds: []planRound{{estimate: 10e6, want: []Decision{paused(1)}, sending: 50_000}},
		},
		{
			// The rate returned is the audio's plus each chosen option's cost: measured rates where there are
			// (layer 2: 1 M, 1.5 M, 2 M by temporal layer), nominal ones elsewhere; a paused video costs nothing.
			// When even the cheapest option does not fit, it is taken anyway, and counted.
			name: "sending rate", audio: AudioCost(0) + AudioCost(32_000),
			videos: func() []Video {
				v := camera("measured", 1280, 720)
				v.Rates[2] = [3]float64{1e6, 1.5e6, 2e6}
				return []Video{v, camera("nominal", 640, 360), camera("hidden", 0, 0)}
			}(),
			rounds: []planRound{
				{at: 0, estimate: 10e6, want: []Decision{fwd(2, 2, 2), fwd(1, 1, 2), paused(-1)},
					sending: 82_000 + 2e6 + 500_000},
				{at: Interval, estimate: 1.6e6, want: []Decision{fwd(2, 2, 1), fwd(1, 0, 0), paused(-1)},
					sending: 82_000 + 1.5e6 + 75_000},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s State
			vs := append([]Video(nil), c.videos...)
			for r, rd := range c.rounds {
				if rd.edit != nil {
					rd.edit(vs)
				}
				got, sending := s.Plan(planT0.Add(rd.at), rd.estimate, c.audio, vs)
				if len(got) != len(rd.want) {
					t.Fatalf("round %d (at %v): %d decisions for %d videos", r, rd.at, len(got), len(vs))
				}
				for i := range got {
					if got[i] != rd.want[i] {
						t.Errorf("round %d (at %v, estimate %.0f): %v got %+v, want %+v", r, rd.at, rd.estimate, vs[i].Key, got[i], rd.want[i])
					}
				}
				if rd.sending != 0 && sending != rd.sending {
					t.Errorf("round %d (at %v): sending %.0f, want %.0f", r, rd.at, sending, rd.sending)
				}
				if t.Failed() {
					t.FailNow()
				}
				if c.apply {
					for i, d := range got {
						if !d.Keep {
							vs[i].Current, vs[i].Target = d.Layer, d.Layer
							if d.Layer >= 0 {
								vs[i].Temporal = d.Temporal
							}
						}
					}
				}
			}
		})
	}
}
