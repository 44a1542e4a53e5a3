// Package audio is the server's audio pipeline: a published Opus track is decoded to 48 kHz mono PCM, passed
// through a chain of Processors (noise suppression) and encoded again, and copies of the PCM go to taps
// (captions). The codecs and the processors come from other packages through the small interfaces below.
package audio

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// SampleRate is the rate of every PCM frame in the pipeline; the audio is mono.
const SampleRate = 48000

// FrameSamples is the size of the frames a Processor sees: 10 ms at 48 kHz.
const FrameSamples = SampleRate / 100

// Processor changes 10 ms of 48 kHz mono PCM (FrameSamples samples) in place. One Processor serves one stream
// and is called from one goroutine at a time, frame after frame in order; Close releases what it holds.
type Processor interface {
	Process(frame []int16) error
	Close() error
}

// Decoder turns one Opus packet into 48 kHz mono PCM and reports how many samples it wrote.
type Decoder interface {
	Decode(payload []byte, pcm []int16) (int, error)
}

// Encoder turns 48 kHz mono PCM (2.5, 5, 10, 20, 40 or 60 ms of it) into one Opus packet and reports its size.
type Encoder interface {
	Encode(pcm []int16, out []byte) (int, error)
}

// Factory makes a Processor for one stream.
type Factory func() (Processor, error)

// ErrUnknownProcessor is returned for a processor name nobody registered.
var ErrUnknownProcessor = errors.New("unknown audio processor")

// ErrUnavailable wraps the reason a registered processor or codec cannot run in this server, such as a build
// without cgo or a missing library.
var ErrUnavailable = errors.New("unavailable in this server")

// Registry holds the processors a node can run, by name. It is filled at start and read afterwards.
type Registry struct {
	mu sync.RWMutex
	m  map[string]entry
}

type entry struct {
	about string
	make  Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]entry{}} }

// Register adds a processor; about is a one-line description for listings.
func (r *Registry) Register(name, about string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[name] = entry{about: about, make: f}
}

// New makes one Processor of the named kind.
func (r *Registry) New(name string) (Processor, error) {
	r.mu.RLock()
	e, ok := r.m[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%.32q (known: %v): %w", name, r.Names(), ErrUnknownProcessor)
	}
	p, err := e.make()
	if err != nil {
		return nil, fmt.Errorf("audio processor %s: %w", name, err)
	}
	return p, nil
}

// Chain makes one Processor of each named kind, in order; on an error it closes those it made.
func (r *Registry) Chain(names []string) ([]Processor, error) {
	chain := make([]Processor, 0, len(names))
	for _, n := range names {
		p, err := r.New(n)
		if err != nil {
			closeAll(chain)
			return nil, err
		}
		chain = append(chain, p)
	}
	return chain, nil
}

// Check makes and closes one of each named processor: it tells at start whether a configuration can run.
func (r *Registry) Check(names []string) error {
	chain, err := r.Chain(names)
	if err != nil {
		return err
	}
	closeAll(chain)
	return nil
}

// Names lists the registered processors, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// About describes a registered processor.
func (r *Registry) About(name string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[name].about
}

func closeAll(chain []Processor) {
	for _, p := range chain {
		_ = p.Close()
	}
}
