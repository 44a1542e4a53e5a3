package sfu

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval is the shortest time between two keyframe requests (PLI) sent to a publisher for one track.
const keyframeInterval = 500 * time.Millisecond

// rtcpWriter sends RTCP to the publisher: its *webrtc.PeerConnection.
type rtcpWriter interface {
	WriteRTCP(pkts []rtcp.Packet) error
}

// Receiver is one published track. It reads the publisher's RTP on its own goroutine and hands each packet to
// every DownTrack subscribed to it. The list of DownTracks is copied on change and read without a lock, so the
// per-packet path takes no lock and allocates nothing.
type Receiver struct {
	id       string
	kind     webrtc.RTPCodecType
	codec    webrtc.RTPCodecParameters
	ssrc     uint32
	keyframe codec.KeyframeFunc
	rtcp     rtcpWriter

	mu    sync.Mutex // serialises changes to downs
	downs atomic.Pointer[[]*DownTrack]
	ended bool // unpublished: no new DownTracks

	muted atomic.Bool

	// Keyframe requests: at most one per keyframeInterval; one asked for inside the interval is sent at its end.
	pliMu      sync.Mutex
	lastPLI    time.Time
	pliPending bool
	pliTimer   *time.Timer
	closed     bool

	stats receiverStats
}

// receiverStats are the counters /metrics reports. The packet counters have one writer (the read goroutine).
type receiverStats struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	nacks, plis          atomic.Uint64
}

func newReceiver(id string, kind webrtc.RTPCodecType, params webrtc.RTPCodecParameters, ssrc uint32, w rtcpWriter) *Receiver {
	r := &Receiver{id: id, kind: kind, codec: params, ssrc: ssrc, rtcp: w}
	if kind == webrtc.RTPCodecTypeVideo {
		r.keyframe = codec.KeyframeDetector(params.MimeType)
	}
	r.downs.Store(&[]*DownTrack{})
	return r
}

// ID is the published track's id (the msid track id the publisher chose).
func (r *Receiver) ID() string { return r.id }

// Kind is audio or video.
func (r *Receiver) Kind() webrtc.RTPCodecType { return r.kind }

// Codec is the codec the publisher sends.
func (r *Receiver) Codec() webrtc.RTPCodecParameters { return r.codec }

// packetReader reads one RTP packet into b: *webrtc.TrackRemote.Read without its attributes.
type packetReader func(b []byte) (int, error)

// forward reads packets until read fails (the publisher's connection closed or the track ended) and forwards
// each to the DownTracks.
func (r *Receiver) forward(read packetReader) error {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
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
		r.writePacket(&pkt, n)
	}
}

// writePacket is the per-packet path: one packet in, one write per subscriber out.
func (r *Receiver) writePacket(pkt *rtp.Packet, size int) {
	r.stats.packetsIn.Add(1)
	r.stats.bytesIn.Add(uint64(size))
	if len(pkt.Payload) == 0 {
		return // padding only: carries no media
	}
	key := r.keyframe != nil && r.keyframe(pkt.Payload)
	var sent, bytes uint64
	for _, d := range *r.downs.Load() {
		if d.writeRTP(pkt, key) {
			sent++
			bytes += uint64(len(pkt.Payload))
		}
	}
	if sent > 0 {
		r.stats.packetsOut.Add(sent)
		r.stats.bytesOut.Add(bytes)
	}
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

// removeDownTrack unsubscribes d; the read goroutine stops writing to it before its next packet.
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
	return TrackInfo{ID: r.id, Kind: r.kind.String(), Muted: r.muted.Load()}
}

// RequestKeyframe asks the publisher for a keyframe (PLI), at most once per keyframeInterval. A request inside
// the interval is not lost: one PLI goes out when the interval ends.
func (r *Receiver) RequestKeyframe() {
	if r.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	r.pliMu.Lock()
	if r.closed || r.pliPending {
		r.pliMu.Unlock()
		return
	}
	wait := keyframeInterval - time.Since(r.lastPLI)
	if wait > 0 {
		r.pliPending = true
		r.pliTimer = time.AfterFunc(wait, r.deferredPLI)
		r.pliMu.Unlock()
		return
	}
	r.lastPLI = time.Now()
	r.pliMu.Unlock()
	r.sendPLI()
}

func (r *Receiver) deferredPLI() {
	r.pliMu.Lock()
	r.pliPending = false
	send := !r.closed
	if send {
		r.lastPLI = time.Now()
	}
	r.pliMu.Unlock()
	if send {
		r.sendPLI()
	}
}

func (r *Receiver) sendPLI() {
	r.stats.plis.Add(1)
	// An error means the publisher's connection is closing; its read goroutine ends the track.
	_ = r.rtcp.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: r.ssrc}})
}

// close stops pending keyframe requests. The read goroutine ends when the publisher's connection closes.
func (r *Receiver) close() {
	r.pliMu.Lock()
	defer r.pliMu.Unlock()
	r.closed = true
	if r.pliTimer != nil {
		r.pliTimer.Stop()
	}
}
