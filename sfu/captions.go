package sfu

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/captions"
	"github.com/edge-sfu/sfu/media/audio"
)

// CaptionService transcribes one track: captions.Service, or anything that runs a captions.Job until its
// frames end or ctx does.
type CaptionService interface {
	Run(ctx context.Context, job captions.Job)
}

// Bounds on captions: languages one participant may read, and final captions a room's transcript keeps.
const (
	maxCaptionLanguages = 8
	maxTranscript       = 10000
	captionTapFrames    = 150 // 3 s of 20 ms frames: room for a slow recognizer before frames are dropped
)

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$`)

// roomCaptions is a room's captioning: a job per microphone track while anyone reads captions, and the
// transcript of final captions.
type roomCaptions struct {
	mu          sync.Mutex
	jobs        map[*Receiver]*captionJob
	transcript  []captions.Caption
	names       map[string]string // participant id → display name, for the transcript
	origin      time.Time         // time zero of the transcript
	unavailable string            // why the engine is failing; "" while it works
}

type captionJob struct {
	lang   string
	cancel context.CancelFunc
	done   chan struct{}
}

// SetCaptions chooses the languages the participant reads captions in (none: captions off) and the language it
// speaks ("": the room's). Captions go to the participant as EventCaption.
func (p *Participant) SetCaptions(langs []string, spoken string) error {
	if len(langs) > maxCaptionLanguages {
		return fmt.Errorf("at most %d caption languages: %w", maxCaptionLanguages, ErrBadRequest)
	}
	for _, l := range append(slices.Clone(langs), spoken) {
		if l != "" && !languageTag.MatchString(l) {
			return fmt.Errorf("%.20q is not a language tag: %w", l, ErrBadRequest)
		}
	}
	rm := p.room
	if len(langs) > 0 {
		switch {
		case rm.settings.E2EE:
			return ErrE2EE
		case rm.sfu.captions == nil || rm.sfu.audio == nil:
			return fmt.Errorf("this node has no captions engine: %w", ErrUnavailable)
		}
	}
	p.mu.Lock()
	p.captionLangs = slices.Clone(langs)
	if spoken != "" {
		p.spoken = spoken
	}
	p.mu.Unlock()
	rm.syncCaptions()
	rm.caps.mu.Lock()
	reason := rm.caps.unavailable
	rm.caps.mu.Unlock()
	if len(langs) > 0 && reason != "" {
		p.peer.SendEvent(Event{Kind: EventCaptionStatus, Error: reason})
	}
	return nil
}

// spokenLanguage is the language p's tracks are recognized in: its own choice, the room's, the node's.
func (p *Participant) spokenLanguage() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.spoken != "":
		return p.spoken
	case p.room.settings.Language != "":
		return p.room.settings.Language
	case p.room.sfu.captionLang != "":
		return p.room.sfu.captionLang
	}
	return "en"
}

func (p *Participant) readsCaptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.captionLangs
}

// syncCaptions starts a captioning job for every microphone track of the room while anyone reads captions, with
// the language its speaker speaks, and stops them all when nobody does.
func (rm *Room) syncCaptions() {
	if rm.sfu.captions == nil || rm.sfu.audio == nil || rm.settings.E2EE {
		return
	}
	want := map[*Receiver]string{}
	type pub struct {
		p *Participant
		r *Receiver
	}
	var pubs []pub
	anyone := false
	for _, q := range rm.snapshot() {
		if len(q.readsCaptions()) > 0 {
			anyone = true
		}
		q.mu.Lock()
		for _, r := range q.published {
			if r.kind == webrtc.RTPCodecTypeAudio && r.source == SourceMicrophone {
				pubs = append(pubs, pub{q, r})
			}
		}
		q.mu.Unlock()
	}
	if anyone {
		for _, x := range pubs {
			want[x.r] = x.p.spokenLanguage()
		}
	}
	rm.caps.mu.Lock()
	defer rm.caps.mu.Unlock()
	for r, j := range rm.caps.jobs {
		if lang, ok := want[r]; !ok || lang != j.lang {
			j.cancel()
			delete(rm.caps.jobs, r)
		}
	}
	for _, x := range pubs {
		lang, ok := want[x.r]
		if !ok || rm.caps.jobs[x.r] != nil {
			continue
		}
		if err := rm.startCaptionJob(x.p, x.r, lang); err != nil {
			rm.sfu.log.Warn("captions not started", zap.String("track", x.r.id), zap.Error(err))
		}
	}
}

// startCaptionJob taps r's audio and runs the captions service over it; rm.caps.mu is held.
func (rm *Room) startCaptionJob(p *Participant, r *Receiver, lang string) error {
	tap, err := r.AudioTap(rm.sfu.audio, captionTapFrames, p.log)
	if err != nil {
		return err
	}
	if rm.caps.jobs == nil {
		rm.caps.jobs = map[*Receiver]*captionJob{}
		rm.caps.names = map[string]string{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &captionJob{lang: lang, cancel: cancel, done: make(chan struct{})}
	rm.caps.jobs[r] = j
	rm.caps.names[p.info.ID] = p.info.Name
	job := captions.Job{ParticipantID: p.info.ID, TrackID: r.id, Lang: lang, Frames: tap.C, Origin: rm.caps.origin,
		Targets: rm.captionTargets, Emit: rm.deliverCaption, Status: rm.captionStatus}
	rm.sfu.workerStarted(rm.name, p.info.ID, r.id, "captions:"+lang)
	rm.sfu.wg.Add(1)
	go func() {
		defer rm.sfu.wg.Done()
		defer close(j.done)
		rm.sfu.captions.Run(ctx, job)
		r.removeTap(tap)
		cancel()
		rm.caps.mu.Lock()
		if rm.caps.jobs[r] == j {
			delete(rm.caps.jobs, r)
		}
		rm.caps.mu.Unlock()
	}()
	return nil
}

// captionTargets is every language someone in the room reads.
func (rm *Room) captionTargets() []string {
	var out []string
	for _, q := range rm.snapshot() {
		for _, l := range q.readsCaptions() {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// deliverCaption sends a caption to everyone who reads captions, each with the translations it asked for, and
// keeps final ones in the transcript.
func (rm *Room) deliverCaption(c captions.Caption) {
	if c.Final {
		rm.caps.mu.Lock()
		if len(rm.caps.transcript) >= maxTranscript {
			rm.caps.transcript = rm.caps.transcript[1:]
		}
		rm.caps.transcript = append(rm.caps.transcript, c)
		rm.caps.mu.Unlock()
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, q := range rm.participants {
		langs := q.readsCaptions()
		if len(langs) == 0 {
			continue
		}
		mine := c
		mine.Translations = map[string]string{}
		for _, l := range langs {
			if t, ok := c.Translations[l]; ok {
				mine.Translations[l] = t
			}
		}
		q.peer.SendEvent(Event{Kind: EventCaption, Caption: &mine})
	}
}

// captionStatus tells caption readers that the engine stopped working, or works again.
func (rm *Room) captionStatus(available bool, reason string) {
	rm.caps.mu.Lock()
	if available {
		reason = ""
	}
	changed := rm.caps.unavailable != reason
	rm.caps.unavailable = reason
	rm.caps.mu.Unlock()
	if !changed {
		return
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, q := range rm.participants {
		if len(q.readsCaptions()) > 0 {
			q.peer.SendEvent(Event{Kind: EventCaptionStatus, Error: reason})
		}
	}
}

// Transcript returns a room's final captions so far and its participants' names by id; false when the room does
// not exist on this node.
func (s *SFU) Transcript(room string) ([]captions.Caption, map[string]string, bool) {
	s.mu.Lock()
	rm := s.rooms[room]
	s.mu.Unlock()
	if rm == nil {
		return nil, nil, false
	}
	rm.caps.mu.Lock()
	defer rm.caps.mu.Unlock()
	names := map[string]string{}
	for id, n := range rm.caps.names {
		names[id] = n
	}
	return slices.Clone(rm.caps.transcript), names, true
}

// removeTap stops feeding a tap, if the track still has a pipeline.
func (r *Receiver) removeTap(t *audio.Tap) {
	if pipe := r.pipe.Load(); pipe != nil {
		pipe.RemoveTap(t)
	}
}
