// Package roomcaptions is the live-captions worker of a node: while anyone in a room reads captions (in a room
// whose settings say "captions": "admin", while an administrator does), it taps every microphone of the room
// (the SFU's audio pipeline), runs a captions job over each (recognition in the language its speaker speaks,
// then translation into every language someone reads), and sends each caption to the participants who read
// captions, with the translations each asked for. Reading captions needs the right to subscribe. Everyone in the
// room is told whose speech is transcribed (a transcription message), and each job holds a slot of the node's
// worker budget. It keeps a room's final captions as its transcript (GET /transcript/{room}).
package roomcaptions

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/captions"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/protocol"
)

// Service transcribes one track: captions.Service, or anything that runs a captions.Job until its frames end
// or ctx does.
type Service interface {
	Run(ctx context.Context, job captions.Job)
}

// Bounds on captions: languages one participant may read, final captions a room's transcript keeps, and the
// frames a tap holds for a slow recognizer.
const (
	maxLanguages  = 8
	maxTranscript = 10000
	tapFrames     = 150 // 3 s of 20 ms frames: room for a slow recognizer before frames (and the utterance) are dropped
)

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$`)

// Config configures the worker.
type Config struct {
	// Service runs the captions jobs; nil: this node has no captions engine, and requests for captions are
	// refused as unavailable (turning them off is not).
	Service Service
	// Lang is what participants speak unless they or their room say otherwise (default "en").
	Lang string
	// EngineRegion is the region the engines that receive a room's speech and text run in ("": this node); a room
	// whose residency policy (sfu.Room.Regions) does not name it gets no captions, with the reason.
	EngineRegion string
	// Budget is the node's slots for worker streams: a job on a track holds one (nil: no limit).
	Budget *sfu.WorkerBudget
	// OnTranscript is given a room's transcript (WebVTT, as spoken) when the room closes, if it has any cue;
	// the node forgets it then. nil: nobody is.
	OnTranscript func(room sfu.RoomRef, vtt []byte, cues int)
	Logger       *zap.Logger
}

// Worker is the captions worker of a node.
type Worker struct {
	cfg Config
	log *zap.Logger

	mu    sync.Mutex
	rooms map[string]*roomWorker // open rooms by name, for their transcripts
}

// New makes the worker.
func New(cfg Config) *Worker {
	if cfg.Lang == "" {
		cfg.Lang = "en"
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Worker{cfg: cfg, log: log, rooms: map[string]*roomWorker{}}
}

// Name implements sfu.Worker: participants' captions messages come to it.
func (w *Worker) Name() string { return protocol.TypeCaptions }

// Who may turn on transcription in a room: its "captions" setting.
const (
	PolicyAnyone = "anyone" // anyone who reads captions (the default)
	PolicyAdmin  = "admin"  // only an administrator: the room is transcribed while one reads captions
)

// roomSettings are the worker's keys of a room's settings.
type roomSettings struct {
	// Language is what the room's participants speak unless they say otherwise ("en", "yue", ...).
	Language string `json:"language,omitempty"`
	// Captions is who turns on transcription: PolicyAnyone ("": the same) or PolicyAdmin.
	Captions string `json:"captions,omitempty"`
}

// CheckSettings refuses room settings whose captions policy is neither "anyone" nor "admin".
func (w *Worker) CheckSettings(s sfu.RoomSettings) error {
	var rs roomSettings
	if err := s.Decode(&rs); err != nil {
		return err
	}
	switch rs.Captions {
	case "", PolicyAnyone, PolicyAdmin:
		return nil
	}
	return fmt.Errorf("captions %q: want %q or %q", rs.Captions, PolicyAnyone, PolicyAdmin)
}

// residentEngine reports whether a room with this residency policy may send its speech to the engine.
func (w *Worker) residentEngine(regions []string) bool {
	return w.cfg.EngineRegion == "" || len(regions) == 0 || slices.Contains(regions, w.cfg.EngineRegion)
}

// OpenRoom implements sfu.Worker.
func (w *Worker) OpenRoom(rm *sfu.Room) sfu.RoomWorker {
	ctx, cancel := context.WithCancel(context.Background())
	rw := &roomWorker{w: w, room: rm, ctx: ctx, cancel: cancel, origin: time.Now(),
		readers: map[string]reader{}, spoken: map[string]string{}, jobs: map[*sfu.Track]*job{}, names: map[string]string{}}
	if err := rm.Settings().Decode(&rw.settings); err != nil {
		w.log.Warn("room settings", zap.String("room", rm.Name()), zap.Error(err))
	}
	if err := w.CheckSettings(rm.Settings()); err != nil { // unchecked settings: the strict policy
		w.log.Warn("room settings: only administrators turn on captions", zap.String("room", rm.Name()), zap.Error(err))
		rw.settings.Captions = PolicyAdmin
	}
	w.mu.Lock()
	w.rooms[rm.Name()] = rw
	w.mu.Unlock()
	return rw
}

// Transcript is a room's final captions so far as WebVTT, in lang where translated ("": as spoken); false when
// the room is not open on this node.
func (w *Worker) Transcript(room, lang string) ([]byte, bool) {
	w.mu.Lock()
	rw := w.rooms[room]
	w.mu.Unlock()
	if rw == nil {
		return nil, false
	}
	vtt, _ := rw.webVTT(lang)
	return vtt, true
}

// webVTT is the room's final captions so far as WebVTT, in lang where translated ("": as spoken), and how many
// there are.
func (rw *roomWorker) webVTT(lang string) ([]byte, int) {
	rw.mu.Lock()
	cues := slices.Clone(rw.transcript)
	slices.SortStableFunc(cues, func(a, b captions.Caption) int { return cmp.Compare(a.Start, b.Start) }) // chat lands as sent, finals after their speech
	names := make(map[string]string, len(rw.names))
	for id, n := range rw.names {
		names[id] = n
	}
	rw.mu.Unlock()
	var b bytes.Buffer
	_ = captions.WriteWebVTT(&b, cues, lang, func(id string) string { return names[id] })
	return b.Bytes(), len(cues)
}

// roomWorker captions one room.
type roomWorker struct {
	w        *Worker
	room     *sfu.Room
	settings roomSettings
	ctx      context.Context // the room's life: ends the jobs
	cancel   context.CancelFunc
	origin   time.Time // time zero of the transcript
	wg       sync.WaitGroup

	announceMu sync.Mutex // held while telling the room who is transcribed, so that the news goes out in order
	announced  []string   // who the room was last told is transcribed; under announceMu

	mu          sync.Mutex
	readers     map[string]reader // participants who read captions, by id; absent: no captions
	spoken      map[string]string // the language each participant speaks, when it said
	jobs        map[*sfu.Track]*job
	transcript  []captions.Caption
	names       map[string]string // participant id → display name, for the transcript
	unavailable string            // why the engine is failing; "" while it works
}

// reader is a participant who reads captions.
type reader struct {
	langs []string // the languages it reads
	admin bool     // an administrator: it turns transcription on in a room of PolicyAdmin
}

type job struct {
	lang    string
	cancel  context.CancelFunc
	release func() // gives back the job's budget slot (once)
}

// Control implements sfu.RoomWorker: a captions message chooses the languages the participant reads captions in
// (none: captions off) and the language it speaks ("": the room's).
func (rw *roomWorker) Control(p *sfu.Participant, req any) error {
	r, ok := req.(protocol.Request)
	if !ok || r.Languages == nil {
		return fmt.Errorf("captions needs languages: %w", sfu.ErrBadRequest)
	}
	langs, spoken := r.Languages, r.Spoken
	if len(langs) > maxLanguages {
		return fmt.Errorf("at most %d caption languages: %w", maxLanguages, sfu.ErrBadRequest)
	}
	for _, l := range append(slices.Clone(langs), spoken) {
		if l != "" && !languageTag.MatchString(l) {
			return fmt.Errorf("%.20q is not a language tag: %w", l, sfu.ErrBadRequest)
		}
	}
	switch {
	case len(langs) == 0:
	case !p.CanSubscribe():
		return fmt.Errorf("reading captions needs the right to subscribe: %w", sfu.ErrForbidden)
	case rw.room.E2EE():
		return sfu.ErrE2EE
	case rw.w.cfg.Service == nil:
		return fmt.Errorf("this node has no captions engine: %w", sfu.ErrUnavailable)
	case !rw.w.residentEngine(rw.room.Regions()):
		return fmt.Errorf("the captions engine runs in region %s and room %q is kept in regions %v: %w",
			rw.w.cfg.EngineRegion, rw.room.Name(), rw.room.Regions(), sfu.ErrUnavailable)
	}
	rw.mu.Lock()
	if len(langs) > 0 {
		rw.readers[p.ID()] = reader{langs: slices.Clone(langs), admin: p.IsAdmin()}
	} else {
		delete(rw.readers, p.ID())
	}
	if spoken != "" {
		rw.spoken[p.ID()] = spoken
	}
	reason := rw.unavailable
	rw.mu.Unlock()
	err := rw.sync() // a microphone the budget has no slot for: the reader is told, and reads the others
	if len(langs) > 0 {
		rw.tell(p.ID())
		if reason != "" {
			rw.room.Send(p.ID(), protocol.CaptionsStatus{Type: protocol.TypeCaptionsStatus, Available: false, Reason: reason})
		}
	}
	return err
}

// TrackPublished implements sfu.RoomWorker.
func (rw *roomWorker) TrackPublished(t *sfu.Track) {
	if t.IsMicrophone() {
		_ = rw.sync()
	}
}

// TrackUnpublished implements sfu.RoomWorker.
func (rw *roomWorker) TrackUnpublished(t *sfu.Track) {
	if t.IsMicrophone() {
		_ = rw.sync()
	}
}

// ParticipantJoined implements sfu.RoomWorker: a newcomer to a room being transcribed is told who is.
func (rw *roomWorker) ParticipantJoined(p *sfu.Participant) {
	rw.mu.Lock()
	transcribed := len(rw.transcribedLocked()) > 0
	rw.mu.Unlock()
	if transcribed {
		rw.tell(p.ID())
	}
}

// ParticipantLeft implements sfu.RoomWorker: it may have been the last to read captions.
func (rw *roomWorker) ParticipantLeft(p *sfu.Participant) {
	rw.mu.Lock()
	delete(rw.readers, p.ID())
	delete(rw.spoken, p.ID())
	rw.mu.Unlock()
	_ = rw.sync()
}

// Close implements sfu.RoomWorker: it ends every job and waits for them.
func (rw *roomWorker) Close() {
	rw.w.mu.Lock()
	if rw.w.rooms[rw.room.Name()] == rw {
		delete(rw.w.rooms, rw.room.Name())
	}
	rw.w.mu.Unlock()
	rw.cancel()
	rw.wg.Wait()
	if rw.w.cfg.OnTranscript != nil {
		if vtt, n := rw.webVTT(""); n > 0 {
			rw.w.cfg.OnTranscript(rw.room.Ref(), vtt, n)
		}
	}
}

// spokenLanguage is the language a participant's tracks are recognized in: its own choice, the room's, the
// node's; rw.mu is held.
func (rw *roomWorker) spokenLanguage(participantID string) string {
	switch {
	case rw.spoken[participantID] != "":
		return rw.spoken[participantID]
	case rw.settings.Language != "":
		return rw.settings.Language
	}
	return rw.w.cfg.Lang
}

// transcribingLocked says whether the room's microphones are transcribed: while anyone reads captions, or in a
// room of PolicyAdmin while an administrator does; rw.mu is held.
func (rw *roomWorker) transcribingLocked() bool {
	if rw.settings.Captions != PolicyAdmin {
		return len(rw.readers) > 0
	}
	for _, r := range rw.readers {
		if r.admin {
			return true
		}
	}
	return false
}

// sync runs a job on every microphone of the room while it is transcribed, in the language its speaker speaks,
// and stops them all when it is not; then it tells the room who is transcribed. The error says which
// microphones got no job (a spent budget: ErrUnavailable).
func (rw *roomWorker) sync() error {
	if rw.room.E2EE() || rw.w.cfg.Service == nil {
		return nil
	}
	var mics []*sfu.Track
	for _, p := range rw.room.Participants() {
		for _, t := range p.Tracks() {
			if t.IsMicrophone() {
				mics = append(mics, t)
			}
		}
	}
	type start struct {
		t    *sfu.Track
		lang string
	}
	var started []start
	var errs []error
	defer rw.announce() // after the lock, as the audit log
	defer func() {      // after the lock: the audit log writes
		for _, s := range started {
			rw.room.WorkerStarted(s.t.Publisher().ID(), s.t.ID(), "captions:"+s.lang)
		}
	}()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.ctx.Err() != nil {
		return nil
	}
	want := map[*sfu.Track]string{}
	if rw.transcribingLocked() {
		for _, t := range mics {
			want[t] = rw.spokenLanguage(t.Publisher().ID())
		}
	}
	for t, j := range rw.jobs {
		if lang, ok := want[t]; !ok || lang != j.lang {
			j.cancel()
			j.release() // now, not when the job has wound down: a new language's job takes it again
			delete(rw.jobs, t)
		}
	}
	for _, t := range mics {
		lang, ok := want[t]
		if !ok || rw.jobs[t] != nil {
			continue
		}
		if err := rw.startLocked(t, lang); err != nil {
			rw.w.log.Warn("captions not started", zap.String("room", rw.room.Name()), zap.String("track", t.ID()), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		started = append(started, start{t, lang})
	}
	return errors.Join(errs...)
}

// startLocked taps t's audio and runs the captions service over it; rw.mu is held.
func (rw *roomWorker) startLocked(t *sfu.Track, lang string) error {
	release, err := rw.w.cfg.Budget.TakeFor(rw.room, "captions of "+t.Publisher().ID())
	if err != nil {
		return err
	}
	pipe, err := t.Audio()
	if err != nil {
		release()
		return err
	}
	tap := pipe.AddTap(tapFrames)
	ctx, cancel := context.WithCancel(rw.ctx)
	j := &job{lang: lang, cancel: cancel, release: release}
	rw.jobs[t] = j
	pid := t.Publisher().ID()
	rw.names[pid] = t.Publisher().Name()
	cj := captions.Job{ParticipantID: pid, TrackID: t.ID(), Lang: lang, Frames: tap.C, Dropped: tap.Dropped,
		Origin: rw.origin, Targets: rw.targets, Emit: rw.deliver, Status: rw.status}
	rw.wg.Add(1)
	go func() {
		defer rw.wg.Done()
		rw.w.cfg.Service.Run(ctx, cj)
		pipe.RemoveTap(tap)
		cancel()
		release()
		rw.mu.Lock()
		ended := rw.jobs[t] == j
		if ended {
			delete(rw.jobs, t)
		}
		rw.mu.Unlock()
		if ended && rw.ctx.Err() == nil { // it ended by itself: the room hears that it is no longer transcribed
			rw.announce()
		}
	}()
	return nil
}

// transcribedLocked is who is transcribed now: the participants whose microphones have a job, sorted; rw.mu is
// held.
func (rw *roomWorker) transcribedLocked() []string {
	ids := []string{}
	for t := range rw.jobs {
		if id := t.Publisher().ID(); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// announce tells everyone in the room who is transcribed, when that changed since it last did.
func (rw *roomWorker) announce() {
	rw.announceMu.Lock()
	defer rw.announceMu.Unlock()
	rw.mu.Lock()
	ids := rw.transcribedLocked()
	rw.mu.Unlock()
	if slices.Equal(ids, rw.announced) { // nobody before the first announcement
		return
	}
	rw.announced = ids
	msg := protocol.Transcription{Type: protocol.TypeTranscription, Transcribed: ids}
	for _, p := range rw.room.Participants() {
		rw.room.Send(p.ID(), msg)
	}
}

// tell tells one participant who is transcribed now.
func (rw *roomWorker) tell(participantID string) {
	rw.mu.Lock()
	ids := rw.transcribedLocked()
	rw.mu.Unlock()
	rw.room.Send(participantID, protocol.Transcription{Type: protocol.TypeTranscription, Transcribed: ids})
}

// targets is every language someone in the room reads.
func (rw *roomWorker) targets() []string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var out []string
	for _, r := range rw.readers {
		for _, l := range r.langs {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// Chat implements sfu.ChatListener: the room's public chat goes into its transcript, beside the captions.
func (rw *roomWorker) Chat(m sfu.ChatMessage) {
	start := m.At.Sub(rw.origin)
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.transcript) >= maxTranscript {
		rw.transcript = rw.transcript[1:]
	}
	if _, ok := rw.names[m.From]; !ok {
		rw.names[m.From] = m.FromName
	}
	rw.transcript = append(rw.transcript, captions.Caption{ParticipantID: m.From, Text: m.Text, Final: true,
		Start: start, End: start, StartTime: m.At, Chat: true})
}

// deliver sends a caption to everyone who reads captions, each with the translations it asked for, and keeps
// final ones in the transcript.
func (rw *roomWorker) deliver(c captions.Caption) {
	rw.mu.Lock()
	if c.Final {
		if len(rw.transcript) >= maxTranscript {
			rw.transcript = rw.transcript[1:]
		}
		rw.transcript = append(rw.transcript, c)
	}
	readers := make(map[string][]string, len(rw.readers))
	for id, r := range rw.readers {
		readers[id] = r.langs
	}
	rw.mu.Unlock()
	for id, langs := range readers {
		rw.room.Send(id, Message(c, langs))
	}
}

// Message is a caption as a participant who reads langs gets it: with the translations into those only.
func Message(c captions.Caption, langs []string) protocol.Caption {
	tr := map[string]string{}
	for _, l := range langs {
		if t, ok := c.Translations[l]; ok {
			tr[l] = t
		}
	}
	return protocol.Caption{Type: protocol.TypeCaption, Participant: c.ParticipantID, Track: c.TrackID, Lang: c.Lang,
		Text: c.Text, Final: c.Final, Start: c.Start.Seconds(), End: c.End.Seconds(), Translations: tr}
}

// status tells caption readers that the engine stopped working, or works again.
func (rw *roomWorker) status(available bool, reason string) {
	if available {
		reason = ""
	}
	rw.mu.Lock()
	changed := rw.unavailable != reason
	rw.unavailable = reason
	var readers []string
	for id := range rw.readers {
		readers = append(readers, id)
	}
	rw.mu.Unlock()
	if !changed {
		return
	}
	for _, id := range readers {
		rw.room.Send(id, protocol.CaptionsStatus{Type: protocol.TypeCaptionsStatus, Available: reason == "", Reason: reason})
	}
}
