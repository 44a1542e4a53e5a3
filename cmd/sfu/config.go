package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"go.uber.org/zap/zapcore"
)

// config is the node's configuration, from flags, else SFU_* environment variables, else defaults.
type config struct {
	Addr          string
	UDPAddr       string
	UDPPortRange  string
	PublicIPs     []string
	ICEIPs        []string
	ICEServers    []string
	Secret        string
	LogLevel      zapcore.Level
	LatencyBudget time.Duration
	SFUBudget     time.Duration
	PprofAddr     string

	AudioProcessors    []string // the denoise chain
	audioProcessorsSet bool     // given by the operator, not the default
	RNNoiseDir         string
	RoomConfig         string

	Captions        string // the recognizer: pocketsphinx, vosk, whisper, openai, off
	captionsSet     bool
	CaptionsURL     string
	CaptionsKey     string
	CaptionsModel   string
	CaptionsLang    string
	CaptionsGrammar string
	CaptionsTimeout time.Duration
	Translators     []string
	ApertiumPairs   []string
	LibreURL        string
	LibreKey        string
}

// envName maps a flag name to its environment variable: udp-port-range → SFU_UDP_PORT_RANGE.
func envName(flagName string) string {
	return "SFU_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseConfig(args []string) (config, error) {
	var c config
	var publicIPs, iceIPs, iceServers, level, processors, translators, pairs string
	fs := flag.NewFlagSet("sfu", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", ":7880", "HTTP listen address (signaling, browser client, WHIP/WHEP, metrics)")
	fs.StringVar(&c.UDPAddr, "udp", ":7882", `one UDP address for all media (ICE UDP mux), e.g. ":7882" or "10.0.0.5:7882"; empty to use -udp-port-range`)
	fs.StringVar(&c.UDPPortRange, "udp-port-range", "", `UDP port range, one port per connection, e.g. "50000-60000" (with -udp "")`)
	fs.StringVar(&publicIPs, "public-ip", "", "comma-separated public addresses to advertise (1:1 NAT)")
	fs.StringVar(&iceIPs, "ice-ip", "", "comma-separated local addresses to gather candidates on (default: all)")
	fs.StringVar(&iceServers, "ice-servers", "", "comma-separated STUN/TURN URLs given to clients")
	fs.StringVar(&c.Secret, "secret", "", "HS256 token secret; empty runs in dev mode with a random secret and /token")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.PprofAddr, "pprof", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty")
	fs.DurationVar(&c.LatencyBudget, "latency-budget", sfu.DefaultLatencyBudget, "end-to-end latency budget: receivers keep their playout delay under it")
	fs.DurationVar(&c.SFUBudget, "sfu-latency-budget", sfu.DefaultSFUBudget, "the SFU's share: packets that would leave later than this after arriving are dropped (negative: no limit)")
	fs.StringVar(&processors, "audio-processors", "speex", "comma-separated processors that denoise runs on a microphone track, in order: speex (speexdsp, about 0.1 ms of CPU per 20 ms), rnnoise (RNNoise in WebAssembly, about 1 ms)")
	fs.StringVar(&c.RNNoiseDir, "rnnoise-dir", "node_modules/@echogarden/rnnoise-wasm", "folder of the npm package @echogarden/rnnoise-wasm (make deps installs it)")
	fs.StringVar(&c.RoomConfig, "room-config", "", `JSON file of room settings: {"default": {"denoise": false}, "rooms": {"name": {"denoise": true, "processors": ["speex"], "e2ee": false}}}`)
	fs.StringVar(&c.Captions, "captions", "pocketsphinx", "speech recognizer for live captions: pocketsphinx (built in, English), vosk, whisper (whisper.cpp server), openai (OpenAI-compatible /v1/audio/transcriptions), off")
	fs.StringVar(&c.CaptionsURL, "captions-url", "", "the recognizer server's URL (vosk: ws://host:2700; whisper, openai: http://host:port)")
	fs.StringVar(&c.CaptionsKey, "captions-key", "", "API key for -captions openai")
	fs.StringVar(&c.CaptionsModel, "captions-model", "", "model name for -captions openai (default whisper-1)")
	fs.StringVar(&c.CaptionsLang, "captions-lang", "en", "the language participants speak unless their room or they say otherwise (en, yue, zh, ja, ...)")
	fs.DurationVar(&c.CaptionsTimeout, "captions-timeout", 10*time.Second, "how long a captions server may take to answer before captions are marked unavailable and retried with backoff")
	fs.StringVar(&c.CaptionsGrammar, "captions-grammar", "", "a JSGF grammar file that narrows pocketsphinx to known phrases")
	fs.StringVar(&translators, "translators", "opencc,apertium", "comma-separated translators, tried in order: opencc (Chinese scripts), apertium (-apertium-pairs), libretranslate (-libretranslate-url)")
	fs.StringVar(&pairs, "apertium-pairs", "eng-spa", "comma-separated Apertium language pairs to run (installed Debian apertium-* packages)")
	fs.StringVar(&c.LibreURL, "libretranslate-url", "", "LibreTranslate server URL, e.g. http://host:5000")
	fs.StringVar(&c.LibreKey, "libretranslate-key", "", "LibreTranslate API key")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu [flags]\n       sfu token -room R -identity I [-publish] [-subscribe] [-admin] [-ttl 1h]\n\n"+
			"Every flag can also be set by its environment variable, e.g. -udp-port-range by SFU_UDP_PORT_RANGE.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	c.PublicIPs, c.ICEIPs, c.ICEServers = splitList(publicIPs), splitList(iceIPs), splitList(iceServers)
	c.AudioProcessors = splitList(processors)
	c.Translators, c.ApertiumPairs = splitList(translators), splitList(pairs)
	c.captionsSet = set["captions"] || os.Getenv(envName("captions")) != ""
	c.audioProcessorsSet = set["audio-processors"] || os.Getenv(envName("audio-processors")) != ""
	if err := c.LogLevel.Set(level); err != nil {
		return c, fmt.Errorf("log level: %w", err)
	}
	if c.UDPAddr == "" && c.UDPPortRange != "" {
		if _, _, err := sfu.ParsePortRange(c.UDPPortRange); err != nil {
			return c, err
		}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
