package forward

import (
	"io"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

var opusParams = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}

// TestSilencedAudio: a silenced microphone reaches no subscriber, including one who subscribes while it is
// silenced, its levels are still measured, and when it is forwarded again each subscriber's stream goes on with
// consecutive sequence numbers and timestamps that move forward.
func TestSilencedAudio(t *testing.T) {
	r := NewReceiver(ReceiverConfig{ID: "mic", Kind: webrtc.RTPCodecTypeAudio, Codec: opusParams, AudioLevelID: 1})
	r.StartLayer(0, 7, "")
	early, late := NewDownTrack(r, "pub", nil), NewDownTrack(r, "pub", nil)
	we, wl := &captureWriter{keep: true}, &captureWriter{keep: true}
	bind(early, 1, 111, we)
	bind(late, 2, 111, wl)
	r.AddDownTrack(early)

	seq, ts := uint16(65000), uint32(0)
	speak := func(n int) {
		for i := 0; i < n; i++ {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 7},
				Payload: []byte{0xfc, 1, 2, 3}}
			ext, _ := (&rtp.AudioLevelExtension{Level: 20, Voice: true}).Marshal()
			_ = p.SetExtension(1, ext)
			r.writePacket(&Packet{pkt: p, arrival: time.Now()}, 40)
			seq++
			ts += 960
		}
	}
	speak(10)
	if !r.SetSilenced(true) || r.SetSilenced(true) {
		t.Fatal("SetSilenced does not report the change, or reports one that is none")
	}
	r.AddDownTrack(late)
	before := r.Levels()
	speak(50)
	if got := len(we.headers); got != 10 {
		t.Fatalf("a silenced track still reached a subscriber: %d packets, want the 10 sent before", got)
	}
	if len(wl.headers) != 0 {
		t.Fatalf("a subscriber who came while the track was silenced got %d packets", len(wl.headers))
	}
	if level, voiced := r.Levels().Since(before); voiced < 0.99 || level < 0.8 {
		t.Fatalf("levels not measured while silenced: level %.2f voiced %.2f", level, voiced)
	}
	r.SetSilenced(false)
	speak(10)
	if len(we.headers) != 20 || len(wl.headers) != 10 {
		t.Fatalf("after resuming: %d and %d packets, want 20 and 10", len(we.headers), len(wl.headers))
	}
	for i := 1; i < len(we.headers); i++ {
		a, b := we.headers[i-1], we.headers[i]
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d: the pause left a gap", i, b.SequenceNumber, a.SequenceNumber)
		}
		if int32(b.Timestamp-a.Timestamp) <= 0 {
			t.Fatalf("packet %d: timestamp %d after %d does not move forward", i, b.Timestamp, a.Timestamp)
		}
	}
	video := simulcastReceiver(&nopRTCP{}, 1)
	if video.SetSilenced(true) || video.Silenced() {
		t.Fatal("a video track was silenced")
	}
}

// countingStage is an in-path stage that takes every packet and counts them.
type countingStage struct{ n int }

func (s *countingStage) Push([]byte, time.Time) bool { s.n++; return true }

// TestBlockedTrackSkipsInPath: a track an administrator blocked reaches no in-path stage (denoise, captions), so
// nothing of it is processed or transcribed; unblocked, it does again.
func TestBlockedTrackSkipsInPath(t *testing.T) {
	r := NewReceiver(ReceiverConfig{ID: "mic", Kind: webrtc.RTPCodecTypeAudio, Codec: opusParams})
	r.StartLayer(0, 7, "")
	stage := &countingStage{}
	r.SetInPath(stage)
	feed := func(n int) {
		seq := uint16(0)
		read := func(b []byte) (int, error) {
			if int(seq) >= n {
				return 0, io.EOF
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, SSRC: 7}, Payload: []byte{0xfc, 1}}
			seq++
			return p.MarshalTo(b)
		}
		if err := r.Forward(0, read); err != nil {
			t.Fatal(err)
		}
	}
	r.SetBlocked(true)
	feed(20)
	if stage.n != 0 {
		t.Fatalf("a blocked track's packets reached the in-path stage: %d", stage.n)
	}
	r.SetBlocked(false)
	feed(20)
	if stage.n != 20 {
		t.Fatalf("after unblocking the stage got %d packets, want 20", stage.n)
	}
}
