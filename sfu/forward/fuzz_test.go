package forward

import (
	"maps"
	"slices"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// fuzzRTCPWriter stands in for the publisher's connection: it takes the keyframe requests a DownTrack passes on.
type fuzzRTCPWriter struct{}

func (fuzzRTCPWriter) WriteRTCP([]rtcp.Packet) error { return nil }

// rtcpSeeds are real feedback packets a subscriber sends, one of each kind and a compound of them.
func rtcpSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	pli := &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}
	fir := &rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 2, FIR: []rtcp.FIREntry{{SSRC: 2, SequenceNumber: 7}}}
	nack := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{
		{PacketID: 100, LostPackets: 0}, {PacketID: 120, LostPackets: 0b1010_0000_0000_0101}, {PacketID: 65530, LostPackets: 0xffff}}}
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2, FractionLost: 25, TotalLost: 40,
		LastSequenceNumber: 0x0001_2345, Jitter: 90, LastSenderReport: 0x1234_5678, Delay: 655}}}
	remb := &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1.5e6, SSRCs: []uint32{2, 3}}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1,
		Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "subscriber"}}}}}
	bye := &rtcp.Goodbye{Sources: []uint32{1}, Reason: "leaving"}
	// The transport-wide congestion control feedback example of RFC draft-holmer-rmcat-transport-wide-cc-extensions,
	// as pion/rtcp's own tests carry it: one run-length chunk and two receive deltas.
	twcc := []byte{
		0xaf, 0xcd, 0x00, 0x05,
		0xfa, 0x17, 0xfa, 0x17,
		0x43, 0x03, 0x2f, 0xa0,
		0x00, 0x99, 0x00, 0x01,
		0x3d, 0xe8, 0x02, 0x17,
		0x20, 0x01, 0x94, 0x01,
	}
	seeds := map[string][]byte{"twcc": twcc}
	for name, p := range map[string]rtcp.Packet{"pli": pli, "fir": fir, "nack": nack, "rr": rr, "remb": remb} {
		b, err := p.Marshal()
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		seeds[name] = b
	}
	compound, err := rtcp.Marshal([]rtcp.Packet{rr, sdes, remb, nack, pli, fir, bye})
	if err != nil {
		tb.Fatal(err)
	}
	seeds["compound"] = append(compound, twcc...)
	for name, b := range seeds {
		if _, err := rtcp.Unmarshal(b); err != nil {
			tb.Fatalf("seed %s does not parse: %v", name, err)
		}
	}
	// Garbage, and damaged versions of the real packets.
	seeds["empty"] = nil
	seeds["garbage"] = []byte("\x80\xc9\x00\x07 not rtcp at all, just bytes \xff\xfe\x00")
	seeds["nack-truncated"] = seeds["nack"][:len(seeds["nack"])-3]
	longNack := append([]byte(nil), seeds["nack"]...)
	longNack[2], longNack[3] = 0xff, 0xff // a length far beyond the packet
	seeds["nack-long"] = longNack
	zeroLen := append([]byte(nil), seeds["compound"]...)
	zeroLen[2], zeroLen[3] = 0, 0 // the first packet claims to be its header alone
	seeds["compound-zero-length"] = zeroLen
	return seeds
}

// FuzzRTCP feeds whatever parses as RTCP to a video and an audio DownTrack's feedback handling, as if a
// subscriber had sent it: it must not panic, and the NACK counter must grow by the packets the NACKs name.
func FuzzRTCP(f *testing.F) {
	seeds := rtcpSeeds(f)
	for _, name := range slices.Sorted(maps.Keys(seeds)) {
		f.Add(seeds[name])
	}
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	video := NewReceiver(ReceiverConfig{ID: "v", Kind: webrtc.RTPCodecTypeVideo, Codec: vp8, RTCP: fuzzRTCPWriter{}})
	video.StartLayer(0, 100, "")
	audio := NewReceiver(ReceiverConfig{ID: "a", Kind: webrtc.RTPCodecTypeAudio, Codec: opus, RTCP: fuzzRTCPWriter{}})
	audio.StartLayer(0, 200, "")
	f.Cleanup(func() {
		video.Close()
		audio.Close()
	})
	dv := NewDownTrack(video, "PA_pub", nil)
	dv.SetTargetLayer(0)
	da := NewDownTrack(audio, "PA_pub", nil)

	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, err := rtcp.Unmarshal(data)
		if err != nil {
			return
		}
		var want uint64
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				for _, pair := range n.Nacks {
					want += uint64(len(pair.PacketList()))
				}
			}
		}
		before := video.Counters().NACKs
		dv.HandleRTCP(pkts)
		if got := video.Counters().NACKs - before; got != want {
			t.Errorf("NACK counter grew by %d, want %d, for %v", got, want, pkts)
		}
		da.HandleRTCP(pkts)
	})
}
