package alloc

import "testing"

// threeLayers is a demand over layers 2, 1, 0 with temporal options, costing 2.5 M / 500 k / 150 k at full rate.
func threeLayers(priority, area int, current option) demand {
	var d demand
	for l := int32(2); l >= 0; l-- {
		for t := int32(2); t >= 0; t-- {
			d.options = append(d.options, option{l, t})
			d.costs = append(d.costs, nominalBps[l]*temporalShare[t])
		}
	}
	d.priority, d.area, d.current = priority, area, current
	return d
}

func picked(ds []demand, picks []int, i int) option { return ds[i].options[picks[i]] }

func TestAllocateSharesByPriority(t *testing.T) {
	ds := []demand{
		threeLayers(2, 320*180, option{-1, 0}),  // a small tile
		threeLayers(0, 320*180, option{-1, 0}),  // a screen share
		threeLayers(2, 1280*720, option{-1, 0}), // a large tile
	}
	picks, probed := allocate(ds, 3_200_000, 3_200_000, false, -1)
	if probed != -1 {
		t.Fatalf("probed %d without probing allowed", probed)
	}
	if o := picked(ds, picks, 1); o != (option{2, 2}) {
		t.Errorf("screen share got %+v, want the top layer in full: it goes first", o)
	}
	// 3.2 M - 2.5 M leaves 700 k: the large tile next gets layer 1 in full (500 k), the small one what is left.
	if o := picked(ds, picks, 2); o != (option{1, 2}) {
		t.Errorf("large tile got %+v, want layer 1 in full", o)
	}
	if o := picked(ds, picks, 0); o.layer != 0 {
		t.Errorf("small tile got %+v, want layer 0", o)
	}
}

func TestAllocateDropsTemporalBeforeSpatial(t *testing.T) {
	ds := []demand{threeLayers(2, 1, option{2, 2})}
	picks, _ := allocate(ds, 1_500_000, 1_500_000, false, -1) // 2.5 M × 0.5 = 1.25 M fits: base temporal layer
	if o := picked(ds, picks, 0); o != (option{2, 0}) {
		t.Fatalf("with 1.5 M for a 2.5 M layer: %+v, want layer 2 at temporal layer 0", o)
	}
}

func TestAllocateRaisesOnlyOnHeldBudget(t *testing.T) {
	ds := []demand{threeLayers(2, 1, option{0, 2})}
	picks, _ := allocate(ds, 3_000_000, 200_000, false, -1) // the estimate is high now but has not held
	if o := picked(ds, picks, 0); o != (option{0, 2}) {
		t.Fatalf("raised to %+v on an estimate that has not held", o)
	}
	picks, probed := allocate(ds, 3_000_000, 200_000, true, -1)
	if o := picked(ds, picks, 0); o != (option{1, 0}) || probed != 0 {
		t.Fatalf("probe went to %+v (probed %d), want one step up to layer 1 at temporal 0", o, probed)
	}
	// During the probe the video keeps what it probed, though the budget now says less.
	ds[0].current = option{1, 0}
	picks, _ = allocate(ds, 200_000, 200_000, false, 0)
	if o := picked(ds, picks, 0); o != (option{1, 0}) {
		t.Fatalf("probe under way: %+v, want it held at layer 1 temporal 0", o)
	}
}

func TestAllocateBoostOnTileGrowth(t *testing.T) {
	d := threeLayers(2, 1, option{0, 2})
	d.boost = true
	ds := []demand{d}
	picks, probed := allocate(ds, 200_000, 200_000, false, -1)
	if o := picked(ds, picks, 0); o != (option{2, 2}) || probed != 0 {
		t.Fatalf("after the tile grew: %+v (probed %d), want the top layer at once, as a probe", o, probed)
	}
}

func TestChooseLayerByTile(t *testing.T) {
	active := [MaxLayers]bool{true, true, true}
	sizes := [MaxLayers][2]int{{480, 270}, {960, 540}, {1920, 1080}}
	for _, c := range []struct {
		w, h int
		want int32
	}{
		{320, 180, 0}, {480, 270, 0}, {640, 360, 1}, {1000, 562, 1}, {1280, 720, 2}, {3840, 2160, 2},
		{0, 0, -1}, {TileUnknown, TileUnknown, 2},
	} {
		if got := ChooseLayer(active, sizes, c.w, c.h); got != c.want {
			t.Errorf("tile %dx%d: layer %d, want %d", c.w, c.h, got, c.want)
		}
	}
	if got := ChooseLayer([MaxLayers]bool{true}, sizes, 1920, 1080); got != 0 {
		t.Errorf("single-layer track: layer %d, want 0", got)
	}
}
