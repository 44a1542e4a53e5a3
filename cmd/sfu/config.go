package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/sfu/turn"
	"github.com/edge-sfu/sfu/signaling"
	"go.uber.org/zap/zapcore"
)

// config is the node's configuration, from flags, else SFU_* environment variables, else the -config file, else
// defaults (configfile.go).
type config struct {
	ConfigFile    string // the -config file the rest was read from (after flags and environment variables), if any
	Addr          string
	UDPAddr       string
	UDPPortRange  string
	PublicIPs     []string
	ICEIPs        []string
	ICEServers    []string
	Secret        string
	Dev           bool // a development node: a random secret unless one is given, GET /token, loopback unless told otherwise
	LogLevel      zapcore.Level
	LatencyBudget time.Duration
	SFUBudget     time.Duration
	PprofAddr     string
	MetricsAddr   string // Prometheus /metrics listener; empty: none
	MetricsDetail bool   // per-subscriber series, labelled with room names and participant ids

	TLSCert        string   // PEM certificate chain: with TLSKey, HTTP and the WebSocket are served over TLS
	TLSKey         string   // PEM private key
	AllowedOrigins []string // browser origins that may open the WebSocket besides the node's own; "*" for any
	TCPAddr        string   // ICE-TCP listener (fallback for networks that block UDP); empty for none

	TURNAddr       string        // built-in TURN server's UDP address; empty for none
	TURNRealm      string        // its realm
	TURNPublicIP   string        // the relay address it advertises; default the first -public-ip
	TURNPortRange  string        // relay ports, MIN-MAX; empty for any
	TURNSecret     string        // TURN REST API secret; default derived from the token secret
	TURNURLs       []string      // TURN URLs of another server (coturn) that clients get minted credentials for
	TURNCredential time.Duration // lifetime of minted TURN credentials

	AudioProcessors    []string // the denoise chain
	audioProcessorsSet bool     // given by the operator, not the default
	RNNoiseDir         string   // empty: found (findRNNoise)
	SegmentationDir    string   // the background blur's model for the browser client; empty: found (segmentationDir)
	RoomConfig         string
	Rooms              *roomConfig // room settings of the -config file; nil: none, or -room-config's

	Captions        string // the recognizer: pocketsphinx, vosk, whisper, openai, off
	captionsSet     bool
	CaptionsURL     string
	CaptionsRegion  string // the region -captions-url and -libretranslate-url run in
	CaptionsKey     string
	CaptionsModel   string
	CaptionsLang    string
	CaptionsGrammar string
	CaptionsTimeout time.Duration
	Translators     []string
	ApertiumPairs   []string
	LibreURL        string
	LibreKey        string

	Keys               map[string][]byte // token keys by kid, for rotation
	TokenKID           string            // the key of Keys that signs refreshed tokens; "": Secret
	TokenAudience      string            // the aud tokens must name here
	MaxTokenTTL        time.Duration     // the longest lifetime a token may have
	AuditDir           string
	AuditRetention     time.Duration
	MaxParticipants    int
	MaxAudioStreams    int
	MaxPublishBitrate  int
	MaxConcurrentJoins int
	DropPrivate        bool          // drop clients' ICE candidates at private addresses
	MaxWorkerStreams   int           // denoise chains and captions streams the node runs at once, over all rooms
	MaxUnjoinedPerIP   int           // WebSockets one remote IP (IPv6: /64) may hold open before joining
	MaxUnjoined        int           // WebSockets the node holds open before they join
	HTTPIdleTimeout    time.Duration // a kept-alive HTTP connection idle this long is closed
	HTTPBodyTimeout    time.Duration // a request's body must be in this long after its headers

	Region    string // this node's region (e.g. hk)
	Redis     string // the region's Redis URL; empty: a single node
	PublicURL string // the base URL browsers, other nodes and redirected clients reach this node at; its origin may open the WebSocket
	NodeID    string
	Capacity  int // participants this node takes before rooms spill to others
	// LeaseGrace is how long a room's lease outlives the room here (default cluster.DefaultReleaseGrace); no flag.
	LeaseGrace time.Duration

	WebhookURLs    []string      // every webhook event is POSTed to each (API.md, Webhooks)
	WebhookSecret  string        // signs them; empty: the token secret
	webhookBackoff time.Duration // the first retry's wait; 0: the default (tests shorten it)
}

// envName maps a flag name to its environment variable: udp-port-range → SFU_UDP_PORT_RANGE.
func envName(flagName string) string {
	return "SFU_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newConfigFlags defines the node's flags, bound to c; the flags that hold a list or a level are parsed into c
// by parseConfig.
func newConfigFlags(c *config) *flag.FlagSet {
	var publicIPs, iceIPs, iceServers, level, processors, translators, pairs, origins, turnURLs, keys string
	fs := flag.NewFlagSet("sfu", flag.ContinueOnError)
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file of settings, keyed by flag name (see sfu.sample.yaml); a flag or an SFU_* variable wins over it; relative paths in it are relative to its folder")
	fs.StringVar(&c.Addr, "addr", ":7880", "HTTP listen address (signaling, browser client, WHIP/WHEP); with -dev, 127.0.0.1:7880 unless given")
	fs.StringVar(&c.UDPAddr, "udp", ":7882", `one UDP address for all media (ICE UDP mux), e.g. ":7882" or "10.0.0.5:7882"; empty to use -udp-port-range`)
	fs.StringVar(&c.UDPPortRange, "udp-port-range", "", `UDP port range, one port per connection, e.g. "50000-60000" (with -udp "")`)
	fs.StringVar(&publicIPs, "public-ip", "", "comma-separated public addresses to advertise (1:1 NAT)")
	fs.StringVar(&iceIPs, "ice-ip", "", "comma-separated local addresses to gather candidates on (default: all)")
	fs.StringVar(&iceServers, "ice-servers", "", "comma-separated STUN/TURN URLs given to clients")
	fs.StringVar(&c.Secret, "secret", "", "HS256 token secret; required unless -dev")
	fs.BoolVar(&c.Dev, "dev", false, "development node: a random secret unless -secret is given, GET /token mints tokens for anyone, and every listener on loopback unless its flag is given")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:7889", "Prometheus /metrics listener; empty: off")
	fs.BoolVar(&c.MetricsDetail, "metrics-detail", false, "add per-subscriber metrics labelled with room names and participant ids")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) file: with -tls-key, serve HTTPS and wss:// on -addr; reloaded when the file changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key file of -tls-cert")
	fs.StringVar(&origins, "allowed-origins", "", `comma-separated browser origins, e.g. "https://meet.example.org", that may open the signaling WebSocket besides the node's own (its -public-url, its address, localhost when on loopback; never one taken from the Host header); "*" allows any`)
	fs.StringVar(&c.TCPAddr, "tcp", ":7881", `ICE-TCP address for clients whose network blocks UDP (UDP stays preferred), e.g. ":7881"; empty disables`)
	fs.StringVar(&c.TURNAddr, "turn", "", fmt.Sprintf(`run a TURN server on this UDP address, e.g. ":3478", relaying UDP to this node's media ports only (at most %d relays per credential, no TCP relays), and give each participant short-lived credentials for it; empty: off`, turn.DefaultMaxAllocations))
	fs.StringVar(&c.TURNRealm, "turn-realm", "edge-sfu", "the TURN server's realm")
	fs.StringVar(&c.TURNPublicIP, "turn-public-ip", "", "the address the TURN server advertises for itself and its relays (default: the first -public-ip, else the -turn host, else 127.0.0.1)")
	fs.StringVar(&c.TURNPortRange, "turn-relay-port-range", "", `UDP ports the TURN server relays on, e.g. "40000-49999" (default: any free port)`)
	fs.StringVar(&c.TURNSecret, "turn-secret", "", "TURN REST API shared secret for minted credentials (default: derived from -secret); set it to coturn's static-auth-secret with -turn-urls")
	fs.StringVar(&turnURLs, "turn-urls", "", `comma-separated URLs of an external TURN server using the TURN REST API (coturn use-auth-secret), e.g. "turn:turn.example.org:3478?transport=udp"; clients get minted credentials for them`)
	fs.DurationVar(&c.TURNCredential, "turn-ttl", 12*time.Hour, "how long a participant's minted TURN credentials last, at most until its token expires (a relayed call longer than this loses its relay)")
	fs.StringVar(&c.PprofAddr, "pprof", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty")
	fs.DurationVar(&c.LatencyBudget, "latency-budget", sfu.DefaultLatencyBudget, "end-to-end latency budget: receivers keep their playout delay under it")
	fs.DurationVar(&c.SFUBudget, "sfu-latency-budget", sfu.DefaultSFUBudget, "the SFU's share: packets that would leave later than this after arriving are dropped (negative: no limit)")
	fs.StringVar(&processors, "audio-processors", "speex", "comma-separated processors that denoise runs on a microphone track, in order: speex (speexdsp, about 0.1 ms of CPU per 20 ms), rnnoise (RNNoise in WebAssembly, about 1 ms)")
	fs.StringVar(&c.RNNoiseDir, "rnnoise-dir", "", "folder of the npm package @echogarden/rnnoise-wasm; a folder given must hold it (default: the first that does of ../share/sfu/rnnoise-wasm beside the executable, as in the image, and node_modules/@echogarden/rnnoise-wasm of the source tree the binary was built from, where make deps installs it)")
	fs.StringVar(&c.SegmentationDir, "segmentation-dir", "", "folder of the npm package "+segmentationPackage+", the segmentation model the browser client's background blur loads from this node; without its files blur is unavailable and the node says so in its log (default: the first that holds them of ../share/sfu/selfie_segmentation beside the executable, as in the image, and node_modules/"+segmentationPackage+" of the source tree the binary was built from, where make deps installs it)")
	fs.StringVar(&c.RoomConfig, "room-config", "", `JSON file of room settings: {"default": {"denoise": false}, "rooms": {"name": {"denoise": true, "processors": ["speex"], "e2ee": false, "max_participants": 1000, "max_audio_streams": 3}}}`)
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
	fs.StringVar(&c.CaptionsRegion, "captions-region", "", "the region the servers of -captions-url and -libretranslate-url run in; in a cluster a room gets captions only if its regions name it (default: this node's region when they are on loopback, else none: no room with a residency policy gets captions)")
	fs.StringVar(&c.LibreKey, "libretranslate-key", "", "LibreTranslate API key")
	fs.StringVar(&keys, "keys", "", "more token keys, as kid:secret,...: tokens whose header names a kid are checked with that key (rotation)")
	fs.StringVar(&c.TokenKID, "token-kid", "", "the key of -keys (its kid) that signs the fresh tokens the node sends its participants (rotation: the new key); default: -secret")
	fs.StringVar(&c.TokenAudience, "token-audience", signaling.DefaultAudience, "the audience (aud) a token must name to be taken here; sfu token names it")
	fs.DurationVar(&c.MaxTokenTTL, "max-token-ttl", signaling.DefaultMaxTokenTTL, "the longest lifetime a token may have (exp - iat, or exp - now without iat); longer ones, and tokens without exp, are refused")
	fs.StringVar(&c.AuditDir, "audit-dir", defaultAuditDir, "folder of the audit log (a hash-chained JSON-lines file a day, checked by: sfu audit verify), made if missing; with -dev the default is $XDG_STATE_HOME/sfu/audit (~/.local/state/sfu/audit); empty: no audit log")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 365*24*time.Hour, "how long audit files are kept")
	fs.IntVar(&c.MaxParticipants, "max-participants", 100, "participants per room (0: no limit); a room's max_participants in -room-config overrides it")
	fs.IntVar(&c.MaxAudioStreams, "max-audio-streams", 3, "microphones a room forwards at once, its loudest by their audio levels (0: every one); a room's max_audio_streams in -room-config overrides it")
	fs.IntVar(&c.MaxPublishBitrate, "max-publish-bitrate", 8_000_000, "bits per second one participant may publish over all its tracks; beyond, its highest layers are not forwarded (0: no limit)")
	fs.IntVar(&c.MaxConcurrentJoins, "max-concurrent-joins", 50, "joins being set up at once; more are refused with busy (0: no limit)")
	fs.BoolVar(&c.DropPrivate, "drop-private-candidates", false, "ignore clients' ICE candidates at private addresses (10/8, 172.16/12, 192.168/16, fc00::/7), so the node sends no connectivity checks into its own network; clients behind NAT then connect through their public (srflx) or relay candidates")
	fs.IntVar(&c.MaxWorkerStreams, "max-worker-streams", 32, "denoise chains and captions streams this node runs at once over all rooms, one per microphone track and worker (RNNoise costs about 12 % of a core each); more are refused with unavailable (0: no limit)")
	fs.IntVar(&c.MaxUnjoinedPerIP, "max-unjoined-per-ip", signaling.DefaultMaxUnjoinedPerIP, "WebSockets one remote address (IPv6: its /64) may hold open before joining; more get 429 (0: no limit). Behind a reverse proxy every client has the proxy's address: raise it")
	fs.IntVar(&c.MaxUnjoined, "max-unjoined", signaling.DefaultMaxUnjoined, "WebSockets the node holds open before they join; more get 503 (0: no limit)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", defaultIdleTimeout, "a kept-alive HTTP connection idle this long is closed")
	fs.DurationVar(&c.HTTPBodyTimeout, "http-body-timeout", signaling.DefaultBodyTimeout, "a request's body (a WHIP/WHEP offer) must arrive within this long of its headers; slower ones get 408")
	fs.StringVar(&c.Region, "region", "local", "this node's region, e.g. hk; rooms stay in the regions their policy names")
	fs.StringVar(&c.Redis, "redis", "", "Redis URL shared by the region's nodes, e.g. redis://10.0.0.2:6379/0; empty: a single node")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL browsers and other nodes reach this node at, e.g. https://hk-1.example.org (default: http://ADDR); pages of its origin may open the signaling WebSocket")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's id in the cluster (default: host name and URL)")
	fs.IntVar(&c.Capacity, "capacity", 100, "participants this node takes; beyond, new rooms go to other nodes and full rooms spill over with a relay")
	fs.Var((*urlList)(&c.WebhookURLs), "webhook-url", "POST every webhook event (room, participant, track, transcript, limit: API.md) to this URL; give it several times for several URLs (SFU_WEBHOOK_URL: comma-separated)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key of the webhooks' X-SFU-Signature (default: -secret); a separate one lets a receiver verify them without being able to mint tokens")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu [flags]\n       sfu token -room R -identity I [-publish] [-subscribe] [-publish-data] [-admin] [-ttl 1h] [-kid K] [-token-audience A] [-max-token-ttl 24h]\n       sfu audit verify [-dir DIR]\n       sfu audit head [-dir DIR]\n\n"+
			"Every flag can also be set by its environment variable, e.g. -udp-port-range by SFU_UDP_PORT_RANGE, and in\n"+
			"the -config file (SFU_CONFIG), e.g. udp-port-range: 50000-50100. A flag wins over its variable, which wins\n"+
			"over the file.\n\n")
		fs.PrintDefaults()
	}
	return fs
}

// parseConfig reads the node's configuration: flags, else SFU_* variables, else the -config file, else defaults.
func parseConfig(args []string) (config, error) {
	var c config
	fs := newConfigFlags(&c)
	set, rooms, err := layerConfig(fs, args)
	if err != nil {
		return c, err
	}
	c.Rooms = rooms
	str := func(name string) string { return fs.Lookup(name).Value.String() }
	publicIPs, iceIPs, iceServers, level, processors := str("public-ip"), str("ice-ip"), str("ice-servers"), str("log-level"), str("audio-processors")
	translators, pairs, origins, turnURLs, keys := str("translators"), str("apertium-pairs"), str("allowed-origins"), str("turn-urls"), str("keys")
	if c.Dev { // a development node stays on this machine unless told otherwise
		if !set["addr"] {
			c.Addr = "127.0.0.1:7880"
		}
		if !set["udp"] {
			c.UDPAddr = "127.0.0.1:7882"
		}
		if !set["tcp"] {
			c.TCPAddr = "127.0.0.1:7881"
		}
		if !set["ice-ip"] {
			iceIPs = "127.0.0.1"
		}
		if !set["audit-dir"] {
			c.AuditDir = devAuditDir()
		}
	}
	c.PublicIPs, c.ICEIPs, c.ICEServers = splitList(publicIPs), splitList(iceIPs), splitList(iceServers)
	c.AudioProcessors = splitList(processors)
	if keys != "" {
		var err error
		if c.Keys, err = signaling.ParseKeys(keys); err != nil {
			return c, fmt.Errorf("-keys: %w", err)
		}
	}
	c.AllowedOrigins, c.TURNURLs = splitList(origins), splitList(turnURLs)
	c.Translators, c.ApertiumPairs = splitList(translators), splitList(pairs)
	c.captionsSet, c.audioProcessorsSet = set["captions"], set["audio-processors"]
	if err := c.LogLevel.Set(level); err != nil {
		return c, fmt.Errorf("log level: %w", err)
	}
	if c.UDPAddr == "" && c.UDPPortRange != "" {
		if _, _, err := transport.ParsePortRange(c.UDPPortRange); err != nil {
			return c, err
		}
	}
	if c.MaxParticipants < 0 || c.MaxAudioStreams < 0 || c.MaxWorkerStreams < 0 || c.MaxUnjoinedPerIP < 0 || c.MaxUnjoined < 0 {
		return c, fmt.Errorf("-max-participants, -max-audio-streams, -max-worker-streams, -max-unjoined-per-ip and -max-unjoined: want 0 (no limit) or more")
	}
	if c.HTTPIdleTimeout <= 0 || c.HTTPBodyTimeout <= 0 {
		return c, fmt.Errorf("-http-idle-timeout and -http-body-timeout: want more than 0")
	}
	if err := c.checkSecurity(); err != nil {
		return c, err
	}
	if err := c.checkSecret(); err != nil {
		return c, err
	}
	return c, nil
}

// errNoSecret is why a node without a secret and without -dev does not start.
var errNoSecret = errors.New("no token secret: give -secret (or SFU_SECRET) for a real node, or -dev for a development node on this machine (a random secret, and GET /token mints tokens for anyone)")

// checkSecret refuses a node without a secret unless it is a development node: an empty or misspelt secret must
// not silently open the node.
func (c *config) checkSecret() error {
	if c.Secret == "" && !c.Dev {
		return errNoSecret
	}
	return nil
}

// checkSecurity validates the TLS, origin, ICE-TCP and TURN settings.
func (c *config) checkSecurity() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("-tls-cert and -tls-key go together: give both (HTTPS) or neither (HTTP)")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := signaling.NormalizeOrigin(o); err != nil {
			return fmt.Errorf("-allowed-origins: %w", err)
		}
	}
	if c.TCPAddr != "" {
		if _, _, err := net.SplitHostPort(c.TCPAddr); err != nil {
			return fmt.Errorf("-tcp %q: %w", c.TCPAddr, err)
		}
	}
	if c.TURNAddr != "" {
		if _, _, err := net.SplitHostPort(c.TURNAddr); err != nil {
			return fmt.Errorf("-turn %q: %w", c.TURNAddr, err)
		}
		if c.UDPAddr == "" && c.UDPPortRange == "" {
			return errors.New("-turn needs -udp or -udp-port-range: the TURN server relays to the media ports only, which are otherwise any")
		}
	}
	if c.TURNPublicIP != "" && net.ParseIP(c.TURNPublicIP) == nil {
		return fmt.Errorf("-turn-public-ip %q is not an IP address", c.TURNPublicIP)
	}
	if c.TURNPortRange != "" {
		if _, _, err := transport.ParsePortRange(c.TURNPortRange); err != nil {
			return fmt.Errorf("-turn-relay-port-range: %w", err)
		}
	}
	for _, u := range c.TURNURLs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return fmt.Errorf("-turn-urls: %q is not a turn: or turns: URL", u)
		}
	}
	if len(c.TURNURLs) > 0 && c.TURNSecret == "" {
		return errors.New("-turn-urls needs -turn-secret: the external TURN server's static-auth-secret")
	}
	if (c.TURNAddr != "" || len(c.TURNURLs) > 0) && c.TURNCredential <= 0 {
		return errors.New("-turn-ttl must be positive")
	}
	if c.MaxTokenTTL <= 0 || c.TokenAudience == "" {
		return errors.New("-max-token-ttl must be positive and -token-audience set")
	}
	if _, ok := c.Keys[c.TokenKID]; c.TokenKID != "" && !ok {
		return fmt.Errorf("-token-kid %q: no such key in -keys", c.TokenKID)
	}
	return nil
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
