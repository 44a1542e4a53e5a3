//go:build cgo

package pocketsphinx

/*
#cgo pkg-config: pocketsphinx sphinxbase
#include <stdlib.h>
#include <pocketsphinx.h>

static ps_decoder_t *ps_open(const char *hmm, const char *lm, const char *dict, const char *jsgf) {
	cmd_ln_t *c;
	if (jsgf != NULL && jsgf[0] != 0) {
		c = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-dict", dict, "-jsgf", jsgf, "-logfn", "/dev/null", NULL);
	} else {
		c = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict, "-logfn", "/dev/null", NULL);
	}
	if (c == NULL) {
		return NULL;
	}
	ps_decoder_t *ps = ps_init(c);
	cmd_ln_free_r(c);
	return ps;
}

static const char *ps_hyp(ps_decoder_t *ps) {
	int32 score;
	return ps_get_hyp(ps, &score);
}
*/
import "C"

import (
	"context"
	"fmt"
	"github.com/edge-sfu/sfu/captions"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Available reports whether this build has the PocketSphinx engine.
const Available = true

// Engine recognizes US English with CMU Engine and the model Debian's pocketsphinx-en-us ships. A
// decoder is large and serves one utterance at a time, so the engine keeps a few and lends them out.
type Engine struct {
	cfg  Config
	free chan *C.ps_decoder_t // decoders not in use
	made chan struct{}        // one token per decoder that may still be made
	mu   sync.Mutex
	all  []*C.ps_decoder_t
}

// New checks the model files and makes the first decoder, so that a broken installation shows at
// start.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	for _, f := range []string{cfg.Model, cfg.Dict} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("pocketsphinx: %w (install Debian's pocketsphinx-en-us: make deps): %w", err, captions.ErrUnavailable)
		}
	}
	if cfg.Grammar == "" {
		if _, err := os.Stat(cfg.LM); err != nil {
			return nil, fmt.Errorf("pocketsphinx: %w: %w", err, captions.ErrUnavailable)
		}
	}
	p := &Engine{cfg: cfg, free: make(chan *C.ps_decoder_t, cfg.Decoders), made: make(chan struct{}, cfg.Decoders)}
	for range cfg.Decoders {
		p.made <- struct{}{}
	}
	<-p.made
	d, err := p.newDecoder()
	if err != nil {
		return nil, err
	}
	p.free <- d
	return p, nil
}

func (p *Engine) newDecoder() (*C.ps_decoder_t, error) {
	hmm, lm, dict := C.CString(p.cfg.Model), C.CString(p.cfg.LM), C.CString(p.cfg.Dict)
	defer C.free(unsafe.Pointer(hmm))
	defer C.free(unsafe.Pointer(lm))
	defer C.free(unsafe.Pointer(dict))
	var jsgf *C.char
	if p.cfg.Grammar != "" {
		dir, err := os.MkdirTemp("", "pocketsphinx")
		if err != nil {
			return nil, fmt.Errorf("pocketsphinx grammar: %w", err)
		}
		defer os.RemoveAll(dir)
		f := filepath.Join(dir, "grammar.jsgf")
		if err := os.WriteFile(f, []byte(p.cfg.Grammar), 0o600); err != nil {
			return nil, fmt.Errorf("pocketsphinx grammar: %w", err)
		}
		jsgf = C.CString(f)
		defer C.free(unsafe.Pointer(jsgf))
	}
	d := C.ps_open(hmm, lm, dict, jsgf)
	if d == nil {
		return nil, fmt.Errorf("pocketsphinx: the decoder did not start (model %s): %w", p.cfg.Model, captions.ErrUnavailable)
	}
	p.mu.Lock()
	p.all = append(p.all, d)
	p.mu.Unlock()
	return d, nil
}

// Open lends a decoder to one utterance, waiting for one when all are busy.
func (p *Engine) Open(ctx context.Context, lang string) (captions.Utterance, error) {
	if base, _, _ := strings.Cut(lang, "-"); base != "en" {
		return nil, fmt.Errorf("pocketsphinx recognizes English only, not %q: %w", lang, captions.ErrUnsupportedLanguage)
	}
	var d *C.ps_decoder_t
	select {
	case d = <-p.free:
	case <-p.made:
		var err error
		if d, err = p.newDecoder(); err != nil {
			p.made <- struct{}{}
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if C.ps_start_utt(d) < 0 {
		p.free <- d
		return nil, fmt.Errorf("pocketsphinx: ps_start_utt failed")
	}
	return &psUtterance{p: p, d: d}, nil
}

// Close frees every decoder; no utterance may be open.
func (p *Engine) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.all {
		C.ps_free(d)
	}
	p.all = nil
	return nil
}

type psUtterance struct {
	p    *Engine
	d    *C.ps_decoder_t
	done bool
}

func (u *psUtterance) Write(pcm []int16) (string, error) {
	if u.done || len(pcm) == 0 {
		return "", nil
	}
	if C.ps_process_raw(u.d, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), 0, 0) < 0 {
		return "", fmt.Errorf("pocketsphinx: ps_process_raw failed")
	}
	return hypothesis(u.d), nil
}

func (u *psUtterance) Finish() (string, error) {
	if u.done {
		return "", nil
	}
	u.done = true
	if C.ps_end_utt(u.d) < 0 {
		return "", fmt.Errorf("pocketsphinx: ps_end_utt failed")
	}
	return hypothesis(u.d), nil
}

func (u *psUtterance) Close() error {
	if u.d == nil {
		return nil
	}
	if !u.done {
		C.ps_end_utt(u.d)
	}
	u.p.free <- u.d
	u.d = nil
	return nil
}

func hypothesis(d *C.ps_decoder_t) string {
	h := C.ps_hyp(d)
	if h == nil {
		return ""
	}
	return strings.TrimSpace(C.GoString(h))
}
