package forward

import "testing"

// A DownTrack of another track that continues a first one's stream (a WHEP section taking the room's next track)
// starts on the new track's keyframe and goes on from the first one's last packet: the next sequence number and
// picture id, a later timestamp, the same SSRC and payload type. The first sends nothing more.
func TestDownTrackContinueFrom(t *testing.T) {
	pli := &nopRTCP{}
	first := simulcastReceiver(pli, 1)
	defer first.Close()
	second := simulcastReceiver(pli, 1)
	defer second.Close()
	w := &captureWriter{keep: true}

	a := NewDownTrack(first, "PA_one", nil)
	bind(a, 999, 96, w)
	first.AddDownTrack(a)
	s1 := &vp8Stream{layer: 0, seq: 1000, ts: 50000, picID: 10}
	send(first, s1, true)
	for range 5 {
		send(first, s1, false)
	}
	n := len(w.headers)

	b := NewDownTrack(second, "PA_two", nil)
	b.ContinueFrom(a)
	bind(b, 999, 96, w)
	second.AddDownTrack(b)
	send(first, s1, false) // an old packet in flight to a: not sent any more
	if len(w.headers) != n {
		t.Fatalf("the first copy sent %d packets after it was continued", len(w.headers)-n)
	}
	s2 := &vp8Stream{layer: 0, seq: 40000, ts: 9000000, picID: 20000}
	send(second, s2, false) // no keyframe yet: nothing
	if len(w.headers) != n {
		t.Fatalf("%d packets of the second track before its keyframe", len(w.headers)-n)
	}
	send(second, s2, true)
	for range 5 {
		send(second, s2, false)
	}
	if len(w.headers) != n+12 || !w.keys[n] {
		t.Fatalf("the second track: %d packets, the first a keyframe: %v; want 12, true", len(w.headers)-n, len(w.keys) > n && w.keys[n])
	}
	checkContinuous(t, w)
}
