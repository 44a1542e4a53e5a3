// Package forward is the SFU's packet path: a Receiver reads one published track (up to three simulcast layers)
// and hands every packet to the DownTrack of each subscriber, which rewrites it for that subscriber and writes it
// to the subscriber's connection. It knows nothing of rooms or participants: what to forward to whom is set
// through methods (SetTargetLayer, SetBlocked, SetLayerCap, ...) by the room layer above it.
package forward

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxLayers is the number of simulcast layers a track can have (rid q, h, f).
const MaxLayers = 3

// RTCPWriter sends RTCP to the publisher: its *webrtc.PeerConnection.
type RTCPWriter interface {
	WriteRTCP(pkts []rtcp.Packet) error
}

// InPath is a stage a track's packets go through instead of straight to the subscribers (audio processing).
// Push takes a packet (the buffer is reused after it returns); true means the stage took it and will hand it
// back, processed, through Receiver.WriteProcessed; false means it is to be forwarded as it is.
type InPath interface {
	Push(pkt []byte, arrival time.Time) bool
}

// ReceiverConfig describes a published track.
type ReceiverConfig struct {
	ID     string // the track id the publisher chose
	Kind   webrtc.RTPCodecType
	Codec  webrtc.RTPCodecParameters
	Source string // what the track carries, as the publisher declared it (camera, microphone, ...)
	RTCP   RTCPWriter
	// Budget is the SFU's share of the latency budget: a packet that would leave later than this after it
	// arrived is not sent. 0: no limit.
	Budget time.Duration
	// PlayoutDelay is the most playout delay subscribers are asked to add (on video keyframes); 0: not asked.
	PlayoutDelay time.Duration
	// Latency observes each packet's arrival to the send of its last copy; nil: not measured.
	Latency prometheus.Observer
	// AudioLevelID is the RFC 6464 header extension id, 0 when not negotiated.
	AudioLevelID uint8
	// Spreader shares large fan-outs among the node's workers; nil: the read goroutine writes every copy.
	Spreader *Spreader
}

// Receiver is one published track, with up to three simulcast layers. Each layer's RTP is read on its own
// goroutine (Forward) and handed to every DownTrack subscribed to the track; a DownTrack takes the packets of the
// layer it forwards. The list of DownTracks is copied on change and read without a lock.
type Receiver struct {
	id           string
	kind         webrtc.RTPCodecType
	codec        webrtc.RTPCodecParameters
	source       string
	keyframe     codec.KeyframeFunc
	vp8          bool
	rtcp         RTCPWriter
	budget       time.Duration
	playout      [3]byte // playout-delay extension (0 to the latency budget) put on video keyframes
	latency      prometheus.Observer
	audioLevelID uint8
	spreader     *Spreader

	mu     sync.Mutex // serialises changes to downs and ended
	downs  atomic.Pointer[[]*DownTrack]
	ended  bool // unpublished: no new DownTracks
	closed atomic.Bool

	layers [MaxLayers]layer
	rids   [MaxLayers]atomic.Pointer[string] // each layer's rid, as the publisher named it
	muted  atomic.Bool
	// blocked: an administrator muted the track, or took the publisher's right away: nothing is forwarded.
	blocked atomic.Bool
	// silenced: an audio track the room does not forward now (not among its loudest microphones); its levels are
	// still measured. Changed under mu, with every DownTrack paused or resumed to match.
	silenced atomic.Bool
	// layerCap: layers from this index up are not forwarded (the publisher is over its bitrate limit).
	layerCap atomic.Int32
	rotate   atomic.Uint32 // where the next fan-out starts

	level levelMeter // audio levels, for the active speaker
	rates rateMeter
	now   func() time.Time // time.Now; a test's clock
	stats counters

	// The in-path stage, when one runs, takes the packets it processes and hands them back; inPathMu keeps its
	// writes and the reader's apart.
	inPath   atomic.Pointer[inPathBox]
	inPathMu sync.Mutex
}

type inPathBox struct{ s InPath }

// layer is one simulcast encoding of a track.
type layer struct {
	ssrc   atomic.Uint32
	active atomic.Bool      // its read goroutine runs
	paused atomic.Bool      // the publisher was told to stop sending it
	bytes  [3]atomic.Uint64 // payload bytes received by temporal layer, for the bitrates the allocator sees
	width  atomic.Uint32    // from the last VP8 key frame, 0 when unknown
	height atomic.Uint32
	lastAt atomic.Int64 // when its last packet came (Unix nanoseconds), 0 before the first
	pli    keyframeThrottle
	rtx    rtxBuffer // video: the recent packets, for retransmissions
}

// Packet is one received packet with what the receiver learnt from it, shared by every DownTrack.
type Packet struct {
	pkt     *rtp.Packet
	layer   int32
	key     bool // starts a keyframe (always true for audio: any packet can start it)
	vp8     codec.VP8Descriptor
	hasVP8  bool
	arrival time.Time
	slack   time.Duration // added to the SFU's budget: the time audio processing may take
	late    bool          // past the SFU's latency budget by this subscriber's turn
	rtx     bool          // a retransmission a subscriber asked for: only to a place it had before
}

// ProcessingSlack is how much longer than the SFU's budget a packet handed back by an in-path stage may take:
// one 20 ms audio frame.
const ProcessingSlack = 20 * time.Millisecond

// NewReceiver makes the Receiver of a published track; its layers start with StartLayer.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	r := &Receiver{id: cfg.ID, kind: cfg.Kind, codec: cfg.Codec, source: cfg.Source, rtcp: cfg.RTCP,
		budget: max(cfg.Budget, 0), latency: cfg.Latency, audioLevelID: cfg.AudioLevelID, spreader: cfg.Spreader}
	r.now = time.Now
	r.layerCap.Store(MaxLayers)
	if cfg.Kind == webrtc.RTPCodecTypeVideo {
		r.keyframe = codec.KeyframeDetector(cfg.Codec.MimeType)
		r.vp8 = strings.EqualFold(cfg.Codec.MimeType, webrtc.MimeTypeVP8)
	}
	if cfg.PlayoutDelay > 0 {
		r.setPlayoutDelay(cfg.PlayoutDelay)
	}
	r.downs.Store(&[]*DownTrack{})
	return r
}

// setPlayoutDelay sets the playout delay receivers are asked to keep: from 0 to max (at most 40.95 s).
func (r *Receiver) setPlayoutDelay(max time.Duration) {
	ext := rtp.PlayoutDelayExtension{MaxDelay: uint16(min(max.Milliseconds()/10, 0xfff))}
	_, _ = ext.MarshalTo(r.playout[:])
}

// LayerIndex maps a simulcast RID to a layer, lowest first: q/h/f (the browser client's and LiveKit's),
// l/m/h... is ambiguous, so only "low", "mid", "high" and "0", "1", "2" are also understood. No RID is layer 0.
func LayerIndex(rid string) int {
	switch strings.ToLower(rid) {
	case "h", "mid", "1", "m":
		return 1
	case "f", "high", "2":
		return 2
	}
	return 0
}

// ID is the published track's id (the msid track id the publisher chose).
func (r *Receiver) ID() string { return r.id }

// Kind is audio or video.
func (r *Receiver) Kind() webrtc.RTPCodecType { return r.kind }

// Codec is the codec the publisher sends.
func (r *Receiver) Codec() webrtc.RTPCodecParameters { return r.codec }

// Source is what the track carries.
func (r *Receiver) Source() string { return r.source }

// HasAudioLevel reports whether the publisher sends audio levels (RFC 6464) on this track.
func (r *Receiver) HasAudioLevel() bool { return r.audioLevelID != 0 }

// Muted reports whether the publisher (or an administrator) said the track is muted.
func (r *Receiver) Muted() bool { return r.muted.Load() }

// SetMuted records the track's mute state; it reports whether that changed it.
func (r *Receiver) SetMuted(m bool) bool { return r.muted.Swap(m) != m }

// SetBlocked stops (or resumes) forwarding the track altogether: moderation.
func (r *Receiver) SetBlocked(b bool) { r.blocked.Store(b) }

// SetSilenced stops (true) or resumes forwarding an audio track to every subscriber, present and future. Each
// subscriber's stream continues across the pause without a gap in its sequence numbers. It reports whether that
// changed anything.
func (r *Receiver) SetSilenced(s bool) bool {
	if r.kind != webrtc.RTPCodecTypeAudio {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.silenced.Swap(s) == s {
		return false
	}
	target := int32(0)
	if s {
		target = -1
	}
	for _, d := range *r.downs.Load() {
		d.SetTargetLayer(target)
	}
	return true
}

// Silenced reports whether the audio track is held back from every subscriber (SetSilenced).
func (r *Receiver) Silenced() bool { return r.silenced.Load() }

// LayerCap is the number of layers that may be forwarded (MaxLayers: all).
func (r *Receiver) LayerCap() int32 { return r.layerCap.Load() }

// SetLayerCap forwards layers below n only (the publisher is over its bitrate limit); MaxLayers lifts it.
func (r *Receiver) SetLayerCap(n int32) { r.layerCap.Store(min(max(n, 0), MaxLayers)) }

// SetPaused records that the publisher was told to stop (or restart) sending layer l (dynacast).
func (r *Receiver) SetPaused(l int, paused bool) {
	if l >= 0 && l < MaxLayers {
		r.layers[l].paused.Store(paused)
	}
}

// RID is the rid the publisher gave layer l; false if that layer never started.
func (r *Receiver) RID(l int) (string, bool) {
	if l < 0 || l >= MaxLayers {
		return "", false
	}
	if p := r.rids[l].Load(); p != nil {
		return *p, true
	}
	return "", false
}

// PacketReader reads one RTP packet into b: *webrtc.TrackRemote.Read without its attributes.
type PacketReader func(b []byte) (int, error)

// StartLayer records that a layer has started; it reports false if that layer is running already.
func (r *Receiver) StartLayer(l int, ssrc uint32, rid string) bool {
	if l < 0 || l >= MaxLayers || r.layers[l].active.Swap(true) {
		return false
	}
	r.layers[l].ssrc.Store(ssrc)
	r.rids[l].Store(&rid)
	return true
}

// StopLayer records that a layer's reading has ended; it reports whether any layer still runs.
func (r *Receiver) StopLayer(l int) bool {
	if l >= 0 && l < MaxLayers {
		r.layers[l].active.Store(false)
	}
	for i := range r.layers {
		if r.layers[i].active.Load() {
			return true
		}
	}
	return false
}

// staleLayer is how long an upper simulcast layer may bring nothing while a lower one still flows before it
// counts as stopped: the publisher no longer encodes it (Chrome drops its upper layers when its bandwidth
// estimate falls), and a subscriber left on it would see a frozen picture.
const staleLayer = 1500 * time.Millisecond

// LiveLayers reports which layers are being received, not paused at the publisher by dynacast, under the layer
// cap, and not stale (an upper layer that brought nothing for staleLayer while a lower one did; it is live again
// from its next packet). The lowest layer that flows never counts as stale: a still screen sends little.
func (r *Receiver) LiveLayers() [MaxLayers]bool {
	live := r.ActiveLayers()
	layerCap := int(r.layerCap.Load())
	now := r.now().UnixNano()
	lowerFlows := false
	for i := range live {
		at := r.layers[i].lastAt.Load()
		fresh := at != 0 && now-at < int64(staleLayer)
		stale := lowerFlows && !fresh
		lowerFlows = lowerFlows || (live[i] && fresh)
		live[i] = live[i] && !r.layers[i].paused.Load() && i < layerCap && !stale
	}
	return live
}

// ActiveLayers reports which layers are being received.
func (r *Receiver) ActiveLayers() (active [MaxLayers]bool) {
	for i := range r.layers {
		active[i] = r.layers[i].active.Load()
	}
	return active
}

// Forward reads a layer's packets until read fails (the publisher's connection closed or the track ended) and
// forwards each to the DownTracks.
func (r *Receiver) Forward(l int, read PacketReader) error {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	pi := Packet{pkt: &pkt, layer: int32(l)}
	for {
		n, err := read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue // not RTP: ignore, as a hostile or broken publisher must not stop the track
		}
		pi.arrival = r.now()
		if at := pi.arrival.UnixNano(); at-r.layers[l].lastAt.Load() > int64(staleLayer/16) { // a write a tenth of a second, not a packet
			r.layers[l].lastAt.Store(at)
		}
		if r.kind == webrtc.RTPCodecTypeVideo && len(pkt.Payload) > 0 {
			r.layers[l].rtx.put(pkt.SequenceNumber, buf[:n])
		}
		if box := r.inPath.Load(); box != nil && !r.blocked.Load() { // a blocked track is neither processed nor heard
			if box.s.Push(buf[:n], pi.arrival) {
				continue // the stage hands it back, processed
			}
			r.inPathMu.Lock()
			r.writePacket(&pi, n)
			r.inPathMu.Unlock()
			continue
		}
		r.writePacket(&pi, n)
	}
}

// SetInPath puts a stage in the track's path (nil takes it out).
func (r *Receiver) SetInPath(s InPath) {
	if s == nil {
		r.inPath.Store(nil)
		return
	}
	r.inPath.Store(&inPathBox{s})
}

// WriteProcessed forwards a packet an in-path stage hands back, as a packet that can start a frame, with
// ProcessingSlack added to the latency budget.
func (r *Receiver) WriteProcessed(pkt *rtp.Packet, arrival time.Time) {
	pi := Packet{pkt: pkt, key: true, arrival: arrival, slack: ProcessingSlack}
	r.inPathMu.Lock()
	r.writePacket(&pi, pkt.MarshalSize())
	r.inPathMu.Unlock()
}

// writePacket is the per-packet path: one packet in, one write per subscriber of its layer out.
func (r *Receiver) writePacket(pi *Packet, size int) {
	r.stats.packetsIn.Add(1)
	r.stats.bytesIn.Add(uint64(size))
	if r.blocked.Load() || !r.describe(pi) {
		return
	}
	pkt := pi.pkt
	if len(pkt.Payload) > 0 {
		if pi.key && pi.hasVP8 {
			r.noteDimensions(pi.layer, pkt.Payload[pi.vp8.Size:])
		}
		tid := 0
		if pi.hasVP8 && pi.vp8.HasTID && pi.vp8.TID < 3 {
			tid = int(pi.vp8.TID)
		}
		r.layers[pi.layer].bytes[tid].Add(uint64(len(pkt.Payload)))
		if r.audioLevelID != 0 {
			if ext := pkt.GetExtension(r.audioLevelID); len(ext) > 0 {
				r.level.add(ext[0] & 0x7f)
			}
		}
	}
	if r.silenced.Load() {
		return // measured above, forwarded to nobody
	}
	// Fan out, starting at a different subscriber each packet so that none is always last; a large fan-out is
	// shared with the node's Spreader.
	downs := *r.downs.Load()
	n := len(downs)
	start := 0
	if n > 1 {
		start = int(r.rotate.Add(1) % uint32(n))
	}
	var sent, bytes uint64
	if r.spreader != nil && n >= SpreadThreshold {
		sent, bytes = r.spreader.spread(r, pi, downs, start)
	} else {
		sent, bytes = r.fanOut(pi, downs, start, 0, n)
	}
	if sent > 0 {
		r.stats.packetsOut.Add(sent)
		r.stats.bytesOut.Add(bytes)
		if r.latency != nil {
			r.latency.Observe(time.Since(pi.arrival).Seconds())
		}
	}
}

// fanOut writes copies lo to hi-1 of a packet, counting from start in the DownTrack list. A subscriber whose copy
// is past the SFU's latency budget by its turn steps down (DownTrack.writeRTP): whole frames of upper temporal
// layers are dropped, never part of a frame, never anything that would cost a keyframe.
func (r *Receiver) fanOut(pi *Packet, downs []*DownTrack, start, lo, hi int) (sent, bytes uint64) {
	n := len(downs)
	pi.late = false
	for k := lo; k < hi; k++ {
		d := downs[(start+k)%n]
		if r.budget > 0 && (k-lo)&7 == 0 && !pi.late {
			pi.late = time.Since(pi.arrival) > r.budget+pi.slack
		}
		if d.writeRTP(pi) {
			sent++
			bytes += uint64(len(pi.pkt.Payload))
		}
	}
	return sent, bytes
}

// describe reads what the DownTracks need of a packet: whether it starts a keyframe, and its VP8 descriptor. It
// reports false for a payload no subscriber could use (a malformed VP8 descriptor).
func (r *Receiver) describe(pi *Packet) bool {
	pkt := pi.pkt
	pi.key = r.keyframe == nil
	pi.hasVP8 = false
	if len(pkt.Payload) == 0 {
		return true
	}
	if r.vp8 {
		d, err := codec.ParseVP8(pkt.Payload)
		if err != nil {
			return false
		}
		pi.vp8, pi.hasVP8 = d, true
		pi.key = d.Start && d.Keyframe
	} else if r.keyframe != nil {
		pi.key = r.keyframe(pkt.Payload)
	}
	return true
}

// noteDimensions reads the picture size from a VP8 key frame's header (RFC 6386 section 9.1).
func (r *Receiver) noteDimensions(l int32, frame []byte) {
	if len(frame) < 10 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return
	}
	r.layers[l].width.Store(uint32(frame[6]) | uint32(frame[7]&0x3f)<<8)
	r.layers[l].height.Store(uint32(frame[8]) | uint32(frame[9]&0x3f)<<8)
}

// LayerSize is the last picture size seen on a layer, or zeros.
func (r *Receiver) LayerSize(l int) (width, height int) {
	return int(r.layers[l].width.Load()), int(r.layers[l].height.Load())
}

// LayerSizes are the last picture sizes seen on every layer (zeros when unknown).
func (r *Receiver) LayerSizes() (sizes [MaxLayers][2]int) {
	for l := range sizes {
		sizes[l][0], sizes[l][1] = r.LayerSize(l)
	}
	return sizes
}

// AddDownTrack subscribes d to this track; it reports false once the track is unpublished.
func (r *Receiver) AddDownTrack(d *DownTrack) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	old := *r.downs.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	if r.silenced.Load() {
		d.SetTargetLayer(-1)
	}
	r.downs.Store(&next)
	return true
}

// RemoveDownTrack unsubscribes d; the read goroutines stop writing to it before their next packet.
func (r *Receiver) RemoveDownTrack(d *DownTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.downs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	r.downs.Store(&next)
}

// DownTracks returns the current subscribers.
func (r *Receiver) DownTracks() []*DownTrack { return *r.downs.Load() }

// End marks the track unpublished and returns its subscribers; it reports false if it had ended already.
func (r *Receiver) End() ([]*DownTrack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return nil, false
	}
	r.ended = true
	return *r.downs.Load(), true
}

// RequestKeyframe asks the publisher for a keyframe (PLI) on layer l, at most once per KeyframeInterval. A
// request inside the interval is not lost: one PLI goes out when the interval ends.
func (r *Receiver) RequestKeyframe(l int32) {
	if r.kind != webrtc.RTPCodecTypeVideo || l < 0 || l >= MaxLayers || r.closed.Load() {
		return
	}
	r.layers[l].pli.request(func() {
		if !r.closed.Load() {
			r.sendPLI(l)
		}
	})
}

func (r *Receiver) sendPLI(l int32) {
	ssrc := r.layers[l].ssrc.Load()
	if ssrc == 0 {
		return
	}
	r.stats.plis.Add(1)
	// An error means the publisher's connection is closing; its read goroutine ends the track.
	_ = r.rtcp.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Close stops pending keyframe requests. The read goroutines end when the publisher's connection closes.
func (r *Receiver) Close() {
	r.closed.Store(true)
	for i := range r.layers {
		r.layers[i].pli.stop()
	}
}
