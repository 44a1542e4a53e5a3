package main

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// speakingTrack publishes Opus packets carrying an RFC 6464 audio level that the test sets.
type speakingTrack struct {
	track *webrtc.TrackLocalStaticRTP
	level chan uint8 // -dBov: 0 loud, 127 silent
}

func publishSpeaking(t *testing.T, ctx context.Context, m *mediaRun, tc *testClient) *speakingTrack {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic-"+tc.ID(), tc.ID())
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	senders, err := tc.Publish(pctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	var extID uint8
	for _, e := range senders[0].GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			extID = uint8(e.ID)
		}
	}
	if extID == 0 {
		t.Fatal("audio level extension not negotiated")
	}
	st := &speakingTrack{track: tr, level: make(chan uint8, 1)}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		level := uint8(127)
		var buf []byte
		for i := uint32(0); ; i++ {
			select {
			case <-m.ctx.Done():
				return
			case level = <-st.level:
			case <-tick.C:
				buf = synth.OpusFrame(buf, 60, synth.Stamp{Seq: i, Sent: time.Now()})
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: buf}
				ext, _ := (&rtp.AudioLevelExtension{Level: level, Voice: level < 50}).Marshal()
				if err := pkt.SetExtension(extID, ext); err != nil {
					return
				}
				if err := tr.WriteRTP(pkt); err != nil {
					return
				}
			}
		}
	}()
	return st
}

// TestActiveSpeakers: the participant whose audio levels are loud is announced as the active speaker, and the
// announcement follows when someone else starts speaking.
func TestActiveSpeakers(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	a := joinClient(t, ctx, n, "talk", "alice")
	b := joinClient(t, ctx, n, "talk", "bob")
	c := joinClient(t, ctx, n, "talk", "carol") // listens
	sa := publishSpeaking(t, ctx, media, a)
	sb := publishSpeaking(t, ctx, media, b)

	leading := func(id string) func(client.Message) bool {
		return func(m client.Message) bool {
			return m.Type == "active_speakers" && len(m.Speakers) > 0 && m.Speakers[0].ParticipantID == id
		}
	}
	sa.level <- 10 // alice speaks
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := client.WaitFor(wctx, c.events, leading(a.ID())); err != nil {
		t.Fatalf("carol never heard alice announced as the speaker: %v", err)
	}
	sa.level <- 127 // alice stops, bob speaks
	sb.level <- 20
	if _, err := client.WaitFor(wctx, c.events, leading(b.ID())); err != nil {
		t.Fatalf("carol never heard bob announced after alice stopped: %v", err)
	}
	sb.level <- 127
	if _, err := client.WaitFor(wctx, c.events, func(m client.Message) bool {
		return m.Type == "active_speakers" && len(m.Speakers) == 0
	}); err != nil {
		t.Fatalf("no empty speaker list after silence: %v", err)
	}
}

// TestTrackSource: a track declared as a screen share is announced with that source.
func TestTrackSource(t *testing.T) {
	n := startTestNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	a := joinClient(t, ctx, n, "share", "alice")
	b := joinClient(t, ctx, n, "share", "bob")
	if err := a.Send(map[string]string{"type": "track_source", "track": "video-" + a.ID(), "source": "screen"}); err != nil {
		t.Fatal(err)
	}
	media.publish(t, a)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	m, err := client.WaitFor(wctx, b.events, func(m client.Message) bool {
		return m.Type == "track_published" && m.Track != nil && m.Track.Kind == "video"
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Track.Source != "screen" {
		t.Fatalf("video published with source %q, want screen", m.Track.Source)
	}
	if err := a.Send(map[string]string{"type": "track_source", "track": "video-" + a.ID(), "source": "camera"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.WaitFor(wctx, a.events, func(m client.Message) bool {
		return m.Type == "error" && m.Code == "out_of_order" && m.Ref == "track_source"
	}); err != nil {
		t.Fatalf("changing the source of a published track was not refused: %v", err)
	}
}

// TestLoudestMicrophonesForwarded: with four open microphones and a limit of two, a listener receives the two
// that speak and nothing of the silent ones; when one speaker stops and another starts, the newcomer is heard and
// the listener still receives at most two.
func TestLoudestMicrophonesForwarded(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.MaxAudioStreams = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	media := startMedia(t, ctx)
	var mics []*speakingTrack
	var ids []string
	for _, name := range []string{"ann", "ben", "cat", "dan"} {
		tc := joinClient(t, ctx, n, "allhands", name)
		mics = append(mics, publishSpeaking(t, ctx, media, tc))
		ids = append(ids, tc.ID())
	}
	listener := joinClient(t, ctx, n, "allhands", "listener")
	// window counts the audio packets from each microphone over d.
	window := func(d time.Duration) []int64 {
		before := make([]int64, len(ids))
		for i, id := range ids {
			before[i] = listener.stats(id, "audio").packets.Load()
		}
		time.Sleep(d)
		got := make([]int64, len(ids))
		for i, id := range ids {
			got[i] = listener.stats(id, "audio").packets.Load() - before[i]
		}
		return got
	}
	mics[0].level <- 10
	mics[1].level <- 15
	eventually(t, 10*time.Second, "the two speakers are heard", func() bool {
		w := window(300 * time.Millisecond)
		return w[0] > 0 && w[1] > 0
	})
	if w := window(time.Second); w[0] < 20 || w[1] < 20 || w[2] != 0 || w[3] != 0 {
		t.Fatalf("packets in one second from ann, ben, cat, dan: %v; want the speakers' only", w)
	}
	mics[0].level <- 127 // ann stops; cat starts
	mics[2].level <- 20
	eventually(t, 10*time.Second, "cat is heard after ann stopped", func() bool {
		return window(300 * time.Millisecond)[2] > 0
	})
	if w := window(time.Second); w[1] < 20 || w[2] < 20 || w[0] != 0 || w[3] != 0 {
		t.Fatalf("packets in one second from ann, ben, cat, dan: %v; want ben's and cat's only", w)
	}
}
