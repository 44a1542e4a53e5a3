package sfu

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Track sources, as the publisher declares them.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen_audio"
)

// keyframeInterval is the shortest time between two keyframe requests (PLI) sent to a publisher for one layer.
const keyframeInterval = 500 * time.Millisecond

// maxLayers is the number of simulcast layers a track can have (rid q, h, f).
const maxLayers = 3

// rtcpWriter sends RTCP to the publisher: its *webrtc.PeerConnection.
type rtcpWriter interface {
	WriteRTCP(pkts []rtcp.Packet) error
}

// Receiver is one published track, with up to three simulcast layers. Each layer's RTP is read on its own
// goroutine and handed to every DownTrack subscribed to the track; a DownTrack takes the packets of the layer it
// forwards. The list of DownTracks is copied on change and read without a lock.
type Receiver struct {
	id       string
	kind     webrtc.RTPCodecType
	codec    webrtc.RTPCodecParameters
	keyframe codec.KeyframeFunc
	vp8      bool
	rtcp     rtcpWriter

	mu     sync.Mutex // serialises changes to downs and ended
	downs  atomic.Pointer[[]*DownTrack]
	ended  bool // unpublished: no new DownTracks
	closed atomic.Bool

	layers [maxLayers]layer
	rids   [maxLayers]atomic.Pointer[string] // each layer's rid, as the publisher named it
	muted  atomic.Bool
	// adminMuted: an administrator muted the track, or took the publisher's right away: nothing is forwarded.
	adminMuted atomic.Bool
	// layerCap: layers from this index up are not forwarded (the publisher is over its bitrate limit).
	layerCap atomic.Int32
	source   string              // SourceCamera, SourceMicrophone, SourceScreen or SourceScreenAudio
	budget   time.Duration       // the SFU's share of the latency budget; 0: no limit
	playout  [3]byte             // playout-delay extension (0 to the latency budget) put on video keyframes
	rotate   atomic.Uint32       // where the next fan-out starts
	latency  prometheus.Observer // arrival to the last copy sent; nil: not measured

	audioLevelID uint8      // RFC 6464 header extension id, 0 when not negotiated
	level        levelMeter // audio levels, for the active speaker

	rateMu    sync.Mutex
	rateAt    time.Time
	rateBytes [maxLayers][3]uint64
	rates     [maxLayers][3]float64

	stats receiverStats

	// Audio work (audio.go): the pipeline, when one runs, takes the packets it processes and emits them; audioMu
	// keeps its writes and the reader's apart.
	audio   *audioStage // under mu
	pipe    atomic.Pointer[audio.Pipeline]
	audioMu sync.Mutex
}

// layer is one simulcast encoding of a track.
type layer struct {
	ssrc   atomic.Uint32
	active atomic.Bool      // its read goroutine runs
	paused atomic.Bool      // the publisher was told to stop sending it
	bytes  [3]atomic.Uint64 // payload bytes received by temporal layer, for the bitrates the allocator sees
	width  atomic.Uint32    // from the last VP8 key frame, 0 when unknown
	height atomic.Uint32

	// Keyframe requests: at most one per keyframeInterval; one asked for inside the interval is sent at its end.
	pliMu      sync.Mutex
	lastPLI    time.Time
	pliPending bool
	pliTimer   *time.Timer
}

// receiverStats are the counters /metrics reports.
type receiverStats struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	nacks, plis          atomic.Uint64
}

// packetInfo is one received packet with what the receiver learnt from it, shared by every DownTrack.
type packetInfo struct {
	pkt     *rtp.Packet
	layer   int32
	key     bool // starts a keyframe (always true for audio: any packet can start it)
	vp8     codec.VP8Descriptor
	hasVP8  bool
	arrival time.Time
	slack   time.Duration // added to the SFU's budget: the time audio processing may take
}

func newReceiver(id string, kind webrtc.RTPCodecType, params webrtc.RTPCodecParameters, w rtcpWriter) *Receiver {
	r := &Receiver{id: id, kind: kind, codec: params, rtcp: w}
	r.layerCap.Store(maxLayers)
	if kind == webrtc.RTPCodecTypeVideo {
		r.keyframe = codec.KeyframeDetector(params.MimeType)
		r.vp8 = strings.EqualFold(params.MimeType, webrtc.MimeTypeVP8)
	}
	r.downs.Store(&[]*DownTrack{})
	return r
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

// setPlayoutDelay sets the playout delay receivers are asked to keep: from 0 to max (at most 40.95 s).
func (r *Receiver) setPlayoutDelay(max time.Duration) {
	ext := rtp.PlayoutDelayExtension{MaxDelay: uint16(min(max.Milliseconds()/10, 0xfff))}
	_, _ = ext.MarshalTo(r.playout[:])
}

// ID is the published track's id (the msid track id the publisher chose).
func (r *Receiver) ID() string { return r.id }

// Kind is audio or video.
func (r *Receiver) Kind() webrtc.RTPCodecType { return r.kind }

// Codec is the codec the publisher sends.
func (r *Receiver) Codec() webrtc.RTPCodecParameters { return r.codec }

// packetReader reads one RTP packet into b: *webrtc.TrackRemote.Read without its attributes.
type packetReader func(b []byte) (int, error)

// startLayer records that a layer has started; it reports false if that layer is running already.
func (r *Receiver) startLayer(l int, ssrc uint32, rid string) bool {
	if l < 0 || l >= maxLayers || r.layers[l].active.Swap(true) {
		return false
	}
	r.layers[l].ssrc.Store(ssrc)
	r.rids[l].Store(&rid)
	return true
}

// stopLayer records that a layer's reading has ended; it reports whether any layer still runs.
func (r *Receiver) stopLayer(l int) bool {
	r.layers[l].active.Store(false)
	for i := range r.layers {
		if r.layers[i].active.Load() {
			return true
		}
	}
	return false
}

// liveLayers reports which layers are being received and not paused at the publisher by dynacast.
func (r *Receiver) liveLayers() [maxLayers]bool {
	live := r.ActiveLayers()
	layerCap := int(r.layerCap.Load())
	for i := range live {
		live[i] = live[i] && !r.layers[i].paused.Load() && i < layerCap
	}
	return live
}

// ActiveLayers reports which layers are being received.
func (r *Receiver) ActiveLayers() (active [maxLayers]bool) {
	for i := range r.layers {
		active[i] = r.layers[i].active.Load()
	}
	return active
}

// forward reads a layer's packets until read fails (the publisher's connection closed or the track ended) and
// forwards each to the DownTracks.
func (r *Receiver) forward(l int, read packetReader) error {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	pi := packetInfo{pkt: &pkt, layer: int32(l)}
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
		pi.arrival = time.Now()
		if pipe := r.pipe.Load(); pipe != nil {
			if pipe.Push(buf[:n], pi.arrival) {
				continue // the pipeline forwards it, processed
			}
			r.audioMu.Lock()
			r.writePacket(&pi, n)
			r.audioMu.Unlock()
			continue
		}
		r.writePacket(&pi, n)
	}
}

// writePacket is the per-packet path: one packet in, one write per subscriber of its layer out.
func (r *Receiver) writePacket(pi *packetInfo, size int) {
	r.stats.packetsIn.Add(1)
	r.stats.bytesIn.Add(uint64(size))
	if r.adminMuted.Load() {
		return
	}
	pkt := pi.pkt
	pi.key = r.keyframe == nil
	pi.hasVP8 = false
	if len(pkt.Payload) > 0 {
		if r.vp8 {
			d, err := codec.ParseVP8(pkt.Payload)
			if err != nil {
				return // malformed: no subscriber could use it
			}
			pi.vp8, pi.hasVP8 = d, true
			pi.key = d.Start && d.Keyframe
			if pi.key {
				r.noteDimensions(pi.layer, pkt.Payload[d.Size:])
			}
		} else if r.keyframe != nil {
			pi.key = r.keyframe(pkt.Payload)
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
	// Fan out, starting at a different subscriber each packet so that none is always last. A packet whose SFU
	// latency budget has run out by its turn is not sent: that subscriber restarts on a keyframe instead.
	var sent, bytes uint64
	downs := *r.downs.Load()
	n := len(downs)
	start := 0
	if n > 1 {
		start = int(r.rotate.Add(1) % uint32(n))
	}
	late := false
	for k := 0; k < n; k++ {
		d := downs[(start+k)%n]
		if r.budget > 0 && k&7 == 0 && !late {
			late = time.Since(pi.arrival) > r.budget+pi.slack
		}
		if late {
			d.dropLate(pi)
			continue
		}
		if d.writeRTP(pi) {
			sent++
			bytes += uint64(len(pkt.Payload))
		}
	}
	if sent > 0 {
		r.stats.packetsOut.Add(sent)
		r.stats.bytesOut.Add(bytes)
		if r.latency != nil {
			r.latency.Observe(time.Since(pi.arrival).Seconds())
		}
	}
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

// addDownTrack subscribes d to this track; it reports false once the track is unpublished.
func (r *Receiver) addDownTrack(d *DownTrack) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return false
	}
	old := *r.downs.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	r.downs.Store(&next)
	return true
}

// removeDownTrack unsubscribes d; the read goroutines stop writing to it before their next packet.
func (r *Receiver) removeDownTrack(d *DownTrack) {
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

// end marks the track unpublished and returns its subscribers; it reports false if it had ended already.
func (r *Receiver) end() ([]*DownTrack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return nil, false
	}
	r.ended = true
	return *r.downs.Load(), true
}

// Info describes the track.
func (r *Receiver) Info() TrackInfo {
	return TrackInfo{ID: r.id, Kind: r.kind.String(), Muted: r.muted.Load(), Source: r.source}
}

// Source is what the track carries.
func (r *Receiver) Source() string { return r.source }

// rateWindow is the shortest time over which layer bitrates are measured.
const rateWindow = 500 * time.Millisecond

// layerRates is the bitrate of each layer in bits per second, by temporal layer: rates[l][t] counts temporal
// layers 0 to t. Zero until measured.
func (r *Receiver) layerRates() [maxLayers][3]float64 {
	r.rateMu.Lock()
	defer r.rateMu.Unlock()
	now := time.Now()
	if dt := now.Sub(r.rateAt); dt >= rateWindow {
		for l := range r.layers {
			var cum float64
			for t := 0; t < 3; t++ {
				b := r.layers[l].bytes[t].Load()
				if !r.rateAt.IsZero() {
					cum += float64(b-r.rateBytes[l][t]) * 8 / dt.Seconds()
					// Smooth: keyframes make single windows jumpy.
					if r.rates[l][t] == 0 {
						r.rates[l][t] = cum
					} else {
						r.rates[l][t] = 0.6*r.rates[l][t] + 0.4*cum
					}
				}
				r.rateBytes[l][t] = b
			}
		}
		r.rateAt = now
	}
	return r.rates
}

// levelMeter accumulates audio levels (RFC 6464: 0 is 0 dBov, 127 is -127 dBov) between two reads.
type levelMeter struct {
	sum, count, voiced atomic.Uint32
}

// voiceThreshold is the level, in -dBov, louder than which a packet counts as speech.
const voiceThreshold = 50

func (m *levelMeter) add(dBov uint8) {
	m.sum.Add(uint32(127 - dBov))
	m.count.Add(1)
	if dBov < voiceThreshold {
		m.voiced.Add(1)
	}
}

// take returns the mean loudness (0 silent to 1 loud) and the share of voiced packets since the last take.
func (m *levelMeter) take() (level, voiced float64) {
	n := m.count.Swap(0)
	sum, v := m.sum.Swap(0), m.voiced.Swap(0)
	if n == 0 {
		return 0, 0
	}
	return float64(sum) / float64(n) / 127, float64(v) / float64(n)
}

// RequestKeyframe asks the publisher for a keyframe (PLI) on layer l, at most once per keyframeInterval. A
// request inside the interval is not lost: one PLI goes out when the interval ends.
func (r *Receiver) RequestKeyframe(l int32) {
	if r.kind != webrtc.RTPCodecTypeVideo || l < 0 || l >= maxLayers || r.closed.Load() {
		return
	}
	ly := &r.layers[l]
	ly.pliMu.Lock()
	if ly.pliPending {
		ly.pliMu.Unlock()
		return
	}
	wait := keyframeInterval - time.Since(ly.lastPLI)
	if wait > 0 {
		ly.pliPending = true
		ly.pliTimer = time.AfterFunc(wait, func() { r.deferredPLI(l) })
		ly.pliMu.Unlock()
		return
	}
	ly.lastPLI = time.Now()
	ly.pliMu.Unlock()
	r.sendPLI(l)
}

func (r *Receiver) deferredPLI(l int32) {
	ly := &r.layers[l]
	ly.pliMu.Lock()
	ly.pliPending = false
	ly.lastPLI = time.Now()
	ly.pliMu.Unlock()
	if !r.closed.Load() {
		r.sendPLI(l)
	}
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

// close stops pending keyframe requests. The read goroutines end when the publisher's connection closes.
func (r *Receiver) close() {
	r.closed.Store(true)
	r.stopAudio()
	for i := range r.layers {
		ly := &r.layers[i]
		ly.pliMu.Lock()
		if ly.pliTimer != nil {
			ly.pliTimer.Stop()
		}
		ly.pliMu.Unlock()
	}
}
