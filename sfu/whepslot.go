package sfu

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/sfu/alloc"
	"github.com/edge-sfu/sfu/sfu/forward"
)

// A WHEP viewer follows the room's tracks without a new offer: WHEP has no way for the server to renegotiate, so
// each audio or video section of the viewer's offer is a slot (whepSlot) that carries one room track of its kind
// at a time. A slot takes a track when one is there (the newest of its kind that no other slot of the viewer
// carries) and, when its track ends or when there was none at the POST, the next one published: the viewer that
// connects before the encoder starts, or whose encoder restarts, gets its media on the same tracks. The new
// track's DownTrack continues the old one's stream (forward.DownTrack.ContinueFrom): one SSRC, sequence numbers
// and timestamps that go on, a keyframe asked for. A slot keeps its track while it lasts: a later publisher does
// not take it over.

// whepSlot is one audio or video section of a WHEP viewer's offer: the webrtc.TrackLocal of its transceiver. The
// DownTrack of the room track it carries writes through the slot's binding. Its fields but the constant ones are
// under its participant's mu; Bind and Unbind, called by Pion, take that lock.
type whepSlot struct {
	p      *Participant
	kind   webrtc.RTPCodecType
	id     string
	sender *webrtc.RTPSender
	mimes  []string // the codecs the player's section takes: a track of another codec is not put in it

	ctx  webrtc.TrackLocalContext // Pion's binding of the section; nil before it and after Unbind
	down *forward.DownTrack       // the copy carried now; nil: free
	last *forward.DownTrack       // the copy carried before: the next continues its stream
}

// ID names the section's track for the viewer; it does not change with the room track carried.
func (s *whepSlot) ID() string { return s.id }

// RID is empty: one encoding.
func (s *whepSlot) RID() string { return "" }

// StreamID is the viewer's participant id: its audio and video make one stream for the player.
func (s *whepSlot) StreamID() string { return s.p.info.ID }

// Kind is the section's kind.
func (s *whepSlot) Kind() webrtc.RTPCodecType { return s.kind }

// Bind is called by Pion once the section is negotiated: the copy carried, if any, binds to it; without one, the
// section's first codec stands until a track comes.
func (s *whepSlot) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	s.p.mu.Lock()
	s.ctx = ctx
	d := s.down
	s.p.mu.Unlock()
	if d != nil { // bound with no lock held: binding may ask the publisher for a keyframe
		if c, err := d.Bind(ctx); err == nil {
			return c, nil
		}
	}
	if codecs := ctx.CodecParameters(); len(codecs) > 0 {
		return codecs[0], nil
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("whep %s section: %w", s.kind, webrtc.ErrUnsupportedCodec)
}

// Unbind is called by Pion when the section goes (the connection closes).
func (s *whepSlot) Unbind(ctx webrtc.TrackLocalContext) error {
	s.p.mu.Lock()
	s.ctx = nil
	d := s.down
	s.p.mu.Unlock()
	if d != nil {
		return d.Unbind(ctx)
	}
	return nil
}

// accepts reports whether the section takes a track of codec c.
func (s *whepSlot) accepts(c webrtc.RTPCodecParameters) bool {
	return slices.ContainsFunc(s.mimes, func(m string) bool { return strings.EqualFold(m, c.MimeType) })
}

// readRTCP reads the viewer's RTCP for the section until the connection closes, and hands it to the copy carried
// now (keyframe requests, NACKs).
func (s *whepSlot) readRTCP() {
	for {
		pkts, _, err := s.sender.ReadRTCP()
		if err != nil {
			return
		}
		s.p.mu.Lock()
		d := s.down
		s.p.mu.Unlock()
		if d != nil {
			d.HandleRTCP(pkts)
		}
	}
}

// addWHEPSlots gives each audio and video section of the viewer's offer, once it is the remote description, a
// slot. No lock is held.
func (p *Participant) addWHEPSlots() error {
	n := map[webrtc.RTPCodecType]int{}
	for _, tr := range p.sub.GetTransceivers() {
		kind := tr.Kind()
		if tr.Mid() == "" || tr.Sender() != nil || kind != webrtc.RTPCodecTypeAudio && kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		s := &whepSlot{p: p, kind: kind, id: fmt.Sprintf("%s-%d", kind, n[kind])}
		n[kind]++
		sender, err := p.sub.AddTrack(s)
		if err != nil {
			return fmt.Errorf("whep %s section: %w", kind, err)
		}
		s.sender = sender
		for _, c := range sender.GetParameters().Codecs { // those of the offer's section
			s.mimes = append(s.mimes, c.MimeType)
		}
		p.mu.Lock()
		p.slots = append(p.slots, s)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			s.readRTCP()
		}()
	}
	return nil
}

// subscribeSlot puts t in a free slot of its kind, if the viewer has one and does not carry t already.
func (p *Participant) subscribeSlot(t *Track) {
	r := t.r
	d := forward.NewDownTrack(r, t.shownID(), &p.subConnected)
	sub := &subscription{track: t, down: d}
	sub.tileW.Store(alloc.TileUnknown)
	sub.tileH.Store(alloc.TileUnknown)
	p.mu.Lock()
	var slot *whepSlot
	for _, s := range p.slots {
		if s.kind == r.Kind() && s.down == nil && s.accepts(r.Codec()) {
			slot = s
			break
		}
	}
	if p.closed || p.downs[r] != nil || slot == nil {
		p.mu.Unlock()
		return
	}
	prev, ctx := slot.last, slot.ctx
	slot.down, slot.last = d, nil
	sub.sender = slot.sender
	p.downs[r] = sub
	p.mu.Unlock()

	if prev != nil {
		d.ContinueFrom(prev)
	}
	if ctx != nil { // else Pion binds it with the slot
		if _, err := d.Bind(ctx); err != nil {
			p.log.Info("whep: the section cannot carry this track", zap.String("track", r.ID()), zap.Error(err))
			p.releaseSlot(slot, sub, prev)
			return
		}
	}
	if !r.AddDownTrack(d) { // unpublished meanwhile
		p.releaseSlot(slot, sub, prev)
		return
	}
	p.pokeControl()
}

// releaseSlot undoes subscribeSlot's reservation of slot for sub, if it still stands.
func (p *Participant) releaseSlot(slot *whepSlot, sub *subscription, prev *forward.DownTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slot.down == sub.down {
		slot.down, slot.last = nil, prev
	}
	if p.downs[sub.track.r] == sub {
		delete(p.downs, sub.track.r)
	}
}

// freeSlotLocked frees the slot that carried d, whose track ended; p.mu is held. The next copy it carries continues d's
// stream.
func (p *Participant) freeSlotLocked(d *forward.DownTrack) {
	for _, s := range p.slots {
		if s.down == d {
			s.down, s.last = nil, d
		}
	}
}

// fillSlots puts the room's tracks, newest first, in the viewer's free slots.
func (p *Participant) fillSlots() {
	for _, t := range newestFirst(p.room.tracks(p)) {
		p.subscribeSlot(t)
	}
}

// newestFirst sorts tracks by publication, the latest first.
func newestFirst(tracks []*Track) []*Track {
	slices.SortFunc(tracks, func(a, b *Track) int { return cmp.Compare(b.order, a.order) })
	return tracks
}
