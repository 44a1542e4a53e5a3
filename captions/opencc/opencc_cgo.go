//go:build cgo

package opencc

/*
#cgo pkg-config: opencc
#include <stdlib.h>
#include <opencc.h>

static int opencc_failed(opencc_t h) { return h == (opencc_t)-1; }
*/
import "C"

import (
	"context"
	"fmt"
	"github.com/edge-sfu/sfu/captions"
	"sync"
	"unsafe"
)

// Available reports whether this build has the OpenCC translator.
const Available = true

// OpenCC converts between the written forms of Chinese with the OpenCC library: Simplified (zh-Hans),
// Traditional (zh-Hant), Hong Kong (zh-HK) and Taiwan (zh-TW) with its phrases. One converter is opened per
// direction, when first needed.
type Translator struct {
	mu    sync.Mutex
	convs map[string]C.opencc_t // by configuration file
}

// New returns the translator; the first conversion checks that OpenCC's data is installed.
func New() *Translator { return &Translator{convs: map[string]C.opencc_t{}} }

// Supports reports whether OpenCC converts from one form of Chinese to the other.
func (o *Translator) Supports(from, to string) bool { return openCCConfig(from, to) != "" }

// Translate converts text.
func (o *Translator) Translate(_ context.Context, text, from, to string) (string, error) {
	cfg := openCCConfig(from, to)
	if cfg == "" {
		return "", fmt.Errorf("opencc: no conversion from %s to %s", from, to)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	h, ok := o.convs[cfg]
	if !ok {
		name := C.CString(cfg)
		h = C.opencc_open(name)
		C.free(unsafe.Pointer(name))
		if C.opencc_failed(h) != 0 {
			return "", fmt.Errorf("opencc: cannot open %s (install Debian's libopencc-dev and opencc: make deps): %w", cfg, captions.ErrUnavailable)
		}
		o.convs[cfg] = h
	}
	in := C.CString(text)
	defer C.free(unsafe.Pointer(in))
	out := C.opencc_convert_utf8(h, in, C.size_t(len(text)))
	if out == nil {
		return "", fmt.Errorf("opencc: conversion %s failed", cfg)
	}
	defer C.opencc_convert_utf8_free(out)
	return C.GoString(out), nil
}

// Close releases the converters.
func (o *Translator) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, h := range o.convs {
		C.opencc_close(h)
		delete(o.convs, k)
	}
	return nil
}
