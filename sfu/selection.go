package sfu

import (
	"time"

	"github.com/edge-sfu/sfu/sfu/alloc"
)

// Audio selection: a room forwards to its listeners only its loudest microphones, at most its max audio streams
// (the room's settings, else the node's; 0: every one), so that a listener of an all-hands with twenty open
// microphones receives three streams, not twenty. sfu/alloc's AudioSelector chooses, from the RFC 6464 levels the
// publishers put in their packets; the choice is applied to each microphone's Receiver, which then forwards to
// nobody (forward.Receiver.SetSilenced). Microphones whose packets carry no audio level, and other audio (a screen share's), are
// always forwarded: there is nothing to rank them by.

// maxAudioStreams is the room's limit on forwarded microphones (0: none).
func (rm *Room) maxAudioStreams() int {
	if n := rm.settings.MaxAudioStreams; n != nil {
		return *n
	}
	return rm.sfu.maxAudioStreams
}

// selectAudio reads the microphones' levels since the last call and applies the selection.
func (rm *Room) selectAudio(now time.Time) {
	places := rm.maxAudioStreams()
	rm.mu.Lock()
	if rm.micLevels == nil {
		rm.micLevels = levelReader{}
	}
	var mics []alloc.Mic
	var tracks []*Track
	live := map[*Track]bool{}
	for _, p := range rm.participants {
		for _, t := range p.Tracks() {
			if !t.IsMicrophone() || !t.r.HasAudioLevel() || t.r.Levels().Count == 0 {
				continue // nothing to rank it by (yet): forwarded
			}
			live[t] = true
			level, voiced := rm.micLevels.read(t)
			mics = append(mics, alloc.Mic{Key: t, Level: level, Voiced: voiced, Muted: t.r.Muted()})
			tracks = append(tracks, t)
		}
	}
	rm.micLevels.keep(live)
	selected := rm.audioSel.Next(now, places, mics)
	rm.mu.Unlock()
	for _, t := range tracks {
		t.r.SetSilenced(!selected[t])
	}
}
