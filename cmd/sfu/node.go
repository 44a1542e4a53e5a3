package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sfu/sfu/captions/roomcaptions"
	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/sfu/cluster"
	"github.com/edge-sfu/sfu/sfu/transport"
	"github.com/edge-sfu/sfu/sfu/turn"
	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/edge-sfu/sfu/signaling/client"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// defaultIdleTimeout closes a kept-alive HTTP connection that sends nothing more (-http-idle-timeout).
const defaultIdleTimeout = 2 * time.Minute

// noLimitIfZero maps a cap's flag, where 0 is no limit, to signaling.Config's, where it is the default.
func noLimitIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// node is a running server: the SFU, its HTTP surface and the listener.
type node struct {
	log         *zap.Logger
	pprof       *http.Server // nil unless -pprof
	metrics     *http.Server // nil when -metrics-addr is empty
	metricsAddr net.Addr
	release     func(context.Context) error // frees the audio workers' engines
	sfu         *sfu.SFU
	sig         *signaling.Server
	http        *http.Server
	addr        net.Addr
	tls         bool               // HTTPS and wss://
	turn        *turn.Server       // nil unless -turn
	turnMint    *turn.Minter       // nil unless -turn or -turn-urls
	place       *cluster.Placement // nil unless -redis
	hooks       *webhooks          // nil unless -webhook-url
	bans        *cluster.Bans      // nil unless -redis

	shutdownOnce sync.Once
	shutdownErr  error
	serveErr     chan error
}

// closers undo the start-up steps taken so far when a later one fails: each step that succeeds pushes what
// undoes it, and run undoes them in reverse.
type closers []func()

func (c *closers) push(f func()) { *c = append(*c, f) }

func (c closers) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// startNode opens the sockets and starts serving.
func startNode(cfg config) (_ *node, err error) {
	var undo closers
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(cfg.LogLevel)
	logCfg.Sampling = nil
	log, err := logCfg.Build()
	if err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}

	if err := cfg.checkSecret(); err != nil {
		return nil, err
	}
	secret, dev := []byte(cfg.Secret), cfg.Dev
	if dev {
		if len(secret) == 0 {
			secret = make([]byte, 32)
			_, _ = rand.Read(secret)
		}
		log.Warn("dev mode: GET /token mints tokens for anyone", zap.Bool("random_secret", cfg.Secret == ""))
	}

	var certs *certFiles
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("-tls-cert and -tls-key go together")
		}
		if certs, err = loadCertFiles(cfg.TLSCert, cfg.TLSKey, log.Named("tls")); err != nil {
			return nil, err
		}
	}

	netCfg := transport.NetConfig{UDPAddr: cfg.UDPAddr, PublicIPs: cfg.PublicIPs, ICEIPs: cfg.ICEIPs, TCPAddr: cfg.TCPAddr}
	if cfg.UDPAddr == "" && cfg.UDPPortRange != "" {
		if netCfg.PortMin, netCfg.PortMax, err = transport.ParsePortRange(cfg.UDPPortRange); err != nil {
			return nil, err
		}
	}
	var ice []webrtc.ICEServer
	if len(cfg.ICEServers) > 0 {
		ice = []webrtc.ICEServer{{URLs: cfg.ICEServers}}
	}
	rooms, err := loadRoomConfig(cfg.RoomConfig)
	if err != nil {
		return nil, err
	}
	if cfg.Rooms != nil && cfg.RoomConfig == "" { // the -config file's room settings
		rooms = cfg.Rooms
	}
	// The node's slots for denoise chains and captions streams, over all its rooms.
	budget := sfu.NewWorkerBudget(cfg.MaxWorkerStreams, "-max-worker-streams")
	audioCfg, denoiser, releaseAudio, err := audioWorkers(context.Background(), cfg, budget, log.Named("audio"))
	if err != nil {
		return nil, err
	}
	undo.push(func() { _ = releaseAudio(context.Background()) })
	if err := rooms.check(denoiser.CheckSettings); err != nil {
		return nil, err
	}
	capSvc, releaseCaptions, err := captionService(cfg, log.Named("captions"))
	if err != nil {
		return nil, err
	}
	undo.push(func() { _ = releaseCaptions() })
	release := func(ctx context.Context) error { return errors.Join(releaseCaptions(), releaseAudio(ctx)) }
	var auditLog *audit.Log
	if cfg.AuditDir != "" {
		if auditLog, err = audit.Open(cfg.AuditDir, audit.Options{Retention: cfg.AuditRetention, Logger: log.Named("audit")}); err != nil {
			return nil, fmt.Errorf("audit log: -audit-dir %s: %w (give a folder this user may write, or an empty one to turn the log off)", cfg.AuditDir, err)
		}
		undo.push(func() { _ = auditLog.Close() })
		releaseWorkers := release
		release = func(ctx context.Context) error { return errors.Join(releaseWorkers(ctx), auditLog.Close()) }
	}
	hooks, err := startWebhooks(cfg, secret, log.Named("webhook"))
	if err != nil {
		return nil, fmt.Errorf("-webhook-url: %w", err)
	}
	if hooks != nil {
		undo.push(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = hooks.sender.Close(ctx)
		})
	}
	workers := []sfu.Worker{denoiser} // denoise first: captions hear the denoised audio
	// The captions worker runs without an engine too: it then refuses captions with a reason, and serves
	// (empty) transcripts.
	capCfg := roomcaptions.Config{Lang: cfg.CaptionsLang, Budget: budget, Logger: log.Named("captions"), EngineRegion: engineRegion(cfg)}
	if capSvc != nil {
		capCfg.Service = capSvc
	}
	if hooks != nil {
		capCfg.OnTranscript = hooks.transcript
	}
	captioner := roomcaptions.New(capCfg)
	if err := rooms.check(captioner.CheckSettings); err != nil {
		return nil, err
	}
	workers = append(workers, captioner)
	scfg := sfu.Config{Net: netCfg, ICEServers: ice, Logger: log.Named("sfu"), LatencyBudget: cfg.LatencyBudget,
		SFUBudget: cfg.SFUBudget, Audio: audioCfg, Workers: workers, Rooms: rooms.settings,
		MaxParticipants: cfg.MaxParticipants, MaxAudioStreams: cfg.MaxAudioStreams, MaxPublishBitrate: float64(cfg.MaxPublishBitrate), MaxConcurrentJoins: cfg.MaxConcurrentJoins,
		DropPrivateCandidates: cfg.DropPrivate,
		OnWorkerStart: func(room, participantID, trackID, worker string) {
			if err := auditLog.Write(audit.Record{Kind: audit.KindWorkerStart, Room: room, Participant: participantID,
				Detail: map[string]any{"track": trackID, "worker": worker}}); err != nil && !errors.Is(err, audit.ErrQueueFull) {
				log.Error("audit log write failed", zap.Error(err)) // a dropped record is counted in the log's next gap record
			}
		}}
	if hooks != nil {
		scfg.Observer = hooks
	}
	var bans *cluster.Bans
	if cfg.Redis != "" { // kicks are shared with the region's other nodes (finding 12)
		if bans, err = cluster.NewBans(cfg.Redis, cluster.DefaultBanTimeout); err != nil {
			return nil, err
		}
		undo.push(func() { _ = bans.Close() })
		scfg.Bans = bans
	}
	s, err := sfu.New(scfg)
	if err != nil {
		return nil, err
	}
	undo.push(func() { _ = s.Close() })

	turnSrv, mint, err := startTURN(cfg, secret, s.UDPMedia(), log.Named("turn"))
	if err != nil {
		return nil, err
	}
	if turnSrv != nil {
		undo.push(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = turnSrv.Close(ctx)
		})
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector(), s.Collector(cfg.MetricsDetail))
	if hooks != nil {
		reg.MustRegister(hooks.sender)
	}
	sigCfg := signaling.Config{Secret: secret, Keys: cfg.Keys, TokenKeyID: cfg.TokenKID, Audience: cfg.TokenAudience, MaxTokenTTL: cfg.MaxTokenTTL, Audit: auditLog, Dev: dev, Logger: log.Named("signaling"),
		AllowedOrigins: cfg.AllowedOrigins, PublicURL: cfg.PublicURL, MaxUnjoinedPerIP: noLimitIfZero(cfg.MaxUnjoinedPerIP), MaxUnjoined: noLimitIfZero(cfg.MaxUnjoined), BodyTimeout: cfg.HTTPBodyTimeout,
		Region: cfg.Region, NodeID: cfg.NodeID}
	if mint != nil {
		sigCfg.ICEServers = mint.ICEServersUntil
	}
	if dir, why := segmentationDir(cfg.SegmentationDir); why != nil {
		log.Warn("background blur is unavailable: the node has no segmentation model to serve", zap.Error(why))
	} else {
		sigCfg.Segmentation = os.DirFS(dir)
		log.Info("background blur: serving the segmentation model", zap.String("dir", dir))
	}
	sigCfg.Transcripts = captioner

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	undo.push(func() { _ = ln.Close() })
	var place *cluster.Placement
	// The signaling server is built after the cluster it routes through; the cluster's heartbeat may find a room
	// moved before then (nothing to move yet).
	var sigReady atomic.Pointer[signaling.Server]
	moved := func(room, url string) {
		if sig := sigReady.Load(); sig != nil {
			sig.MoveRoom(room, url)
		}
	}
	if cfg.Redis != "" {
		base := cfg.PublicURL
		if base == "" {
			scheme := "http://"
			if certs != nil {
				scheme = "https://"
			}
			base = scheme + ln.Addr().String()
		}
		if place, err = startCluster(cfg, s, base, secret, moved, reg, log.Named("cluster")); err != nil {
			return nil, err
		}
		undo.push(func() { _ = place.Close() })
		sigCfg.Placement = place
		sigCfg.Ready = place.Ready
	}
	sig := signaling.NewServer(s, sigCfg)
	sigReady.Store(sig)
	n := &node{log: log, sfu: s, sig: sig, addr: ln.Addr(), serveErr: make(chan error, 1), release: release, place: place, bans: bans, hooks: hooks,
		turn: turnSrv, turnMint: mint, tls: certs != nil,
		// No ReadTimeout or WriteTimeout: the WebSocket outlives them; sig gives every request its own (see
		// signaling's setDeadlines).
		http: &http.Server{Handler: sig, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: cmp.Or(cfg.HTTPIdleTimeout, defaultIdleTimeout),
			MaxHeaderBytes: 64 << 10}}
	if certs != nil {
		n.http.TLSConfig = certs.tlsConfig()
		ln = tls.NewListener(ln, n.http.TLSConfig)
	}
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
		close(n.serveErr)
	}()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("-metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		n.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		n.metricsAddr = mln.Addr()
		go func() {
			if err := n.metrics.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("metrics", zap.Error(err))
			}
		}()
	}
	if cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		n.pprof = &http.Server{Addr: cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := n.pprof.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof", zap.Error(err))
			}
		}()
	}
	log.Info("serving", zap.Stringer("addr", n.addr), zap.Bool("tls", n.tls), zap.String("udp", cfg.UDPAddr),
		zap.String("tcp", cfg.TCPAddr), zap.Bool("turn", turnSrv != nil), zap.Bool("dev", dev))
	return n, nil
}

// shutdown stops taking connections, says goodbye to every participant, closes their connections and waits.
func (n *node) shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.stop(ctx) })
	return n.shutdownErr
}

func (n *node) stop(ctx context.Context) error {
	n.log.Info("shutting down")
	if n.metrics != nil {
		_ = n.metrics.Close()
	}
	if n.pprof != nil {
		_ = n.pprof.Close()
	}
	if n.place != nil { // drain: no new rooms here, and everyone goes to another node of the region
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		to, err := n.place.Drain(dctx)
		cancel()
		if err != nil {
			n.log.Warn("drain", zap.Error(err))
		}
		if to != "" {
			n.log.Info("draining", zap.String("to", to), zap.Int("participants", n.sig.RedirectAll(to)))
		}
		defer func() { // stops the relays and leaves the cluster, last
			if err := n.place.Close(); err != nil {
				n.log.Warn("leave the cluster", zap.Error(err))
			}
		}()
	}
	errHTTP := n.http.Shutdown(ctx)
	errSig := n.sig.Shutdown(ctx)
	errSFU := n.sfu.Close()
	if n.bans != nil { // after the SFU: no join or kick asks Redis any more
		_ = n.bans.Close()
	}
	errAudio := n.release(ctx)
	if n.hooks != nil { // after the SFU and the workers: their last events (left, finished, transcripts) are queued
		hctx, cancel := context.WithTimeout(ctx, webhookDrain)
		_ = n.hooks.sender.Close(hctx) // it logs what it could not deliver
		cancel()
	}
	var errTURN error
	if n.turn != nil { // after the SFU, whose connections may have been relayed through it
		errTURN = n.turn.Close(ctx)
	}
	for range n.serveErr { // wait for the serving goroutine
	}
	_ = n.log.Sync()
	return errors.Join(errHTTP, errSig, errSFU, errAudio, errTURN)
}

// startTURN mints TURN credentials when -turn or -turn-urls is set (nil otherwise) and starts the built-in TURN
// server when -turn is (nil otherwise), relaying to the SFU's UDP media only: the ICE UDP mux's address:port
// pairs, or the media IPs at the -udp-port-range ports. The ICE-TCP listener is not among them: the relays carry
// UDP only, and a UDP datagram to its port number would reach some other service, not the SFU.
func startTURN(cfg config, tokenSecret []byte, media transport.UDPMedia, log *zap.Logger) (*turn.Server, *turn.Minter, error) {
	if cfg.TURNAddr == "" && len(cfg.TURNURLs) == 0 {
		return nil, nil, nil
	}
	mint := &turn.Minter{Secret: turn.Secret(cfg.TURNSecret, tokenSecret), URLs: cfg.TURNURLs, TTL: cfg.TURNCredential}
	if cfg.TURNAddr == "" {
		return nil, mint, nil
	}
	tcfg := turn.Config{Addr: cfg.TURNAddr, Realm: cfg.TURNRealm, PublicIP: cfg.TURNPublicIP, PublicIPs: cfg.PublicIPs,
		Media: media, Secret: mint.Secret, Logger: log}
	if cfg.TURNPortRange != "" {
		var err error
		if tcfg.PortMin, tcfg.PortMax, err = transport.ParsePortRange(cfg.TURNPortRange); err != nil {
			return nil, nil, fmt.Errorf("-turn-relay-port-range: %w", err)
		}
	}
	srv, err := turn.Start(tcfg)
	if err != nil {
		return nil, nil, err
	}
	mint.URLs = append([]string{srv.URL()}, mint.URLs...)
	return srv, mint, nil
}

// startCluster registers this node, at base (its base URL), in the region's Redis and returns its placement.
func startCluster(cfg config, s *sfu.SFU, base string, secret []byte, moved func(room, url string), reg prometheus.Registerer, log *zap.Logger) (*cluster.Placement, error) {
	id := cfg.NodeID
	if id == "" {
		host, _ := os.Hostname()
		id = host + "-" + base
	}
	var ips []net.IP
	for _, a := range cfg.ICEIPs {
		if ip := net.ParseIP(a); ip != nil {
			ips = append(ips, ip)
		}
	}
	api, err := client.NewAPI(ips)
	if err != nil {
		return nil, fmt.Errorf("relay API: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := cluster.NewPlacement(ctx, cluster.PlacementConfig{
		Cluster: cluster.Config{RedisURL: cfg.Redis, Secret: secret, Logger: log,
			Node:     cluster.NodeInfo{ID: id, Region: cfg.Region, URL: base, Capacity: cfg.Capacity},
			LoadFunc: func() int { return s.Stats().Participants }, Hosts: s.Hosts, ReleaseGrace: cfg.LeaseGrace},
		RelayAPI: api, RelayToken: cluster.RelayToken(secret, cfg.TokenAudience, id), OnMoved: moved,
		OnEnded: func(room string) { _, _ = s.EndRoom(room) }, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return p, nil
}
