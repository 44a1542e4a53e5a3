package captions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/media/audio"
)

// Service captions tracks with one recognizer and any number of translators. It holds no per-track state: Run
// is called once per track, on a goroutine its caller owns.
type Service struct {
	Recognizer  Recognizer
	Translators []Translator
	Log         *zap.Logger

	Hangover      time.Duration // silence that ends an utterance (default 400 ms)
	PartialEvery  time.Duration // the most often a partial result is sent (default 250 ms)
	MaxUtterance  time.Duration // speech longer than this is cut into several captions (default 15 s)
	EngineTimeout time.Duration // how long an engine may take to start or finish an utterance, or translate (default 5 s)
}

// Job is one track to caption.
type Job struct {
	ParticipantID, TrackID string
	Lang                   string             // the language spoken
	Frames                 <-chan audio.Frame // 48 kHz PCM from the audio pipeline's tap; closed when the track ends
	// Dropped counts the frames the tap could not deliver because the service fell behind (audio.Tap.Dropped);
	// nil when none are ever dropped.
	Dropped func() uint64
	Origin  time.Time       // time zero of Start and End: the room's transcript start
	Targets func() []string // the languages someone reads now
	Emit    func(Caption)
	// Status is told when the engine stops working (available false, with the reason) and when it works again.
	Status func(available bool, reason string)
}

// prerollDuration is how much audio before the VAD's trigger goes to the recognizer, so that the first
// syllable is not cut.
const prerollDuration = 300 * time.Millisecond

func (s *Service) defaults() {
	if s.Hangover <= 0 {
		s.Hangover = 400 * time.Millisecond
	}
	if s.PartialEvery <= 0 {
		s.PartialEvery = 250 * time.Millisecond
	}
	if s.MaxUtterance <= 0 {
		s.MaxUtterance = 15 * time.Second
	}
	if s.EngineTimeout <= 0 {
		s.EngineTimeout = 5 * time.Second
	}
	if s.Log == nil {
		s.Log = zap.NewNop()
	}
}

// run is one track's state.
type run struct {
	s   *Service
	job Job
	ctx context.Context

	utt         Utterance
	cancelUtt   context.CancelFunc
	start       time.Time // when the utterance began (preroll included)
	lastVoice   time.Time
	partial     string
	partialSent time.Time

	preroll []int16 // the last prerollDuration of 16 kHz audio while no utterance is open

	dropped   uint64    // the tap's drop count as last seen
	skipping  bool      // an utterance lost frames: wait for silence before the next
	quietFrom time.Time // while skipping, when the current silence began

	available    bool
	backoff      time.Duration
	backoffUntil time.Time
}

// Run captions one track until its frames end or ctx does.
func (s *Service) Run(ctx context.Context, job Job) {
	cfg := *s // the defaults are filled in on a copy: Run is called for many tracks at once
	cfg.defaults()
	s = &cfg
	r := &run{s: s, job: job, ctx: ctx, available: true}
	rs := audio.NewResampler(audio.SampleRate, SampleRate)
	vad := NewVAD()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var pcm []int16
	for {
		select {
		case <-ctx.Done():
			r.abandon()
			return
		case <-tick.C: // no frames come while a muted or DTX publisher is silent
			if r.utt != nil && time.Since(r.lastVoice) > s.Hangover {
				r.finish()
			}
		case f, ok := <-job.Frames:
			if !ok {
				if r.utt != nil {
					r.finish()
				}
				return
			}
			if job.Dropped != nil {
				if d := job.Dropped(); d != r.dropped {
					r.dropped = d
					r.lost(d)
				}
			}
			pcm = rs.Process(f.PCM, pcm[:0])
			r.frame(pcm, vad.Voiced(pcm), f.Arrival)
		}
	}
}

// lost is told that the tap dropped frames (the service fell behind the track): an utterance under way has a hole,
// and its words either side of it would make a wrong caption. It is dropped without a final, and the service
// waits for the speaker's next pause (Hangover of silence) before it listens again.
func (r *run) lost(total uint64) {
	if r.utt == nil {
		return // frames of silence: nothing was missed
	}
	r.closeUtt()
	r.skipping, r.quietFrom = true, time.Time{}
	r.preroll = r.preroll[:0]
	r.s.Log.Info("captions fell behind: an utterance with missing audio was dropped",
		zap.String("track", r.job.TrackID), zap.Uint64("frames_dropped", total))
}

// frame handles 16 kHz audio that arrived at now.
func (r *run) frame(pcm []int16, voiced bool, now time.Time) {
	if r.skipping {
		switch {
		case voiced:
			r.quietFrom = time.Time{}
			return
		case r.quietFrom.IsZero():
			r.quietFrom = now
			return
		case now.Sub(r.quietFrom) < r.s.Hangover:
			return
		}
		r.skipping = false
	}
	if r.utt == nil {
		r.preroll = append(r.preroll, pcm...)
		if keep := int(prerollDuration.Seconds() * SampleRate); len(r.preroll) > keep {
			r.preroll = append(r.preroll[:0], r.preroll[len(r.preroll)-keep:]...)
		}
		if !voiced || now.Before(r.backoffUntil) {
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.s.MaxUtterance+2*r.s.EngineTimeout)
		utt, err := r.s.Recognizer.Open(ctx, r.job.Lang)
		if err != nil {
			cancel()
			r.failed(fmt.Errorf("start recognizing: %w", err), now)
			return
		}
		r.utt, r.cancelUtt = utt, cancel
		r.start = now.Add(-time.Duration(len(r.preroll)) * time.Second / SampleRate)
		r.lastVoice, r.partial = now, ""
		pcm = append(r.preroll, pcm...)
		r.preroll = r.preroll[:0]
	}
	partial, err := r.utt.Write(pcm)
	if err != nil {
		r.failed(fmt.Errorf("recognize: %w", err), now)
		return
	}
	if voiced {
		r.lastVoice = now
	}
	if partial != "" && partial != r.partial && now.Sub(r.partialSent) >= r.s.PartialEvery {
		r.partial, r.partialSent = partial, now
		r.emit(partial, false, now)
	}
	if now.Sub(r.lastVoice) > r.s.Hangover || now.Sub(r.start) > r.s.MaxUtterance {
		r.finish()
	}
}

// finish ends the utterance and sends its final caption.
func (r *run) finish() {
	text, err := r.utt.Finish()
	end := r.lastVoice
	r.closeUtt()
	if err != nil {
		r.failed(fmt.Errorf("finish recognizing: %w", err), end)
		return
	}
	if !r.available {
		r.available, r.backoff = true, 0
		r.s.Log.Info("captions available again", zap.String("track", r.job.TrackID))
		if r.job.Status != nil {
			r.job.Status(true, "")
		}
	}
	if text = strings.TrimSpace(text); text != "" {
		r.emit(text, true, end)
	}
}

// emit sends a caption; a final one goes with its translations.
func (r *run) emit(text string, final bool, end time.Time) {
	c := Caption{ParticipantID: r.job.ParticipantID, TrackID: r.job.TrackID, Lang: r.job.Lang, Text: text, Final: final,
		Start: r.start.Sub(r.job.Origin), End: end.Sub(r.job.Origin), StartTime: r.start}
	if final && r.job.Targets != nil {
		c.Translations = r.translate(text)
	}
	r.job.Emit(c)
}

// translate puts text into every language someone reads, with the first translator that knows the pair.
func (r *run) translate(text string) map[string]string {
	out := map[string]string{}
	for _, to := range r.job.Targets() {
		if SameLanguage(to, r.job.Lang) {
			continue
		}
		for _, t := range r.s.Translators {
			if !t.Supports(r.job.Lang, to) {
				continue
			}
			ctx, cancel := context.WithTimeout(r.ctx, r.s.EngineTimeout)
			tr, err := t.Translate(ctx, text, r.job.Lang, to)
			cancel()
			if err != nil {
				r.s.Log.Warn("translation failed", zap.String("from", r.job.Lang), zap.String("to", to), zap.Error(err))
				continue
			}
			out[to] = tr
			break
		}
	}
	return out
}

// failed drops the utterance, tells the room captions are unavailable, and waits (in the track's time, from now)
// before trying again.
func (r *run) failed(err error, now time.Time) {
	r.closeUtt()
	r.backoff = min(max(2*r.backoff, time.Second), 30*time.Second)
	r.backoffUntil = now.Add(r.backoff)
	if errors.Is(err, context.Canceled) && r.ctx.Err() != nil {
		return
	}
	r.s.Log.Warn("captions engine failed", zap.String("track", r.job.TrackID), zap.Duration("retry_in", r.backoff), zap.Error(err))
	if r.available {
		r.available = false
		if r.job.Status != nil {
			r.job.Status(false, err.Error())
		}
	}
}

func (r *run) closeUtt() {
	if r.utt != nil {
		_ = r.utt.Close()
		r.utt = nil
	}
	if r.cancelUtt != nil {
		r.cancelUtt()
		r.cancelUtt = nil
	}
}

// abandon drops an utterance without a caption.
func (r *run) abandon() { r.closeUtt() }

// SameLanguage reports whether two language tags name the same language in the same script: "en" and "en-US"
// do, "zh-Hans" and "zh-Hant" do not, and "zh" is Simplified Chinese.
func SameLanguage(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	if sa, sb := ChineseScript(a), ChineseScript(b); sa != "" || sb != "" {
		return sa == sb
	}
	ba, _, _ := strings.Cut(a, "-")
	bb, _, _ := strings.Cut(b, "-")
	return ba == bb
}

// ChineseScript is the written form a Chinese language tag names: "s" Simplified (bare "zh" too, as Mandarin
// recognizers write it), "t" Traditional, "hk" Hong Kong, "tw" Taiwan; "" for other languages. Cantonese is
// written in Hong Kong Traditional.
func ChineseScript(tag string) string {
	switch strings.ToLower(tag) {
	case "zh", "zh-hans", "zh-cn", "zh-sg", "cmn", "cmn-hans":
		return "s"
	case "zh-hant", "cmn-hant":
		return "t"
	case "zh-hk", "zh-mo", "yue", "yue-hant", "yue-hk":
		return "hk"
	case "zh-tw":
		return "tw"
	}
	return ""
}
