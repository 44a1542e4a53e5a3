package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/captions"
	"github.com/edge-sfu/sfu/captions/opencc"
	"github.com/edge-sfu/sfu/captions/pocketsphinx"
)

// captionService builds the captions engine the configuration names, and its translators. "off" gives none. An
// engine that cannot start is an error when the operator chose it, and a warning (no captions) for the default.
func captionService(cfg config, log *zap.Logger) (*captions.Service, func() error, error) {
	var closers []func() error
	release := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	var rec captions.Recognizer
	switch cfg.Captions {
	case "off", "":
		return nil, release, nil
	case "pocketsphinx":
		pc := pocketsphinx.Config{}
		if cfg.CaptionsGrammar != "" {
			b, err := os.ReadFile(cfg.CaptionsGrammar)
			if err != nil {
				return nil, nil, fmt.Errorf("captions grammar: %w", err)
			}
			pc.Grammar = string(b)
		}
		ps, err := pocketsphinx.New(pc)
		if err != nil {
			if cfg.captionsSet {
				return nil, nil, err
			}
			log.Warn("no captions: the default engine cannot start", zap.Error(err))
			return nil, release, nil
		}
		closers = append(closers, ps.Close)
		rec = ps
	case "vosk", "whisper", "openai":
		if cfg.CaptionsURL == "" {
			return nil, nil, fmt.Errorf("-captions %s needs -captions-url", cfg.Captions)
		}
		hc := captions.HTTPRecognizerConfig{URL: cfg.CaptionsURL, APIKey: cfg.CaptionsKey, Model: cfg.CaptionsModel, Timeout: cfg.CaptionsTimeout}
		switch cfg.Captions {
		case "vosk":
			rec = captions.NewVosk(captions.VoskConfig{URL: cfg.CaptionsURL, Timeout: cfg.CaptionsTimeout})
		case "whisper":
			rec = captions.NewWhisperCpp(hc)
		default:
			rec = captions.NewOpenAITranscriber(hc)
		}
	default:
		return nil, nil, fmt.Errorf("unknown captions engine %q (pocketsphinx, vosk, whisper, openai, off)", cfg.Captions)
	}
	var trs []captions.Translator
	for _, name := range cfg.Translators {
		switch name {
		case "opencc":
			o := opencc.New()
			closers = append(closers, o.Close)
			trs = append(trs, o)
		case "apertium":
			a := captions.NewApertium(captions.ApertiumConfig{Pairs: cfg.ApertiumPairs, Timeout: cfg.CaptionsTimeout})
			closers = append(closers, a.Close)
			trs = append(trs, a)
		case "libretranslate":
			if cfg.LibreURL == "" {
				_ = release()
				return nil, nil, errors.New("-translators libretranslate needs -libretranslate-url")
			}
			trs = append(trs, captions.NewLibreTranslate(captions.LibreTranslateConfig{URL: cfg.LibreURL, APIKey: cfg.LibreKey, Timeout: cfg.CaptionsTimeout}))
		default:
			_ = release()
			return nil, nil, fmt.Errorf("unknown translator %q (opencc, apertium, libretranslate)", name)
		}
	}
	log.Info("captions", zap.String("engine", cfg.Captions), zap.Strings("translators", cfg.Translators), zap.String("language", cfg.CaptionsLang))
	return &captions.Service{Recognizer: rec, Translators: trs, Log: log, EngineTimeout: cfg.CaptionsTimeout}, release, nil
}

// engineRegion is the region the captions engines that take a room's speech or text off this node run in, for the
// rooms' residency (roomcaptions.Config.EngineRegion): "" when nothing leaves the node (built-in engines, or
// servers on loopback), else -captions-region, else "undeclared", which no room's policy names.
func engineRegion(cfg config) string {
	var urls []string
	if cfg.Captions != "off" && cfg.Captions != "pocketsphinx" && cfg.CaptionsURL != "" {
		urls = append(urls, cfg.CaptionsURL)
	}
	if slices.Contains(cfg.Translators, "libretranslate") && cfg.LibreURL != "" {
		urls = append(urls, cfg.LibreURL)
	}
	switch {
	case !slices.ContainsFunc(urls, func(u string) bool { return !onLoopback(u) }):
		return ""
	case cfg.CaptionsRegion != "":
		return cfg.CaptionsRegion
	}
	return "undeclared (-captions-region)"
}

// onLoopback reports whether a server URL names a loopback host.
func onLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
