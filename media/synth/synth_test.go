package synth

import (
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtp/codecs"
)

func TestVP8FrameIsDetectedAfterPacketization(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	for _, key := range []bool{true, false} {
		frame := VP8Frame(nil, 3000, key, 1280, 720, Stamp{Seq: 42, Sent: now})
		pay := &codecs.VP8Payloader{EnablePictureID: true}
		pkts := pay.Payload(1200, frame)
		if len(pkts) < 3 {
			t.Fatalf("3000-byte frame in %d packets, want at least 3", len(pkts))
		}
		if got := codec.IsVP8Keyframe(pkts[0]); got != key {
			t.Errorf("key=%v: first packet detected as keyframe=%v", key, got)
		}
		if codec.IsVP8Keyframe(pkts[1]) {
			t.Errorf("key=%v: second packet detected as a keyframe start", key)
		}
		s, ok := FindStamp(pkts[0])
		if !ok || s.Seq != 42 || !s.Sent.Equal(now) {
			t.Errorf("stamp from first packet = %+v, %v; want seq 42 at %v", s, ok, now)
		}
	}
}

func TestOpusStamp(t *testing.T) {
	now := time.Now()
	s, ok := FindStamp(OpusFrame(nil, 80, Stamp{Seq: 7, Sent: now}))
	if !ok || s.Seq != 7 || !s.Sent.Equal(now.Round(0)) {
		t.Fatalf("stamp = %+v, %v", s, ok)
	}
	if _, ok := FindStamp(make([]byte, 100)); ok {
		t.Fatal("found a stamp in zeros")
	}
}
