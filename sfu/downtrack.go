package sfu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DownTrack is one subscriber's copy of a published track: a webrtc.TrackLocal added to the subscriber's
// connection. It rewrites each packet for that subscriber (its SSRC, payload type, and sequence numbers and
// timestamps that run on from wherever this subscriber's stream started) and starts video on a keyframe.
type DownTrack struct {
	streamID string // the publishing participant's id: the browser groups a participant's tracks by it
	receiver *Receiver
	owner    *Participant // the subscriber

	bound atomic.Pointer[binding]

	// Per-packet state, touched only by the receiver's read goroutine.
	hdr      rtp.Header
	ext      [4]rtp.Extension // room for interceptors to add header extensions without allocating
	started  bool
	firstSeq uint16
	seqDelta uint16
	tsDelta  uint32
	sent     atomic.Uint64
}

type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
}

func newDownTrack(r *Receiver, streamID string, owner *Participant) *DownTrack {
	d := &DownTrack{streamID: streamID, receiver: r, owner: owner}
	// Start the subscriber's sequence numbers and timestamps at random values (RFC 3550 section 5.1).
	d.seqDelta = uint16(rand.Uint32())
	d.tsDelta = rand.Uint32()
	return d
}

// ID is the published track's id.
func (d *DownTrack) ID() string { return d.receiver.id }

// RID is empty: a subscriber receives one encoding.
func (d *DownTrack) RID() string { return "" }

// StreamID is the publishing participant's id.
func (d *DownTrack) StreamID() string { return d.streamID }

// Kind is audio or video.
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.receiver.kind }

// Receiver is the published track this DownTrack copies.
func (d *DownTrack) Receiver() *Receiver { return d.receiver }

// Bind is called by Pion when the subscriber's connection has negotiated the track: it picks the payload type
// the subscriber agreed for the publisher's codec and asks the publisher for a keyframe to start on once the
// subscriber's connection is up.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	want := d.receiver.codec
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, want.MimeType) && fmtpCompatible(c, want) {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()})
			if d.owner == nil || d.owner.subConnected.Load() {
				d.receiver.RequestKeyframe()
			} // else the request goes out when the subscriber connects: a keyframe before then would be lost
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("subscriber does not accept %s: %w", want.MimeType, webrtc.ErrUnsupportedCodec)
}

// fmtpCompatible matches H.264 by packetization mode and profile; other codecs by name alone.
func fmtpCompatible(a, b webrtc.RTPCodecParameters) bool {
	if !strings.EqualFold(a.MimeType, webrtc.MimeTypeH264) {
		return true
	}
	return fmtpValue(a.SDPFmtpLine, "packetization-mode") == fmtpValue(b.SDPFmtpLine, "packetization-mode") &&
		profileIDC(fmtpValue(a.SDPFmtpLine, "profile-level-id")) == profileIDC(fmtpValue(b.SDPFmtpLine, "profile-level-id"))
}

func fmtpValue(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return strings.ToLower(v)
		}
	}
	return ""
}

func profileIDC(plid string) string {
	if len(plid) < 2 {
		return ""
	}
	return plid[:2]
}

// Unbind is called by Pion when the track leaves the subscriber's connection.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// writeRTP rewrites pkt for this subscriber and sends it; it reports whether the packet went out. key says the
// packet starts a keyframe. Called only from the receiver's read goroutine.
func (d *DownTrack) writeRTP(pkt *rtp.Packet, key bool) bool {
	b := d.bound.Load()
	if b == nil {
		return false
	}
	if !d.started {
		if d.receiver.kind == webrtc.RTPCodecTypeVideo && !key {
			d.receiver.RequestKeyframe() // throttled; the subscriber cannot decode until one arrives
			return false
		}
		// The subscriber's stream continues from its last sequence number and timestamp.
		d.seqDelta -= pkt.SequenceNumber
		d.tsDelta -= pkt.Timestamp
		d.firstSeq = pkt.SequenceNumber
	} else if int16(pkt.SequenceNumber-d.firstSeq) < 0 {
		return false // older than the packet this subscriber started on
	}

	h := &d.hdr
	*h = pkt.Header
	h.Extension = false
	h.Extensions = d.ext[:0]
	h.Padding = false
	h.PaddingSize = 0
	h.SSRC = b.ssrc
	h.PayloadType = b.pt
	h.SequenceNumber += d.seqDelta
	h.Timestamp += d.tsDelta
	n, err := b.w.WriteRTP(h, pkt.Payload)
	if err != nil || n == 0 {
		if !d.started { // not connected yet: undo, and start on a later keyframe
			d.seqDelta += pkt.SequenceNumber
			d.tsDelta += pkt.Timestamp
		}
		return false
	}
	d.started = true
	d.sent.Add(1)
	return true
}

// handleRTCP acts on the subscriber's feedback: keyframe requests go to the publisher (throttled) and NACKs are
// counted (Pion's NACK responder retransmits from its own buffer of what this DownTrack sent).
func (d *DownTrack) handleRTCP(pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			d.receiver.RequestKeyframe()
		case *rtcp.TransportLayerNack:
			var lost uint64
			for _, n := range p.Nacks {
				lost += uint64(len(n.PacketList()))
			}
			d.receiver.stats.nacks.Add(lost)
		}
	}
}

// readRTCP reads the subscriber's RTCP for this track until the sender stops.
func (d *DownTrack) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		d.handleRTCP(pkts)
	}
}
