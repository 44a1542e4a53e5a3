package forward

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
)

// The munger is driven here the way DownTrack.writeRTP drives it: find the packet's mapping; a packet dropped on purpose
// is skipped (in order only); the first packet of a layer gets the switch's mapping; the output numbers come from
// the mapping; then switched, sent and sentVP8 record what went out.

const mgClock = 90000 // video clock rate

var mgT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// mgStep is one input packet given to the munger and what must come of it.
type mgStep struct {
	seq      uint16
	ts       uint32
	at       time.Duration // arrival, after mgT0
	hasVP8   bool
	pic      uint16
	picBytes int // 1: a 7-bit picture id; 2: 15-bit
	tl0      uint8

	layer     int32 // the simulcast layer it comes from
	switching bool  // the first packet of a layer switch (a keyframe)
	skip      bool  // dropped on purpose (padding, a temporal layer above the limit)
	picStart  bool  // the dropped packet starts a VP8 picture

	refused bool  // late and without a place: nothing goes out
	hasWant bool  // the packet goes out as want
	want    mgOut // (pic and tl0 checked for VP8 packets only)
}

type mgOut struct {
	seq uint16
	ts  uint32
	pic uint16
	tl0 uint8
}

// in is a packet without a VP8 descriptor (or a padding packet).
func in(seq uint16, ts uint32, at time.Duration) mgStep { return mgStep{seq: seq, ts: ts, at: at} }

// vp8 gives the packet a 15-bit picture id and a TL0PICIDX.
func (s mgStep) vp8(pic uint16, tl0 uint8) mgStep {
	s.hasVP8, s.pic, s.picBytes, s.tl0 = true, pic, 2, tl0
	return s
}

// vp8Short gives the packet a 7-bit picture id and a TL0PICIDX.
func (s mgStep) vp8Short(pic uint16, tl0 uint8) mgStep {
	s = s.vp8(pic, tl0)
	s.picBytes = 1
	return s
}

func (s mgStep) switches() mgStep { s.switching = true; return s }

// on puts the packet on a simulcast layer (0 unless said).
func (s mgStep) on(layer int32) mgStep { s.layer = layer; return s }

func (s mgStep) dropped(picStart bool) mgStep { s.skip, s.picStart = true, picStart; return s }

func (s mgStep) noPlace() mgStep { s.refused = true; return s }

func (s mgStep) out(seq uint16, ts uint32) mgStep {
	s.hasWant, s.want.seq, s.want.ts = true, seq, ts
	return s
}

func (s mgStep) outVP8(seq uint16, ts uint32, pic uint16, tl0 uint8) mgStep {
	s = s.out(seq, ts)
	s.want.pic, s.want.tl0 = pic, tl0
	return s
}

// drive gives one packet to the munger as writeRTP does. placed is false for a packet with no place; a skipped
// packet is placed but sends nothing.
func drive(mg *munger, s mgStep) (out mgOut, placed bool) {
	inOrder := mg.inOrder(s.seq, s.switching)
	m := mg.current()
	if !inOrder {
		var ok bool
		if m, ok = mg.lateMapping(s.seq, int8(s.layer)); !ok {
			return mgOut{}, false
		}
	}
	if s.skip {
		if !s.switching && inOrder {
			mg.skip(s.seq, m, s.hasVP8 && s.picStart && s.picBytes > 0)
		}
		return mgOut{}, true
	}
	arrival := mgT0.Add(s.at)
	if s.switching {
		var d *codec.VP8Descriptor
		if s.hasVP8 {
			d = &codec.VP8Descriptor{Start: true, Keyframe: true, PictureID: s.pic, PicIDBytes: s.picBytes, TL0PICIDX: s.tl0, HasTL0: true}
		}
		m = mg.switchMapping(s.seq, int8(s.layer), s.ts, arrival, mgClock, d)
	}
	out = mgOut{seq: s.seq + m.seqDelta, ts: s.ts + m.tsDelta}
	if s.hasVP8 {
		out.pic = (s.pic + m.picDelta) & codec.PictureIDMask(s.picBytes)
		out.tl0 = s.tl0 + m.tl0Delta
	}
	if s.switching {
		mg.switched(m)
	}
	if inOrder {
		mg.sent(s.seq, out.seq, out.ts, arrival)
		if s.hasVP8 {
			mg.sentVP8(out.pic, out.tl0)
		}
	}
	return out, true
}

// run is n in-order packets without a descriptor, one a frame 33 ms apart, from seq, ts and at on; they go out
// from outSeq and outTS on.
func run(n int, seq uint16, ts uint32, at time.Duration, outSeq uint16, outTS uint32) []mgStep {
	steps := make([]mgStep, n)
	for i := range steps {
		d := uint16(i)
		dt := uint32(i) * 3000
		steps[i] = in(seq+d, ts+dt, at+time.Duration(i)*33*time.Millisecond).out(outSeq+d, outTS+dt)
	}
	return steps
}

func steps(parts ...any) []mgStep {
	var all []mgStep
	for _, p := range parts {
		switch p := p.(type) {
		case mgStep:
			all = append(all, p)
		case []mgStep:
			all = append(all, p...)
		default:
			panic("steps: not a step")
		}
	}
	return all
}

const ms = time.Millisecond

func TestMunger(t *testing.T) {
	cases := []struct {
		name     string
		startSeq uint16 // the munger's first output sequence number less one
		startTS  uint32
		steps    []mgStep
	}{
		{
			// Output = input + a constant: the first packet goes out at start+1 (and one tick on in time: nothing
			// was sent before it); its picture id and TL0PICIDX go out unchanged. A jump ahead (loss upstream)
			// keeps the delta: the gap is real, the subscriber NACKs it.
			name: "steady stream", startSeq: 40000, startTS: 1_000_000,
			steps: steps(
				in(100, 500, 0).switches().vp8(7, 3).outVP8(40001, 1_000_001, 7, 3),
				in(101, 500, 1*ms).vp8(7, 3).outVP8(40002, 1_000_001, 7, 3),
				in(102, 3500, 33*ms).vp8(8, 4).outVP8(40003, 1_003_001, 8, 4),
				in(103, 6500, 66*ms).vp8(9, 4).outVP8(40004, 1_006_001, 9, 4),
				in(110, 9500, 99*ms).vp8(10, 4).outVP8(40011, 1_009_001, 10, 4),
				in(111, 12500, 132*ms).vp8(11, 5).outVP8(40012, 1_012_001, 11, 5),
			),
		},
		{
			// Input sequence numbers and timestamps wrap, and so do the output's one packet earlier; a late packet
			// from before the wrap is placed after it.
			name: "16-bit sequence and 32-bit timestamp wrap", startSeq: 65532, startTS: 4294967290,
			steps: steps(
				in(65534, 4294960000, 0).switches().out(65533, 4294967291),
				in(65535, 4294963000, 33*ms).out(65534, 2995),
				in(0, 4294966000, 66*ms).out(65535, 5995),
				in(1, 1704, 99*ms).out(0, 8995),
				in(2, 4704, 132*ms).out(1, 11995),
				in(65535, 4294963000, 140*ms).out(65534, 2995),
				in(3, 7704, 165*ms).out(2, 14995),
			),
		},
		{
			// A switch to another layer continues the stream: the next sequence number, the timestamp advanced by
			// the wall-clock gap (40 ms = 3600 ticks, then 10 ms = 900), the next picture id and TL0PICIDX.
			name: "layer switch", startSeq: 1000, startTS: 5000,
			steps: steps(
				in(200, 90000, 0).switches().vp8(300, 40).outVP8(1001, 5001, 300, 40),
				in(201, 90000, 1*ms).vp8(300, 40).outVP8(1002, 5001, 300, 40),
				in(202, 93000, 34*ms).vp8(301, 40).outVP8(1003, 8001, 301, 40),
				// layer B: other sequence numbers, timestamps and picture ids
				in(7000, 400000, 74*ms).switches().vp8(9000, 200).outVP8(1004, 11601, 302, 41),
				in(7001, 400000, 75*ms).vp8(9000, 200).outVP8(1005, 11601, 302, 41),
				in(7002, 403000, 107*ms).vp8(9001, 200).outVP8(1006, 14601, 303, 41),
				in(7003, 406000, 140*ms).vp8(9002, 201).outVP8(1007, 17601, 304, 42),
				// back to layer A, further on
				in(215, 130000, 150*ms).switches().vp8(313, 44).outVP8(1008, 18501, 305, 43),
				in(216, 133000, 183*ms).vp8(314, 44).outVP8(1009, 21501, 306, 43),
			),
		},
		{
			// The timestamp step of a switch is at least one tick (a packet of the new layer arriving at the same
			// instant, or before the last one sent, or 5 µs = 0.45 ticks after it) and at most 10 s; a layer with
			// 7-bit picture ids continues the picture ids modulo 128; TL0PICIDX wraps at 256.
			name: "switch timestamp bounds, 7-bit picture ids, TL0PICIDX wrap", startSeq: 0, startTS: 0,
			steps: steps(
				in(10, 1000, 0).switches().vp8(1000, 254).outVP8(1, 1, 1000, 254),
				in(500, 2000, 0).switches().vp8(5, 9).outVP8(2, 2, 1001, 255),
				in(900, 3000, -5*ms).switches().vp8(70, 9).outVP8(3, 3, 1002, 0),
				in(1000, 4000, -5*ms+5*time.Microsecond).switches().vp8(80, 9).outVP8(4, 4, 1003, 1),
				in(2000, 5000, time.Minute).switches().vp8Short(120, 7).outVP8(5, 900004, 108, 2),
				in(2001, 8000, time.Minute+33*ms).vp8Short(121, 7).outVP8(6, 900004+3000, 109, 2),
				in(2002, 11000, time.Minute+66*ms).vp8Short(127, 8).outVP8(7, 900004+6000, 115, 3),
				in(2003, 14000, time.Minute+99*ms).vp8Short(0, 8).outVP8(8, 900004+9000, 116, 3),
				// 1 ms after the last packet sent: 90 ticks
				in(3000, 0, time.Minute+100*ms).switches().vp8(32767, 0).outVP8(9, 900004+9000+90, 117, 4),
			),
		},
		{
			// Dropped packets leave no hole in the output; a dropped picture start (a temporal layer above the
			// limit) takes its picture id with it; a dropped packet that starts no picture (padding, a dropped
			// frame's second packet) does not.
			name: "temporal layer drop", startSeq: 500, startTS: 0,
			steps: steps(
				in(10, 3000, 0).switches().vp8(20, 5).outVP8(501, 1, 20, 5),
				in(11, 3000, 1*ms).vp8(20, 5).outVP8(502, 1, 20, 5),
				in(12, 6000, 33*ms).vp8(21, 5).dropped(true),
				in(13, 6000, 34*ms).vp8(21, 5).dropped(false),
				in(14, 9000, 66*ms).vp8(22, 5).outVP8(503, 6001, 21, 5),
				in(15, 9000, 67*ms).vp8(22, 5).outVP8(504, 6001, 21, 5),
				in(16, 12000, 99*ms).vp8(23, 5).dropped(true),
				in(17, 15000, 132*ms).vp8(24, 6).outVP8(505, 12001, 22, 6),
				in(18, 15000, 133*ms).dropped(false), // padding
				in(19, 18000, 165*ms).vp8(25, 6).outVP8(506, 15001, 23, 6),
			),
		},
		{
			// Late packets (reordered, retransmitted) go out with the mapping in force at their place in the input:
			// from before a drop, and from before a switch back onto the same layer (a pause, or a late drop, then
			// a keyframe): the same numbers a packet got, or would have got, in order. A late packet dropped on
			// purpose starts no mapping.
			name: "late packets", startSeq: 1000, startTS: 0,
			steps: steps(
				in(100, 3000, 0).switches().vp8(50, 9).outVP8(1001, 1, 50, 9),
				in(102, 6000, 33*ms).vp8(51, 9).outVP8(1003, 3001, 51, 9), // 101 lost upstream for now
				in(103, 9000, 66*ms).vp8(52, 9).dropped(true),
				in(104, 12000, 99*ms).vp8(53, 10).outVP8(1004, 9001, 52, 10),
				in(101, 3000, 110*ms).vp8(50, 9).outVP8(1002, 1, 50, 9), // retransmitted: before the drop
				in(103, 9000, 115*ms).vp8(52, 9).dropped(true),          // the dropped one again
				in(105, 12000, 120*ms).vp8(53, 10).outVP8(1005, 9001, 52, 10),
				// paused: 106 to 109 never reach the munger; the keyframe at 110 restarts the layer
				in(110, 27000, 220*ms).switches().vp8(58, 11).outVP8(1006, 18001, 53, 11),
				in(111, 27000, 221*ms).vp8(58, 11).outVP8(1007, 18001, 53, 11),
				in(104, 12000, 230*ms).vp8(53, 10).outVP8(1004, 9001, 52, 10), // before the switch
				in(102, 6000, 231*ms).vp8(51, 9).outVP8(1003, 3001, 51, 9),    // before the switch and the drop
				in(112, 30000, 253*ms).vp8(59, 11).outVP8(1008, 21001, 54, 11),
				in(111, 27000, 260*ms).vp8(58, 11).outVP8(1007, 18001, 53, 11), // reordered by one
				in(113, 33000, 286*ms).vp8(60, 11).outVP8(1009, 24001, 55, 11),
			),
		},
		{
			// A packet from before the first mapping has no place; one again, the newest or older, is placed where
			// it was (a retransmission, or a duplicate upstream that the subscriber discards).
			name: "before every mapping", startSeq: 0, startTS: 0,
			steps: steps(
				in(100, 0, 0).switches().out(1, 1),
				in(101, 3000, 33*ms).out(2, 3001),
				in(99, 0, 40*ms).noPlace(),
				in(101, 3000, 41*ms).out(2, 3001),
				in(100, 0, 42*ms).out(1, 1),
				in(102, 6000, 66*ms).out(3, 6001),
			),
		},
		{
			// mapWindow: a packet 4096 behind the newest is placed, 4097 behind is not.
			name: "too old", startSeq: 0, startTS: 0,
			steps: steps(
				in(0, 0, 0).switches().out(1, 1),
				run(5000, 1, 3000, 33*ms, 2, 3001),
				in(904, 904*3000, 200*time.Second).out(905, 904*3000+1),
				in(903, 903*3000, 200*time.Second).noPlace(),
				in(5001, 5001*3000, 200*time.Second).out(5002, 5001*3000+1),
			),
		},
		{
			// A run of drops costs one mapping, however long: a packet from before 40 dropped packets (a few
			// frames of upper temporal layers) is still placed when it is retransmitted.
			name: "a long run of drops after a switch", startSeq: 0, startTS: 0,
			steps: steps(
				in(100, 0, 0).switches().out(1, 1),
				drops(101, 40),
				in(141, 3000, 50*ms).out(2, 3001),
				in(100, 0, 60*ms).out(1, 1),
			),
		},
		{
			// mapHistory counts runs: with the switch's mapping and 15 runs of drops kept, a packet from before
			// them is placed; one run more and the switch's mapping is forgotten.
			name: "15 runs of drops after a switch", startSeq: 0, startTS: 0,
			steps: steps(
				in(100, 0, 0).switches().out(1, 1),
				dropRuns(101, 15, 1, 2),
				in(100, 0, 60*ms).out(1, 1),
			),
		},
		{
			name: "16 runs of drops after a switch", startSeq: 0, startTS: 0,
			steps: steps(
				in(100, 0, 0).switches().out(1, 1),
				dropRuns(101, 16, 1, 2),
				in(100, 0, 60*ms).noPlace(),
				in(101+32, 6000, 83*ms).out(1+16+1, 6001),
			),
		},
		{
			// A stream that goes on for more than 32768 packets without a new mapping: late packets still have
			// their place, up to mapWindow behind. 60000 goes out at 1 (seqDelta 5537), 60011 on at 60011+5536.
			name: "40000 packets without a new mapping", startSeq: 0, startTS: 0,
			steps: steps(
				in(60000, 0, 0).switches().out(1, 1),
				run(9, 60001, 3000, 33*ms, 2, 3001),
				in(60010, 30000, 330*ms).dropped(false),
				run(40000, 60011, 33000, 363*ms, 11, 33001), // 60011+5536 = 11 (mod 65536)
				// the newest is 60011+39999 = 34474
				in(34473, 33000+39998*3000, 2000*time.Second).out(34473+5536, 33001+39998*3000),
				in(34474-4096, 33000+(39999-4096)*3000, 2000*time.Second).out(34474-4096+5536, 33001+(39999-4096)*3000),
				in(34474-4097, 0, 2000*time.Second).noPlace(),
				in(34475, 33000+40000*3000, 2000*time.Second).out(34475+5536, 33001+40000*3000),
			),
		},
		{
			// The same, 100000 packets on: the distance from the mapping's start is past 32768 again.
			name: "100000 packets without a new mapping", startSeq: 0, startTS: 0,
			steps: steps(
				in(0, 0, 0).switches().out(1, 1),
				run(100000, 1, 3000, 33*ms, 2, 3001),
				// the newest is 100000 % 65536 = 34464
				in(34460, 99996*3000, 5000*time.Second).out(34461, 99996*3000+1),
				in(34464-4096, (100000-4096)*3000, 5000*time.Second).out(34464-4096+1, (100000-4096)*3000+1),
				in(34464-4097, 0, 5000*time.Second).noPlace(),
			),
		},
		{
			// A video paused (or dropped for the latency budget) and restarted on a keyframe of the same layer:
			// the packets between were never sent, so a late one of them has no place (it would take the
			// sequence number of a packet sent after the restart).
			name: "late packet from a restart's gap", startSeq: 1000, startTS: 0,
			steps: steps(
				in(100, 0, 0).switches().out(1001, 1),
				in(101, 3000, 33*ms).out(1002, 3001),
				// 102 to 109 are not forwarded: waiting for a keyframe
				in(110, 30000, 300*ms).switches().out(1003, 3001+24030),
				in(111, 33000, 333*ms).out(1004, 30031),
				in(105, 15000, 340*ms).noPlace(),
				in(112, 36000, 366*ms).out(1005, 33031),
			),
		},
		{
			// After a switch, a late packet of the new layer from before its keyframe was never sent: it has no
			// place, and the old layer's mapping must not give it one.
			name: "late packet of the new layer from before the switch", startSeq: 1000, startTS: 0,
			steps: steps(
				in(1000, 0, 0).switches().out(1001, 1),
				in(1001, 3000, 33*ms).out(1002, 3001),
				in(2000, 50000, 40*ms).on(1).switches().out(1003, 3631),
				in(2001, 53000, 73*ms).on(1).out(1004, 6631),
				in(1999, 47000, 80*ms).on(1).noPlace(),
				in(2002, 56000, 106*ms).on(1).out(1005, 9631),
			),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mg munger
			mg.start(c.startSeq, c.startTS)
			for i, s := range c.steps {
				if !s.refused && !s.skip && !s.hasWant {
					t.Fatalf("step %d (seq %d): the table gives no expectation", i, s.seq)
				}
				got, placed := drive(&mg, s)
				switch {
				case s.refused && placed:
					t.Fatalf("step %d: late packet %d placed (out %+v), want no place", i, s.seq, got)
				case !s.refused && !placed:
					t.Fatalf("step %d: packet %d has no place, want %+v", i, s.seq, s.want)
				case s.hasWant:
					want := s.want
					if !s.hasVP8 {
						want.pic, want.tl0 = 0, 0
					}
					if got != want {
						t.Fatalf("step %d: packet %d (ts %d, pic %d, tl0 %d) went out as %+v, want %+v",
							i, s.seq, s.ts, s.pic, s.tl0, got, want)
					}
				}
			}
		})
	}
}

// dropRuns is n runs of one dropped packet and one sent, from seq on, the first sent going out at out+1.
func dropRuns(seq uint16, n int, out uint16, perRun int) []mgStep {
	var s []mgStep
	for i := 0; i < n; i++ {
		base := seq + uint16(i*perRun)
		s = append(s, in(base, 0, time.Duration(i)*ms).dropped(false))
		s = append(s, in(base+1, 0, time.Duration(i)*ms).out(out+1+uint16(i), 1))
	}
	return s
}

// drops is n consecutive in-order packets from seq on, dropped on purpose (padding).
func drops(seq uint16, n int) []mgStep {
	var s []mgStep
	for i := 0; i < n; i++ {
		s = append(s, in(seq+uint16(i), 0, time.Duration(i)*ms).dropped(false))
	}
	return s
}

// Whatever the random start and whatever the input's first numbers, output = input + a constant, and the first
// packet goes out at start+1.
func TestMungerRandomStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type start struct {
		outSeq, inSeq uint16
		outTS, inTS   uint32
	}
	starts := []start{{0, 0, 0, 0}, {65535, 65535, 0xffffffff, 0xffffffff}, {65535, 0, 0, 0xffffffff}, {0, 65535, 0xffffffff, 0}}
	for i := 0; i < 50; i++ {
		starts = append(starts, start{uint16(rng.Uint32()), uint16(rng.Uint32()), rng.Uint32(), rng.Uint32()})
	}
	for _, st := range starts {
		var mg munger
		mg.start(st.outSeq, st.outTS)
		seqDelta, tsDelta := st.outSeq+1-st.inSeq, st.outTS+1-st.inTS
		for i := 0; i < 300; i++ {
			s := in(st.inSeq+uint16(i), st.inTS+uint32(i/2)*3000, time.Duration(i/2)*33*ms)
			s.switching = i == 0
			if i%10 == 9 { // and an older packet again (a retransmission)
				s = in(st.inSeq+uint16(i-3), st.inTS+uint32((i-3)/2)*3000, time.Duration(i/2)*33*ms)
			}
			got, placed := drive(&mg, s)
			if !placed || got.seq != s.seq+seqDelta || got.ts != s.ts+tsDelta {
				t.Fatalf("start %+v, packet %d (seq %d ts %d): placed %v, out %d/%d, want %d/%d",
					st, i, s.seq, s.ts, placed, got.seq, got.ts, s.seq+seqDelta, s.ts+tsDelta)
			}
		}
	}
}
