package forward

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Conn is what a DownTrack needs to know of its subscriber's connection: whether it is up, so that a keyframe
// asked for now reaches it.
type Conn interface {
	Connected() bool
}

// DownTrack is one subscriber's copy of a published track: a webrtc.TrackLocal added to the subscriber's
// connection. It forwards one simulcast layer at a time, switches layers on a keyframe of the new layer, drops
// temporal layers above its limit, and rewrites every packet (SSRC, payload type, sequence number, timestamp,
// VP8 picture id and TL0PICIDX) so that the subscriber sees one continuous stream whatever layer it comes from.
type DownTrack struct {
	streamID string // the publishing participant's id: the browser groups a participant's tracks by it
	receiver *Receiver
	conn     Conn   // nil: always connected
	id       string // the track id the subscriber sees: the receiver's, or a layer copy's own (NewLayerDownTrack)
	layerOf  bool   // a copy of one layer (NewLayerDownTrack): its temporal layers are not cut when late

	bound       atomic.Pointer[binding]
	current     atomic.Int32 // layer being forwarded; -1 before the first keyframe and while paused
	target      atomic.Int32 // layer wanted; -1 pauses the track
	maxTemporal atomic.Int32 // highest VP8 temporal layer forwarded
	desired     atomic.Int32 // the layer the subscriber would take, bandwidth aside (-1: none); dynacast keeps it on
	boundNanos  atomic.Int64 // when the subscriber's connection took the track
	sent        atomic.Uint64
	lateDrops   atomic.Uint64 // frames (or audio packets) past the SFU's latency budget

	// Packets of two layers can arrive at once during a switch, from two read goroutines: mu serialises them.
	mu  sync.Mutex
	mg  munger
	hdr rtp.Header
	ext [4]rtp.Extension // room for interceptors to add header extensions without allocating
	buf [1500]byte       // a private copy of a payload whose descriptor is rewritten

	rtx *rtxScratch // the RTCP reader's, for retransmissions
}

type binding struct {
	ssrc      uint32
	pt        uint8
	playoutID uint8 // the playout-delay extension's id, 0 when the subscriber did not take it
	levelID   uint8 // the audio-level extension's id (RFC 6464), 0 when the subscriber did not take it
	w         webrtc.TrackLocalWriter
}

// AllTemporal forwards every temporal layer.
const AllTemporal = 3

// NewDownTrack makes a subscriber's copy of r. streamID is the publisher's id; conn is the subscriber's
// connection (nil: always up). A video starts aiming at the highest layer being received; audio at its one layer.
func NewDownTrack(r *Receiver, streamID string, conn Conn) *DownTrack {
	d := &DownTrack{streamID: streamID, receiver: r, conn: conn, id: r.id}
	d.current.Store(-1)
	d.desired.Store(-1)
	d.maxTemporal.Store(AllTemporal)
	if r.kind == webrtc.RTPCodecTypeVideo { // audio has one layer, 0
		d.target.Store(-1)
		active := r.ActiveLayers()
		for l := MaxLayers - 1; l >= 0; l-- {
			if active[l] {
				d.target.Store(int32(l))
				break
			}
		}
	}
	// Start the subscriber's sequence numbers and timestamps at random values (RFC 3550 section 5.1).
	d.mg.start(uint16(rand.Uint32()), rand.Uint32())
	return d
}

// NewLayerDownTrack makes a copy of one layer of r, seen by the subscriber as the track id: a relay between nodes
// receives each layer of a simulcast video as a track of its own, and republishes them as one simulcast track.
// It forwards that layer only (SetTargetLayer(-1) pauses it, SetTargetLayer(layer) resumes it) and, late, keeps
// its temporal layers: the far node's subscribers are not this connection's to step down.
func NewLayerDownTrack(r *Receiver, id, streamID string, layer int32, conn Conn) *DownTrack {
	d := NewDownTrack(r, streamID, conn)
	d.id, d.layerOf = id, true
	d.target.Store(layer)
	return d
}

// ID is the track's id as the subscriber sees it: the published track's, or a layer copy's own.
func (d *DownTrack) ID() string { return d.id }

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
			b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()}
			for _, e := range ctx.HeaderExtensions() {
				if e.URI == codec.PlayoutDelayURI && d.receiver.kind == webrtc.RTPCodecTypeVideo {
					b.playoutID = uint8(e.ID)
				}
				if e.URI == sdp.AudioLevelURI && d.receiver.kind == webrtc.RTPCodecTypeAudio {
					b.levelID = uint8(e.ID)
				}
			}
			d.bound.Store(b)
			d.boundNanos.Store(time.Now().UnixNano())
			if d.ready() {
				d.RequestKeyframe()
			} // else the request goes out when the subscriber connects: a keyframe before then would be lost
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("subscriber does not accept %s: %w", want.MimeType, webrtc.ErrUnsupportedCodec)
}

// Unbind is called by Pion when the track leaves the subscriber's connection.
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// ContinueFrom makes d, a copy of another track for the same place in the subscriber's connection (a WHEP
// viewer's section that follows the room's tracks), go on with prev's stream: the first packet d sends follows
// prev's last in sequence number, timestamp (by the time between them) and VP8 picture id, as after a layer
// switch, so the player sees one stream. prev sends nothing after this. Call it before binding d.
func (d *DownTrack) ContinueFrom(prev *DownTrack) {
	prev.mu.Lock()
	prev.bound.Store(nil)
	out := prev.mg.output()
	prev.mu.Unlock()
	d.mu.Lock()
	d.mg.resume(out)
	d.mu.Unlock()
}

// Bound reports whether the subscriber's connection has taken the track.
func (d *DownTrack) Bound() bool { return d.bound.Load() != nil }

// BoundAt is when the subscriber's connection took the track (zero before).
func (d *DownTrack) BoundAt() time.Time { return time.Unix(0, d.boundNanos.Load()) }

// RequestKeyframe asks the publisher for a keyframe on the layer this DownTrack forwards or is switching to.
func (d *DownTrack) RequestKeyframe() {
	if l := d.target.Load(); l >= 0 {
		d.receiver.RequestKeyframe(l)
	}
}

// SetTargetLayer chooses the layer to forward; -1 pauses the track. The switch happens on that layer's next
// keyframe, which is asked for; pausing is immediate. Audio has one layer, 0: it resumes on its next packet.
func (d *DownTrack) SetTargetLayer(l int32) {
	if d.receiver.kind != webrtc.RTPCodecTypeVideo && l > 0 || d.target.Swap(l) == l {
		return
	}
	if l < 0 {
		d.mu.Lock()
		d.current.Store(-1)
		d.mu.Unlock()
		return
	}
	if l != d.current.Load() && d.ready() {
		d.receiver.RequestKeyframe(l)
	}
}

// ready reports whether packets written now can reach the subscriber: a keyframe asked for earlier is lost.
func (d *DownTrack) ready() bool {
	return d.bound.Load() != nil && (d.conn == nil || d.conn.Connected())
}

// SetMaxTemporalLayer limits the VP8 temporal layers forwarded (0: the base layer only).
func (d *DownTrack) SetMaxTemporalLayer(t int32) { d.maxTemporal.Store(t) }

// MaxTemporalLayer is the highest VP8 temporal layer forwarded.
func (d *DownTrack) MaxTemporalLayer() int32 { return d.maxTemporal.Load() }

// Layers reports the layer forwarded (-1: none yet, or paused) and the layer wanted.
func (d *DownTrack) Layers() (current, target int32) { return d.current.Load(), d.target.Load() }

// SetDesired records the layer the subscriber would take if its bandwidth allowed (-1: none), which dynacast
// keeps the publisher sending.
func (d *DownTrack) SetDesired(l int32) { d.desired.Store(l) }

// Desired is the layer the subscriber would take if its bandwidth allowed.
func (d *DownTrack) Desired() int32 { return d.desired.Load() }

// Sent counts the packets sent to the subscriber.
func (d *DownTrack) Sent() uint64 { return d.sent.Load() }

// LateDrops counts the frames (audio: packets) that were past the SFU's latency budget: the upper temporal layers
// are dropped from there until the allocator decides again.
func (d *DownTrack) LateDrops() uint64 { return d.lateDrops.Load() }

// writeRTP rewrites a packet for this subscriber and sends it; it reports whether the packet went out.
func (d *DownTrack) writeRTP(pi *Packet) bool {
	l := pi.layer
	if l != d.current.Load() && l != d.target.Load() {
		return false // not a layer this subscriber wants
	}
	b := d.bound.Load()
	if b == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if b = d.bound.Load(); b == nil { // handed over meanwhile (ContinueFrom)
		return false
	}
	pkt := pi.pkt
	seq := pkt.SequenceNumber
	switching := l != d.current.Load()
	if switching {
		if l != d.target.Load() {
			return false
		}
		if !pi.key {
			d.receiver.RequestKeyframe(l) // throttled; the subscriber cannot decode this layer before one
			return false
		}
	}
	if pi.late && !switching && !d.layerOf {
		d.stepDown(pi)
	}
	inOrder := d.mg.inOrder(seq, switching)
	if pi.rtx && inOrder {
		return false // a retransmission goes only where the packet went before
	}
	m := d.mg.current()
	if !inOrder {
		var ok bool
		if m, ok = d.mg.lateMapping(seq, int8(l)); !ok {
			return false // no place in the output
		}
	}

	if len(pkt.Payload) == 0 || !pi.rtx && pi.hasVP8 && pi.vp8.HasTID && int32(pi.vp8.TID) > d.maxTemporal.Load() {
		// Dropped (padding, or a temporal layer above the limit): later packets close the gap it leaves.
		if !switching && inOrder {
			d.mg.skip(seq, m, pi.hasVP8 && pi.vp8.Start && pi.vp8.PicIDBytes > 0)
		}
		return false
	}

	if switching { // continue the subscriber's stream from its last packet
		var vp8 *codec.VP8Descriptor
		if pi.hasVP8 {
			vp8 = &pi.vp8
		}
		m = d.mg.switchMapping(seq, int8(l), pkt.Timestamp, pi.arrival, d.receiver.codec.ClockRate, vp8)
	}

	payload := pkt.Payload
	var outPic uint16
	var outTL0 uint8
	if pi.hasVP8 {
		outPic = (pi.vp8.PictureID + m.picDelta) & codec.PictureIDMask(pi.vp8.PicIDBytes)
		outTL0 = pi.vp8.TL0PICIDX + m.tl0Delta
		if (m.picDelta != 0 && pi.vp8.PicIDBytes > 0) || (m.tl0Delta != 0 && pi.vp8.HasTL0) {
			payload = d.buf[:copy(d.buf[:], payload)]
			codec.RewriteVP8(payload, &pi.vp8, outPic, outTL0)
		}
	}
	h := &d.hdr
	*h = pkt.Header
	h.Extension = false
	h.Extensions = d.ext[:0]
	h.Padding = false
	h.PaddingSize = 0
	h.SSRC = b.ssrc
	h.PayloadType = b.pt
	h.SequenceNumber = seq + m.seqDelta
	h.Timestamp = pkt.Timestamp + m.tsDelta
	if pi.key && b.playoutID != 0 {
		_ = h.SetExtension(b.playoutID, d.receiver.playout[:])
	}
	if b.levelID != 0 && d.receiver.audioLevelID != 0 { // the publisher's audio level goes on: speakers, a relay's node
		if level := pkt.GetExtension(d.receiver.audioLevelID); len(level) > 0 {
			_ = h.SetExtension(b.levelID, level)
		}
	}
	if n, err := b.w.WriteRTP(h, payload); err != nil || n == 0 {
		return false // not connected yet, or closing: a switch waits for a later keyframe
	}
	if switching {
		if d.target.Load() != l {
			return true // paused or retargeted meanwhile: this packet went, the switch does not stand
		}
		d.mg.switched(m)
		d.current.Store(l)
	}
	if inOrder {
		d.mg.sent(seq, h.SequenceNumber, h.Timestamp, pi.arrival)
		if pi.hasVP8 {
			d.mg.sentVP8(outPic, outTL0)
		}
	}
	d.sent.Add(1)
	return true
}

// stepDown handles a packet of the forwarded layer that is past the SFU's latency budget: it is counted (the
// allocator then lowers this video's layers), and when it starts a frame of an upper temporal layer the upper
// layers are turned off, so that this frame and the ones that depend on it are dropped whole with the stream
// kept continuous. Anything else late is sent all the same: the rest of a frame already started, a base-layer
// frame, audio. None of it asks the publisher for a keyframe.
func (d *DownTrack) stepDown(pi *Packet) {
	if !pi.hasVP8 || pi.vp8.Start {
		d.lateDrops.Add(1) // once a frame
	}
	if pi.hasVP8 && pi.vp8.Start && pi.vp8.HasTID && pi.vp8.TID > 0 && int32(pi.vp8.TID) <= d.maxTemporal.Load() {
		d.maxTemporal.Store(0)
	}
}

// HandleRTCP acts on the subscriber's feedback: keyframe requests go to the publisher (throttled); NACKs are
// counted and answered from the layer's retransmission buffer (rtx.go). It is called from one goroutine.
func (d *DownTrack) HandleRTCP(pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			d.RequestKeyframe()
		case *rtcp.TransportLayerNack:
			var lost uint64
			for _, n := range p.Nacks {
				lost += uint64(len(n.PacketList()))
			}
			d.receiver.stats.nacks.Add(lost)
			d.retransmit(p)
		}
	}
}

// ReadRTCP reads the subscriber's RTCP for this track until the sender stops.
func (d *DownTrack) ReadRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		d.HandleRTCP(pkts)
	}
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
