package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/denoise"
	"github.com/edge-sfu/sfu/media/opus"
	"github.com/edge-sfu/sfu/sfu"
	denoiseworker "github.com/edge-sfu/sfu/sfu/workers/denoise"
)

// roomConfig is the -room-config file: settings for every room, and for rooms by name.
type roomConfig struct {
	Default sfu.RoomSettings            `json:"default"`
	Rooms   map[string]sfu.RoomSettings `json:"rooms"`
}

// settings returns a room's settings.
func (rc *roomConfig) settings(room string) sfu.RoomSettings {
	if s, ok := rc.Rooms[room]; ok {
		return s
	}
	return rc.Default
}

// loadRoomConfig reads the room settings file; no file gives the defaults.
func loadRoomConfig(path string) (*roomConfig, error) {
	rc := &roomConfig{}
	if path == "" {
		return rc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("room config: %w", err)
	}
	if err := json.Unmarshal(b, rc); err != nil {
		return nil, fmt.Errorf("room config %s: %w", path, err)
	}
	return rc, nil
}

// check refuses settings that cannot run, as a worker sees them (e.g. denoise in an encrypted room, processors
// this node lacks).
func (rc *roomConfig) check(check func(sfu.RoomSettings) error) error {
	all := map[string]sfu.RoomSettings{"(default)": rc.Default}
	for name, s := range rc.Rooms {
		all[name] = s
	}
	for name, s := range all {
		if err := check(s); err != nil {
			return fmt.Errorf("room config: room %s: %w", name, err)
		}
	}
	return nil
}

// audioWorkers sets up the media pipeline's codecs and the denoise worker with its processors (the denoisers).
// A chain that cannot run here is an error when the operator asked for it, and a warning when it is the default.
func audioWorkers(ctx context.Context, cfg config, budget *sfu.WorkerBudget, log *zap.Logger) (*sfu.AudioConfig, *denoiseworker.Worker, func(context.Context) error, error) {
	dir, searched, err := rnnoiseDir(cfg.RNNoiseDir)
	if err != nil {
		return nil, nil, nil, err
	}
	if dir == "" && len(searched) > 0 {
		log.Info("no RNNoise module found: rnnoise is unavailable (make deps, or -rnnoise-dir)", zap.Strings("searched", searched))
		dir = searched[0] // where a room asking for it is told the module is missing
	}
	reg := audio.NewRegistry()
	release := denoise.Register(ctx, reg, denoise.Options{RNNoiseDir: dir})
	ac := &sfu.AudioConfig{NewDecoder: func() (audio.Decoder, error) { return opus.NewDecoder() }}
	if opus.EncoderAvailable {
		ac.NewEncoder = opus.NewEncoder
	} else {
		log.Warn("built without cgo: no Opus encoder, so audio processing (denoise) is off; audio taps still work")
	}
	if err := reg.Check(cfg.AudioProcessors); err != nil {
		if cfg.audioProcessorsSet {
			_ = release(ctx)
			return nil, nil, nil, err
		}
		if !errors.Is(err, audio.ErrUnavailable) {
			_ = release(ctx)
			return nil, nil, nil, err
		}
		log.Warn("the default denoise chain cannot run here; denoise requests will be refused", zap.Error(err))
	}
	for _, name := range reg.Names() {
		log.Info("audio processor", zap.String("name", name), zap.String("about", reg.About(name)))
	}
	w := denoiseworker.New(denoiseworker.Config{Registry: reg, Chain: cfg.AudioProcessors, CanEncode: ac.NewEncoder != nil,
		Budget: budget, Logger: log.Named("denoise")})
	return ac, w, release, nil
}
