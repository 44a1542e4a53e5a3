package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/media/synth"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Layer is one simulcast layer of the synthetic video: its rid, picture size and bitrate at 30 fps.
type Layer struct {
	RID           string
	Width, Height int
	Bps           int
}

// DefaultLayers match the browser client's encodings.
var DefaultLayers = []Layer{
	{"q", 480, 270, 150_000},
	{"h", 960, 540, 500_000},
	{"f", 1920, 1080, 2_500_000},
}

const (
	fps           = 30
	keyframeEvery = 3 * fps // frames
	keyframeScale = 4       // a keyframe is this many times an average frame
	opusBytes     = 80      // a 20 ms Opus frame at about 32 kbit/s
)

// feeds makes the publishers' media: synthetic VP8 simulcast and Opus with a stamp (sequence number and send
// time) in every frame, or the frames of an IVF and an Ogg file played in a loop.
type feeds struct {
	ivf  [][]byte // VP8 frames of the -ivf file, nil for synthetic
	ivfD time.Duration
	ogg  [][]byte     // Opus packets of the -ogg file, nil for synthetic
	sent atomic.Int64 // bytes of media sent

	mu      sync.Mutex
	wantKey map[*user]*[3]atomic.Bool
	paused  map[*user]*[3]atomic.Bool // layers the SFU says nobody receives
	wg      sync.WaitGroup
}

func newFeeds(ivfPath, oggPath string) (*feeds, error) {
	f := &feeds{wantKey: map[*user]*[3]atomic.Bool{}, paused: map[*user]*[3]atomic.Bool{}, ivfD: time.Second / fps}
	if ivfPath != "" {
		frames, d, err := readIVF(ivfPath)
		if err != nil {
			return nil, err
		}
		f.ivf, f.ivfD = frames, d
	}
	if oggPath != "" {
		pkts, err := readOgg(oggPath)
		if err != nil {
			return nil, err
		}
		f.ogg = pkts
	}
	return f, nil
}

// keyframe records that the SFU asked user u for a keyframe on a layer.
func (f *feeds) keyframe(u *user, rid string) {
	f.mu.Lock()
	k := f.wantKey[u]
	f.mu.Unlock()
	if k == nil {
		return
	}
	for i, l := range DefaultLayers {
		if l.RID == rid || rid == "" && i == 0 {
			k[i].Store(true)
		}
	}
}

// layers records which layers of u's video the SFU wants and which it does not; a layer that comes back starts
// with a keyframe.
func (f *feeds) layers(u *user, rids, pausedRIDs []string) {
	f.mu.Lock()
	paused, keys := f.paused[u], f.wantKey[u]
	f.mu.Unlock()
	if paused == nil {
		return
	}
	for i, l := range DefaultLayers {
		switch {
		case slices.Contains(rids, l.RID):
			if paused[i].Swap(false) {
				keys[i].Store(true)
			}
		case slices.Contains(pausedRIDs, l.RID):
			paused[i].Store(true)
		}
	}
}

// publish starts u's video and audio; the feeding goroutine stops with ctx or u's session.
func (f *feeds) publish(ctx context.Context, u *user) error {
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"mic-"+u.identity, u.identity)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	senders, err := u.c.Publish(pctx, track)
	if err != nil {
		return err
	}
	audio := &levelAudio{track: track}
	for _, s := range senders {
		for _, e := range s.GetParameters().HeaderExtensions {
			if e.URI == sdp.AudioLevelURI {
				audio.extID = uint8(e.ID)
			}
		}
	}
	keys, paused := &[3]atomic.Bool{}, &[3]atomic.Bool{}
	f.mu.Lock()
	f.wantKey[u], f.paused[u] = keys, paused
	f.mu.Unlock()

	if f.ivf != nil {
		video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera-"+u.identity, u.identity)
		if err != nil {
			return err
		}
		if _, err := u.c.Publish(pctx, video); err != nil {
			return err
		}
		f.wg.Add(1)
		go f.feed(ctx, u, audio, f.ivfD, f.fileVideo(video))
		return nil
	}
	rids := make([]string, len(DefaultLayers))
	for i, l := range DefaultLayers {
		rids[i] = l.RID
	}
	sv, err := u.c.PublishSimulcastVP8(pctx, "camera-"+u.identity, u.identity, rids...)
	if err != nil {
		return err
	}
	f.wg.Add(1)
	go f.feed(ctx, u, audio, time.Second/fps, f.syntheticVideo(sv.WriteFrame, keys, paused))
	return nil
}

// feed runs a publisher's clock: every 20 ms an Opus packet, and every frameDur a video frame written by video,
// until ctx ends or the user's session does.
func (f *feeds) feed(ctx context.Context, u *user, audio *levelAudio, frameDur time.Duration,
	video func(frame uint32) error) {
	defer f.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var abuf []byte
	var frame, apkt uint32
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.c.Done():
			return
		case <-tick.C:
		}
		elapsed := time.Since(start)
		for ; time.Duration(apkt)*20*time.Millisecond <= elapsed; apkt++ {
			abuf = f.audioFrame(abuf, apkt)
			if err := audio.write(abuf, apkt); err != nil {
				return
			}
			f.sent.Add(int64(len(abuf)))
		}
		for ; time.Duration(frame)*frameDur <= elapsed; frame++ {
			if err := video(frame); err != nil {
				return
			}
		}
	}
}

// syntheticVideo writes frame n on every layer not paused: realistic sizes, a keyframe every keyframeEvery
// frames and when asked, each stamped.
func (f *feeds) syntheticVideo(writeFrame func(int, []byte, uint32) error, keys, paused *[3]atomic.Bool) func(uint32) error {
	var buf []byte
	return func(frame uint32) error {
		for i, l := range DefaultLayers {
			if paused[i].Load() {
				continue
			}
			key := frame%keyframeEvery == 0 || keys[i].Swap(false)
			size := l.Bps / 8 / fps
			if key {
				size *= keyframeScale
			} else {
				size = size * (keyframeEvery - keyframeScale) / (keyframeEvery - 1)
			}
			buf = synth.VP8Frame(buf, size, key, l.Width, l.Height, synth.Stamp{Seq: frame, Sent: time.Now()})
			if err := writeFrame(i, buf, 90000/fps); err != nil {
				return err
			}
			f.sent.Add(int64(len(buf)))
		}
		return nil
	}
}

// levelAudio is a publisher's microphone: Opus packets carrying an RFC 6464 audio level, as browsers send them
// (a quiet room, not speech: the presenters and meeting publishers are not in a speaking schedule).
type levelAudio struct {
	track *webrtc.TrackLocalStaticRTP
	extID uint8 // 0 when the extension was not negotiated: no level
	pkt   rtp.Packet
}

// publisherLevel is the level of a publisher's audio, in -dBov: a quiet room.
const publisherLevel = 70

// write sends the n-th 20 ms packet.
func (a *levelAudio) write(payload []byte, n uint32) error {
	p := &a.pkt
	p.Header = rtp.Header{Version: 2, SequenceNumber: uint16(n), Timestamp: n * opusSamples}
	p.Payload = payload
	if a.extID != 0 {
		ext, _ := (&rtp.AudioLevelExtension{Level: publisherLevel}).Marshal()
		if err := p.SetExtension(a.extID, ext); err != nil {
			return err
		}
	}
	return a.track.WriteRTP(p)
}

// audioFrame is the next Opus packet: from the Ogg file, or synthetic with a stamp.
func (f *feeds) audioFrame(buf []byte, n uint32) []byte {
	if f.ogg != nil {
		return f.ogg[int(n)%len(f.ogg)]
	}
	return synth.OpusFrame(buf, opusBytes, synth.Stamp{Seq: n, Sent: time.Now()})
}

// fileVideo writes the IVF frames in a loop (one layer: files carry no simulcast).
func (f *feeds) fileVideo(video *webrtc.TrackLocalStaticSample) func(uint32) error {
	return func(frame uint32) error {
		data := f.ivf[int(frame)%len(f.ivf)]
		if err := video.WriteSample(media.Sample{Data: data, Duration: f.ivfD}); err != nil {
			return err
		}
		f.sent.Add(int64(len(data)))
		return nil
	}
}

// wait waits for the feeding goroutines, which end with the run's context.
func (f *feeds) wait() { f.wg.Wait() }

// readIVF loads the VP8 frames of an IVF file and its frame duration.
func readIVF(path string) ([][]byte, time.Duration, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("ivf: %w", err)
	}
	defer file.Close()
	r, hdr, err := ivfreader.NewWith(file)
	if err != nil {
		return nil, 0, fmt.Errorf("ivf %s: %w", path, err)
	}
	if hdr.FourCC != "VP80" {
		return nil, 0, fmt.Errorf("ivf %s: codec %q, want VP80", path, hdr.FourCC)
	}
	d := time.Second / fps
	if hdr.TimebaseDenominator > 0 && hdr.TimebaseNumerator > 0 {
		d = time.Duration(float64(time.Second) * float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator))
	}
	var frames [][]byte
	for len(frames) < 100_000 {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("ivf %s: %w", path, err)
		}
		frames = append(frames, frame)
	}
	if len(frames) == 0 {
		return nil, 0, fmt.Errorf("ivf %s: no frames", path)
	}
	return frames, d, nil
}

// readOgg loads the Opus packets of an Ogg file (one per page segment run, as most encoders write 20 ms pages).
func readOgg(path string) ([][]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ogg: %w", err)
	}
	defer file.Close()
	r, _, err := oggreader.NewWith(file)
	if err != nil {
		return nil, fmt.Errorf("ogg %s: %w", path, err)
	}
	var pkts [][]byte
	for len(pkts) < 1_000_000 {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ogg %s: %w", path, err)
		}
		pkts = append(pkts, page)
	}
	if len(pkts) < 3 {
		return nil, fmt.Errorf("ogg %s: no audio", path)
	}
	return pkts[2:], nil // the first two pages are the Opus headers
}
