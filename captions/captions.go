// Package captions turns a track's speech into live captions: 16 kHz mono PCM from the audio pipeline's tap,
// voice-activity detection that cuts it into utterances, a Recognizer that transcribes each one (partial
// results while it lasts, a final one at its end), and Translators that put the final text into the languages
// the room's participants read. Engines live beside this file; they are chosen by name in the node's
// configuration.
package captions

import (
	"context"
	"errors"
	"time"
)

// SampleRate is the rate of the PCM recognizers get: 16 kHz mono, 16-bit.
const SampleRate = 16000

// Recognizer transcribes speech. One Recognizer serves a whole node; each utterance gets its own Utterance.
type Recognizer interface {
	// Open starts one utterance spoken in lang ("en", "yue", "zh", "ja", ...).
	Open(ctx context.Context, lang string) (Utterance, error)
}

// Utterance is one stretch of speech being recognized. Its methods are called from one goroutine.
type Utterance interface {
	// Write adds 16 kHz mono PCM and returns the current partial hypothesis ("" when the engine has none or
	// gives none until the end).
	Write(pcm []int16) (partial string, err error)
	// Finish ends the utterance and returns its final text.
	Finish() (string, error)
	// Close releases the utterance, finished or not.
	Close() error
}

// Translator translates final caption text.
type Translator interface {
	// Supports reports whether the translator can go from one language to the other.
	Supports(from, to string) bool
	Translate(ctx context.Context, text, from, to string) (string, error)
}

// Caption is one caption event: a partial or final transcript of an utterance, with translations.
type Caption struct {
	ParticipantID string
	TrackID       string
	Lang          string // the language spoken
	Text          string
	Final         bool
	Start, End    time.Duration     // from the start of the track's captioning
	StartTime     time.Time         // wall clock of Start
	Translations  map[string]string // by language; finals only
	Chat          bool              // not speech: a chat message kept in a room's transcript
}

// ErrUnsupportedLanguage is returned by a recognizer asked for a language it does not know.
var ErrUnsupportedLanguage = errors.New("language not supported by this recognizer")

// ErrUnavailable marks an engine that cannot run here (not installed, built without cgo, server unreachable).
var ErrUnavailable = errors.New("captions engine unavailable")
