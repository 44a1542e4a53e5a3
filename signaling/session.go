package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/edge-sfu/sfu/sfu"
	"github.com/edge-sfu/sfu/signaling/audit"
	"github.com/edge-sfu/sfu/signaling/protocol"
	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

const (
	// hardReadLimit closes the socket: a frame this large is not a client of this protocol.
	hardReadLimit = 1 << 20
	pingInterval  = 10 * time.Second
	readTimeout   = 30 * time.Second
	joinTimeout   = 10 * time.Second // a socket that has not joined by then is closed
	writeTimeout  = 10 * time.Second
	// sendQueue bounds the messages waiting for a slow client (besides those being written); a client that falls
	// this far behind is dropped.
	sendQueue = 256
)

// session is one client's WebSocket. Its read loop handles the client's requests in order; a writer goroutine
// sends what the SFU and the read loop queue. It implements sfu.Peer.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  *zap.Logger

	out      *outbox
	closing  chan struct{} // closed by End: the writer flushes, says goodbye and closes the socket
	readDone chan struct{} // closed when the read loop returns
	endOnce  sync.Once
	bye      []byte

	p       *sfu.Participant // set by join; used only by the read loop
	rate    tokenBucket      // messages a second; used only by the read loop
	chat    tokenBucket      // chat messages (chatBurst, chatInterval); used only by the read loop
	claims  Claims           // the verified token, once joined; used only by the read loop
	release func()           // called when the session ends: the placement's relay for this participant
	nodes   []string         // the joined message's fallback nodes, looked up before joining: no lookup under the SFU's locks
	remote  string           // the client's address, for the audit log
	slot    *unjoinedSlot    // the socket's place under the unjoined caps, released once it joins or ends

	refreshNow  chan struct{} // a fresh token is wanted now (a role change); see refresh.go
	refreshDone chan struct{} // closed when the token refresh loop returns; nil until it starts (join)
	reason      string        // the first reason End was given (written once, under endOnce)
	readErr     error         // why the read loop ended
}

func newSession(srv *Server, conn *websocket.Conn, slot *unjoinedSlot, log *zap.Logger) *session {
	return &session{srv: srv, conn: conn, slot: slot, log: log, remote: conn.RemoteAddr().String(), out: newOutbox(),
		closing: make(chan struct{}), readDone: make(chan struct{}), refreshNow: make(chan struct{}, 1)}
}

// run serves the socket until it closes, then takes the participant out of its room.
func (s *session) run() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	s.readLoop()
	s.slot.release()
	close(s.readDone)
	s.End("")
	if s.refreshDone != nil {
		<-s.refreshDone // it ends on closing
	}
	if s.release != nil {
		defer s.release()
	}
	if s.p != nil {
		s.p.Leave(leaveReason(s.reason, s.readErr))
		s.srv.record(audit.Record{Kind: audit.KindLeave, Room: s.claims.Room, Identity: s.claims.Identity, Participant: s.p.ID(), Remote: s.remote})
	}
	<-writerDone
}

func (s *session) readLoop() {
	s.conn.SetReadLimit(hardReadLimit)
	// A socket must join within joinTimeout: until then neither messages nor pongs extend its life.
	_ = s.conn.SetReadDeadline(time.Now().Add(joinTimeout))
	s.conn.SetPongHandler(func(string) error {
		if s.p == nil {
			return nil
		}
		return s.conn.SetReadDeadline(time.Now().Add(readTimeout))
	})
	var buf []byte // see preJoinBuffer
	for {
		kind, r, err := s.conn.NextReader()
		if err != nil {
			s.readErr = err
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				s.log.Debug("websocket read", zap.Error(err))
			}
			return
		}
		if s.p != nil {
			_ = s.conn.SetReadDeadline(time.Now().Add(readTimeout))
		}
		msg, size, err := readMessage(r, buf, protocol.MaxMessageSize)
		if buf = msg; s.p == nil && cap(buf) > preJoinBuffer {
			buf = nil
		}
		if err != nil {
			s.log.Debug("websocket read", zap.Error(err))
			return
		}
		// Every frame counts against the rate, whatever its type or size: the refusals below cost an answer each.
		if !s.allowFrame() {
			continue
		}
		if kind != websocket.TextMessage {
			s.sendError(protocol.Errorf(protocol.CodeBadMessage, "", "binary frames are refused: messages are JSON text frames"))
			continue
		}
		if size > protocol.MaxMessageSize {
			s.sendError(protocol.Errorf(protocol.CodeTooLarge, "", "message is %d bytes; the limit is %d", size, protocol.MaxMessageSize))
			continue
		}
		if !s.handle(msg) {
			return
		}
	}
}

// allowFrame takes a frame from the socket's rate; over it, the frame is dropped and the client told (once a
// second at most).
func (s *session) allowFrame() bool {
	now := time.Now()
	if s.rate.allow(now) {
		return true
	}
	if s.rate.shouldTell(now) {
		s.srv.record(audit.Record{Kind: audit.KindLimit, Room: s.claims.Room, Identity: s.claims.Identity, Remote: s.remote,
			Refused: true, Detail: map[string]any{"refused": "message", "code": protocol.CodeRateLimited}})
		s.sendError(protocol.Errorf(protocol.CodeRateLimited, "", "more than %d messages a second; this one was dropped", MaxMessagesPerSecond))
	}
	return false
}

// handle acts on one message; it reports false when the session must end.
func (s *session) handle(data []byte) bool {
	req, err := protocol.Decode(data)
	if err != nil {
		s.sendError(err)
		return true
	}
	if req.Type == "ping" {
		s.send(protocol.Pong{Type: protocol.TypePong, ID: req.ID})
		return true
	}
	if s.p == nil {
		if req.Type != "join" {
			s.sendError(protocol.Errorf(protocol.CodeNotJoined, req.Type, "send join first"))
			return true
		}
		return s.join(req.Token, req.E2EE)
	}
	switch req.Type {
	case "join":
		s.sendError(protocol.Errorf(protocol.CodeAlreadyJoined, req.Type, "this socket has joined already"))
	case "offer":
		if _, err := s.p.HandleOffer(req.SDP); err != nil { // the answer goes out through SendDescription
			s.sendError(sfuError(req.Type, err))
			return true
		}
	case "answer":
		if err := s.p.HandleAnswer(req.SDP); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "candidate":
		if err := s.p.AddCandidate(sfuPC(req.PC), *req.Candidate); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "mute":
		if err := s.p.SetMuted(req.Track, *req.Muted); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "track_source":
		if err := s.p.SetSource(req.Track, req.Source); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case protocol.TypeRelayTrack: // the SFU refuses it from anyone but a relay between nodes
		muted := req.Muted != nil && *req.Muted
		from := sfu.RemotePublisher{ID: req.Participant, Identity: req.Identity, Name: req.Name, E2EE: req.E2EE}
		if err := s.p.RelayTrack(req.Track, from, req.Source, muted); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "subscription":
		if err := s.p.SetTileSize(req.Track, *req.Width, *req.Height); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case protocol.TypeCaptions, protocol.TypeDenoise: // requests to the node's workers, by message type
		if err := s.p.Control(req.Type, req); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case protocol.TypeChat:
		if s.claims.Relay { // another node's relay, carrying what its participants said there
			from := sfu.RemotePublisher{ID: req.Participant, Name: req.Name}
			if err := s.p.RelayChat(from, req.Text, req.To); err != nil {
				s.sendError(sfuError(req.Type, err))
			}
			return true
		}
		if !s.chat.allowAt(time.Now(), float64(time.Second/chatInterval), chatBurst) {
			s.sendError(protocol.Errorf(protocol.CodeRateLimited, req.Type, "more than %d chat messages in %v; this one was not sent", chatBurst, chatBurst*chatInterval))
			return true
		}
		if err := s.p.Chat(req.Text, req.To); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case protocol.TypeE2EE: // key messages between clients of an E2EE room, passed on unread
		var err error
		if s.claims.Relay {
			err = s.p.RelayE2EE(req.Participant, req.To, req.Data)
		} else {
			err = s.p.SendE2EE(req.To, req.Data)
		}
		if err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case protocol.TypeHand:
		if err := s.p.RaiseHand(*req.Raised); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "admin":
		if s.p.IsAdmin() { // stored for the other nodes first: none admits a newcomer once the room hears of a lock
			s.srv.storeModeration(s.claims.Room, req.Action)
		}
		did, err := s.p.AdminAction(sfu.AdminRequest{Action: req.Action, Participant: req.Participant, Track: req.Track, Publish: req.Publish, Admin: req.Admin})
		kind := audit.KindAdmin
		if req.Action == sfu.ActionSetRole {
			kind = audit.KindRoleChange
		}
		detail := map[string]any{"action": req.Action, "target": req.Participant, "track": req.Track, "done": did}
		if err != nil {
			detail["refused"] = err.Error()
		}
		s.srv.record(audit.Record{Kind: kind, Room: s.claims.Room, Identity: s.claims.Identity, Participant: s.p.ID(), Remote: s.remote,
			Refused: err != nil, Detail: detail}) // the log bounds the client's strings (track, target)
		if err != nil {
			s.sendError(sfuError(req.Type, err))
			return true
		}
		s.log.Info("admin action", zap.String("action", req.Action), zap.String("target", req.Participant), zap.String("done", did))
	case "ice_restart":
		if err := s.p.RestartICE(); err != nil {
			s.sendError(sfuError(req.Type, err))
		}
	case "leave":
		s.End("left")
		return false
	}
	return true
}

func (s *session) join(token, e2ee string) bool {
	verifiedAt := time.Now()
	claims, err := s.srv.keys.Verify(token)
	if err != nil {
		s.srv.record(audit.Record{Kind: audit.KindAuthFailure, Remote: s.remote, Refused: true,
			Detail: map[string]any{"endpoint": "ws", "error": err.Error()}})
		code := protocol.CodeUnauthorized
		if errors.Is(err, ErrTokenExpired) {
			code = protocol.CodeTokenExpired
		}
		s.sendError(protocol.Errorf(code, "join", "%v", err))
		s.End("")
		return false
	}
	var lockedInCluster bool
	var regions []string // the room's residency policy, in a cluster
	if pl := s.srv.placement; pl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var route Route
		var err error
		if claims.Relay { // another node's relay: admitted, never routed
			err = pl.Admit(ctx, claims.Room, claims.Regions)
		} else {
			route, err = pl.Route(ctx, claims.Room, claims.Regions)
		}
		cancel()
		switch {
		case errors.Is(err, ErrResidency):
			s.srv.record(audit.Record{Kind: audit.KindResidencyRefused, Room: claims.Room, Identity: claims.Identity, Remote: s.remote,
				Refused: true, Detail: map[string]any{"regions": claims.Regions, "relay": claims.Relay, "node_region": pl.Region(), "error": err.Error()}})
			s.sendError(protocol.Errorf(protocol.CodeResidency, "join", "%v", err))
			s.End("")
			return false
		case errors.Is(err, ErrNotPlaced):
			s.sendError(protocol.Errorf(protocol.CodeNotFound, "join", "%v", err))
			s.End("")
			return false
		case err != nil:
			s.sendError(protocol.Errorf(protocol.CodeInternal, "join", "cannot place the room: %v", err))
			s.End("")
			return false
		case route.Redirect != "":
			s.send(protocol.Redirect{Type: protocol.TypeRedirect, URL: wsURL(route.Redirect), Reason: "room_owner"})
			s.End("")
			return false
		}
		s.release, lockedInCluster, regions = route.Release, route.Locked, route.Regions
	}
	if pl := s.srv.placement; pl != nil {
		s.nodes = nil
		for _, u := range pl.Fallbacks() {
			s.nodes = append(s.nodes, wsURL(u))
		}
	}
	p, err := s.srv.sfu.Join(sfu.JoinRequest{Room: claims.Room, Identity: claims.Identity, Name: claims.Name,
		CanPublish: claims.Publish, CanSubscribe: claims.Subscribe, CanPublishData: claims.PublishData,
		Admin:      claims.Admin || claims.Relay, // a relay carries the other node's moderation (lock, end) across
		ValidUntil: claims.validUntil(), Locked: lockedInCluster, Regions: regions, Relay: claims.Relay, E2EE: e2ee}, s)
	if err != nil {
		if s.release != nil { // the relay this join would have needed
			s.release()
			s.release = nil
		}
		pe := sfuError("join", err)
		if pe.Code == protocol.CodeInternal {
			s.sendError(protocol.Errorf(protocol.CodeInternal, "join", "cannot join: %v", err))
			s.End("shutdown")
			return false
		}
		s.srv.record(audit.Record{Kind: audit.KindLimit, Room: claims.Room, Identity: claims.Identity, Remote: s.remote,
			Refused: true, Detail: map[string]any{"refused": "join", "code": pe.Code, "error": pe.Message}})
		s.sendError(pe) // a room rule or a limit: the client may try again later on this socket
		return true
	}
	s.claims = *claims
	s.srv.record(audit.Record{Kind: audit.KindJoin, Room: claims.Room, Identity: claims.Identity, Participant: p.ID(), Remote: s.remote,
		Detail: map[string]any{"publish": claims.Publish, "subscribe": claims.Subscribe, "publish_data": claims.PublishData, "admin": claims.Admin}})
	s.p = p
	s.slot.release()
	s.startRefresh(*claims, verifiedAt)
	s.log.Debug("joined", zap.String("room", claims.Room), zap.String("participant", p.ID()))
	return true
}

// sfuErrorCodes maps the SFU's errors to protocol error codes; the first that matches wins.
var sfuErrorCodes = []struct {
	err  error
	code string
}{
	{sfu.ErrBadSDP, protocol.CodeBadSDP}, {sfu.ErrOutOfOrder, protocol.CodeOutOfOrder}, {sfu.ErrForbidden, protocol.CodeForbidden},
	{sfu.ErrBadRequest, protocol.CodeBadRequest}, {sfu.ErrRoomFull, protocol.CodeRoomFull}, {sfu.ErrRoomLocked, protocol.CodeRoomLocked},
	{sfu.ErrBusy, protocol.CodeBusy}, {sfu.ErrKicked, protocol.CodeKicked}, {sfu.ErrLimit, protocol.CodeLimit}, {sfu.ErrE2EE, protocol.CodeE2EE}, {sfu.ErrEncryption, protocol.CodeE2EE}, {sfu.ErrUnavailable, protocol.CodeUnavailable},
	{sfu.ErrNotFound, protocol.CodeNotFound}, {sfu.ErrExists, protocol.CodeExists},
}

// sfuError maps an SFU error to a protocol error.
func sfuError(ref string, err error) *protocol.ProtocolError {
	code := protocol.CodeInternal
	for _, c := range sfuErrorCodes {
		if errors.Is(err, c.err) {
			code = c.code
			break
		}
	}
	return protocol.Errorf(code, ref, "%v", err)
}

func (s *session) sendError(err error) {
	var pe *protocol.ProtocolError
	if !errors.As(err, &pe) {
		pe = protocol.Errorf(protocol.CodeInternal, "", "%v", err)
	}
	if pe.Code == protocol.CodeInternal {
		s.log.Warn("request failed", zap.String("ref", pe.Ref), zap.String("error", pe.Message))
	}
	s.send(pe.ErrorMessage())
}

// send queues a message. A client whose queue is full is not keeping up; its session ends.
func (s *session) send(msg any) {
	b, err := json.Marshal(msg)
	if err != nil {
		s.log.Error("encode message", zap.Error(err))
		return
	}
	select {
	case <-s.closing:
		return
	default:
	}
	if !s.out.put(b) {
		s.log.Warn("client too slow: send queue full")
		s.End("")
	}
}

// SendDescription implements sfu.Peer.
func (s *session) SendDescription(pc sfu.PC, sd webrtc.SessionDescription) {
	s.send(protocol.SDP{Type: sd.Type.String(), PC: pc.String(), SDP: sd.SDP})
}

// SendCandidate implements sfu.Peer.
func (s *session) SendCandidate(pc sfu.PC, c webrtc.ICECandidateInit) {
	s.send(protocol.Candidate{Type: protocol.TypeCandidate, PC: pc.String(), Candidate: c})
}

// SendEvent implements sfu.Peer.
func (s *session) SendEvent(ev sfu.Event) {
	msg := eventMessage(ev, s.srv.iceServersFor(ev))
	if j, ok := msg.(protocol.Joined); ok && len(s.nodes) > 0 { // sent from within sfu.Join, under its locks
		j.Nodes = s.nodes
		msg = j
	}
	if msg != nil {
		s.send(msg)
	}
	if ev.Kind == sfu.EventModerated && ev.Action == sfu.ActionSetRole {
		s.pokeRefresh() // the next token carries the new grants
	}
}

// End implements sfu.Peer: the writer sends what is queued, then bye with reason (if any), then closes.
func (s *session) End(reason string) {
	s.endOnce.Do(func() {
		s.reason = reason
		if reason != "" {
			s.bye, _ = json.Marshal(protocol.Bye{Type: protocol.TypeBye, Reason: reason})
		}
		close(s.closing)
	})
}

func (s *session) writeLoop() {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	defer s.conn.Close()
	write := func(kind int, b []byte) error {
		_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return s.conn.WriteMessage(kind, b)
	}
	var sent [][]byte // the last batch, handed back to the outbox
	for {
		select {
		case <-s.out.ready:
			sent = s.out.take(sent)
			for _, b := range sent {
				if err := write(websocket.TextMessage, b); err != nil {
					s.End("")
					return
				}
			}
		case <-ping.C:
			if err := write(websocket.PingMessage, nil); err != nil {
				s.End("")
				return
			}
		case <-s.closing:
			s.flush(write)
			return
		}
	}
}

// flush sends what is queued and the goodbye, closes the WebSocket cleanly and gives the client a moment to
// answer the close before the socket goes.
func (s *session) flush(write func(int, []byte) error) {
	for _, b := range s.out.take(nil) {
		if write(websocket.TextMessage, b) != nil {
			return
		}
	}
	if s.bye != nil {
		_ = write(websocket.TextMessage, s.bye)
	}
	if write(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")) != nil {
		return
	}
	select {
	case <-s.readDone:
	case <-time.After(time.Second):
	}
}
