// Package signaling is the node's HTTP surface: the signaling WebSocket, join tokens, the embedded browser client,
// health (metrics are served by the node on a listener of their own).
package signaling

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

//go:embed web
var webFiles embed.FS

// devTokenTTL is how long a token minted by the dev-mode /token endpoint lasts.
const devTokenTTL = 6 * time.Hour

// Config configures the HTTP surface.
type Config struct {
	Secret []byte            // HS256 secret for join tokens without a key id
	Keys   map[string][]byte // more HS256 keys, by the key id (kid) in a token's header: for key rotation
	// TokenKeyID names the key of Keys that signs the tokens the node refreshes for its participants (the key
	// rotated to); "": Secret, with no kid.
	TokenKeyID string
	// Audience is the "aud" tokens must name here ("": DefaultAudience); MaxTokenTTL the longest lifetime they
	// may have (0: DefaultMaxTokenTTL).
	Audience    string
	MaxTokenTTL time.Duration
	Audit       *audit.Log // where security events are recorded; nil: nowhere
	// Placement routes joins when the node is one of several (a cluster); nil: every room is hosted here.
	Placement Placement
	Dev       bool // serve GET /token, which mints tokens for anyone
	Logger    *zap.Logger

	// AllowedOrigins are the browser origins (scheme://host[:port]) that may open the WebSocket besides the
	// node's own (see ownOrigin: never taken from the request's Host header); "*" allows any. Requests without
	// an Origin header (non-browser clients) are always allowed.
	AllowedOrigins []string
	// PublicURL is the base URL browsers reach the node at (e.g. https://meet.example.org, behind a proxy); its
	// origin is one of the node's own. "": only the node's address is.
	PublicURL string
	// Transcripts serves GET /transcript/{room}; nil: no transcripts.
	Transcripts Transcripts
	// ICEServers, when set, returns the ICE servers of one joining participant (e.g. TURN credentials minted
	// for its identity, ending by notAfter, its token's end; zero: no end); its joined message carries them after
	// the SFU's own.
	ICEServers func(identity string, notAfter time.Time) []webrtc.ICEServer

	// MaxUnjoinedPerIP bounds the WebSockets one remote address (IPv6: its /64) holds open before joining; one
	// more gets 429. MaxUnjoined bounds them over the node; one more gets 503. 0: the defaults; negative: no limit.
	MaxUnjoinedPerIP, MaxUnjoined int
	// BodyTimeout bounds reading a request's body, counted from when its headers are in; 0: DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Region and NodeID name this node in the server API's answers when it has no Placement (which names it).
	Region, NodeID string
	// Segmentation holds the files of the background-blur model the browser client loads (the npm package
	// @mediapipe/selfie_segmentation), served under SegmentationPath; nil: background blur is unavailable.
	Segmentation fs.FS
	// Ready, when set, says why the node takes no new participants now (draining, its cluster store unreachable),
	// nil when it does: GET /readyz answers 503 with the reason, or 200.
	Ready func() error
}

// The defaults of Config's caps on the HTTP surface.
const (
	DefaultMaxUnjoinedPerIP = 20
	DefaultMaxUnjoined      = 1000
	DefaultBodyTimeout      = 10 * time.Second
)

// Server serves the signaling WebSocket and the browser client.
type Server struct {
	placement Placement
	secret    []byte
	keys      Keys
	signKid   string // the key refreshed tokens are signed with (Config.TokenKeyID), "" for secret
	signKey   []byte
	audit     *audit.Log
	dev       bool
	sfu       *sfu.SFU
	log       *zap.Logger
	mux       *http.ServeMux

	upgrader       websocket.Upgrader
	writeBuffers   sync.Pool     // the upgrader's write buffers: a socket holds one only while it writes
	unjoined       *unjoinedCaps // sockets open but not joined, per address and in all
	bodyTimeout    time.Duration
	anyOrigin      bool                // Config.AllowedOrigins has "*"
	origins        map[string]struct{} // normalized Config.AllowedOrigins and the origin of Config.PublicURL
	joinICEServers func(identity string, notAfter time.Time) []webrtc.ICEServer
	transcripts    Transcripts
	ready          func() error
	region, nodeID string // Config's: the server API's answers name the node

	mu           sync.Mutex
	sessions     map[*session]struct{}
	httpSessions map[string]*httpSession // WHIP and WHEP, by participant id
	closed       bool
	wg           sync.WaitGroup // running sessions
}

// RedirectAll sends every participant to another node (base URL) and ends their sessions: a draining node's
// last word. It returns how many were sent.
func (srv *Server) RedirectAll(base string) int {
	srv.mu.Lock()
	sessions := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		sessions = append(sessions, s)
	}
	srv.mu.Unlock()
	for _, s := range sessions {
		s.send(protocol.Redirect{Type: protocol.TypeRedirect, URL: wsURL(base), Reason: "draining"})
		s.End("")
	}
	return len(sessions)
}

// MoveRoom sends the participants of a room this node hosts to the node at base, which now owns the room (the
// cluster found its lease there), records it in the audit log and returns how many there were.
func (srv *Server) MoveRoom(room, base string) int {
	n, err := srv.sfu.MoveRoom(room, base)
	if err != nil {
		return 0 // the room closed meanwhile
	}
	srv.record(audit.Record{Kind: audit.KindRoomMoved, Room: room, Detail: map[string]any{"to": base, "participants": n}})
	srv.log.Warn("room moved to the node that holds its lease", zap.String("room", room), zap.String("to", base), zap.Int("participants", n))
	return n
}

// NewServer builds the handler for s.
func NewServer(s *sfu.SFU, cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	srv := &Server{placement: cfg.Placement, secret: cfg.Secret, keys: Keys{Default: cfg.Secret, ByID: cfg.Keys, Audience: cfg.Audience, MaxTTL: cfg.MaxTokenTTL}, audit: cfg.Audit, dev: cfg.Dev, sfu: s, log: log, mux: http.NewServeMux(),
		sessions: map[*session]struct{}{}, httpSessions: map[string]*httpSession{},
		unjoined: newUnjoinedCaps(cfg.MaxUnjoinedPerIP, cfg.MaxUnjoined), bodyTimeout: cfg.BodyTimeout,
		origins: map[string]struct{}{}, joinICEServers: cfg.ICEServers, transcripts: cfg.Transcripts, ready: cfg.Ready,
		region: cfg.Region, nodeID: cfg.NodeID}
	if srv.bodyTimeout <= 0 {
		srv.bodyTimeout = DefaultBodyTimeout
	}
	srv.signKey = cfg.Secret
	if kid := cfg.TokenKeyID; kid != "" {
		if key := cfg.Keys[kid]; len(key) > 0 {
			srv.signKid, srv.signKey = kid, key
		} else {
			log.Error("no key of this id among the keys: refreshed tokens are signed with the secret", zap.String("token_kid", kid))
		}
	}
	// What a socket holds for its life is small: a 1 KiB read buffer (larger messages are read past it) and, from
	// the pool, a write buffer only while it writes.
	srv.upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096, WriteBufferPool: &srv.writeBuffers,
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      func(*http.Request) bool { return true }} // serveWS checks it first, with a clearer answer
	if o, err := urlOrigin(cfg.PublicURL); err == nil {
		srv.origins[o] = struct{}{}
	}
	for _, o := range cfg.AllowedOrigins {
		if strings.TrimSpace(o) == "*" {
			srv.anyOrigin = true
		} else if n, err := NormalizeOrigin(o); err == nil {
			srv.origins[n] = struct{}{}
		}
	}
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	srv.mux.Handle("GET /{$}", withPageHeaders(srv.page(static, "index.html")))
	srv.mux.Handle("GET /room/{room}", withPageHeaders(srv.roomPage(static)))
	srv.mux.Handle("GET /static/", withPageHeaders(http.StripPrefix("/static/", http.FileServerFS(static))))
	srv.routeSegmentation(cfg.Segmentation)
	srv.mux.HandleFunc("GET /ws", srv.serveWS)
	srv.mux.HandleFunc("GET /transcript/{room}", srv.serveTranscript)
	srv.routeWHIP()
	srv.routeAPI()
	srv.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	srv.mux.HandleFunc("GET /readyz", srv.serveReady)
	if cfg.Dev {
		srv.mux.HandleFunc("GET /token", srv.devToken)
	}
	return srv
}

// ServeHTTP implements http.Handler.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	srv.setDeadlines(w)
	srv.mux.ServeHTTP(w, r)
}

func (srv *Server) page(static fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(static, name)
		if err != nil {
			http.Error(w, "page missing", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

func (srv *Server) roomPage(static fs.FS) http.HandlerFunc {
	serve := srv.page(static, "room.html")
	return func(w http.ResponseWriter, r *http.Request) {
		if !validRoom(r.PathValue("room")) {
			http.Error(w, "room names are 1 to 128 characters", http.StatusBadRequest)
			return
		}
		serve(w, r)
	}
}

func validRoom(room string) bool {
	return room != "" && utf8.ValidString(room) && utf8.RuneCountInString(room) <= maxRoomLen
}

// devToken mints a token for the room and name in the query: dev mode only.
func (srv *Server) devToken(w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	if !validRoom(room) {
		http.Error(w, "room names are 1 to 128 characters", http.StatusBadRequest)
		return
	}
	name := strings.TrimSpace(r.URL.Query().Get("name"))
	if utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name) {
		http.Error(w, "names are at most 64 characters", http.StatusBadRequest)
		return
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	identity := "guest-" + hex.EncodeToString(id[:])
	if name == "" {
		name = identity
	}
	c := Claims{Room: room, Identity: identity, Name: name, Publish: true, Subscribe: true}
	if srv.keys.Audience != "" {
		c.Audience = jwt.ClaimStrings{srv.keys.Audience}
	}
	tok, err := MintToken(srv.secret, c, min(devTokenTTL, srv.keys.maxTTL()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
}

func (srv *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !srv.originAllowed(r) {
		origin := r.Header.Get("Origin")
		srv.log.Info("websocket refused: origin not allowed", zap.String("origin", origin), zap.String("host", r.Host),
			zap.String("remote", r.RemoteAddr))
		http.Error(w, "origin "+strconv.Quote(origin)+" may not open the signaling WebSocket of this node: it allows its "+
			"public URL's origin (public-url), its own address (and localhost on loopback) and the allowed origins "+
			"(allowed-origins), never one taken from the Host header", http.StatusForbidden)
		return
	}
	slot, status := srv.unjoined.acquire(r.RemoteAddr)
	if slot == nil {
		srv.refuseUnjoined(w, r, status)
		return
	}
	conn, err := srv.upgrader.Upgrade(w, r, nil)
	if err != nil {
		slot.release()
		return // the upgrader has answered with the HTTP error
	}
	s := newSession(srv, conn, slot, srv.log.With(zap.String("remote", r.RemoteAddr)))
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		s.End("shutdown")
		s.run()
		return
	}
	srv.sessions[s] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	// The session runs on a goroutine of the Server's (Shutdown waits for it through wg), not on the HTTP
	// connection's: once this handler returns, net/http lets go of the hijacked connection's state (its 4 KiB
	// read and write buffers, the request) and of that goroutine's stack.
	go func() {
		defer func() {
			srv.mu.Lock()
			delete(srv.sessions, s)
			srv.mu.Unlock()
			srv.wg.Done()
		}()
		s.run()
	}()
}

// iceServersFor returns the ICE servers an event's message carries: the SFU's, and for joined those of the
// joining participant (Config.ICEServers).
func (srv *Server) iceServersFor(ev sfu.Event) []webrtc.ICEServer {
	ice := srv.sfu.ICEServers()
	if ev.Kind != sfu.EventJoined || srv.joinICEServers == nil {
		return ice
	}
	return append(slices.Clone(ice), srv.joinICEServers(ev.Participant.Identity, ev.Participant.ValidUntil)...)
}

// serveReady answers 200 while the node takes new participants, 503 with the reason while it does not: shutting
// down, or what Config.Ready says (draining, the cluster store unreachable).
func (srv *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	srv.mu.Lock()
	closed := srv.closed
	srv.mu.Unlock()
	var err error
	switch {
	case closed:
		err = errors.New("shutting down")
	case srv.ready != nil:
		err = srv.ready()
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Shutdown tells every client the server is stopping, ends their sessions and waits for them, or for ctx.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.closed = true
	for s := range srv.sessions {
		s.End("shutdown")
	}
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() {
		srv.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
