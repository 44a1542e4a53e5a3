package sfu

import (
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/edge-sfu/sfu/sfu/forward"
)

// Track sources, as the publisher declares them.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen_audio"
)

// Track is a published track as the room and its workers see it: the forwarding Receiver, its publisher, and the
// audio pipeline workers attach to.
type Track struct {
	r         *forward.Receiver
	publisher *Participant
	sfu       *SFU
	order     uint64 // its rank in the room's publications, set by Room.publish: WHEP viewers take the newest
	// origin is the participant of another node whose track a relay publishes here (Participant.RelayTrack);
	// nil: the publisher's own.
	origin *RemotePublisher

	audioMu sync.Mutex
	audio   *audioStage // nil until a worker asks for it
	ended   bool        // no new pipeline once the track has ended
}

// ID is the track's id, as its publisher named it.
func (t *Track) ID() string { return t.r.ID() }

// Kind is audio or video.
func (t *Track) Kind() webrtc.RTPCodecType { return t.r.Kind() }

// Source is what the track carries (SourceMicrophone, ...).
func (t *Track) Source() string { return t.r.Source() }

// IsMicrophone reports whether the track is someone's voice: the audio workers process these.
func (t *Track) IsMicrophone() bool {
	return t.r.Kind() == webrtc.RTPCodecTypeAudio && t.r.Source() == SourceMicrophone
}

// shownID is the id of the participant the room shows as the track's publisher: its origin's for a relayed
// track, else its publisher's. Subscribers receive it as the track's stream id.
func (t *Track) shownID() string {
	if t.origin != nil {
		return t.origin.ID
	}
	return t.publisher.info.ID
}

// Publisher is the participant who publishes the track: for a relayed track, the relay's participant.
func (t *Track) Publisher() *Participant { return t.publisher }

// Info describes the track.
func (t *Track) Info() TrackInfo {
	return TrackInfo{ID: t.r.ID(), Kind: t.r.Kind().String(), Muted: t.r.Muted(), Source: t.r.Source()}
}

// close ends the track's audio pipeline and pending keyframe requests.
func (t *Track) close() {
	t.stopAudio()
	t.r.Close()
}
