package signaling

import (
	"errors"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
)

// responseTimeout bounds writing a response (a WHIP/WHEP answer, a transcript, a page), counted from when the
// request's headers are in.
const responseTimeout = 30 * time.Second

// Every request gets deadlines from ServeHTTP, through http.ResponseController rather than the http.Server's
// ReadTimeout and WriteTimeout:
//
//   - The WebSocket outlives them: gorilla/websocket's Upgrade hijacks the connection, and net/http's Hijack
//     clears the connection's deadlines; the session then sets its own (join, read and write timeouts).
//   - A handler that has its body can lift the read deadline (clearBodyDeadline). With a server-wide
//     ReadTimeout the deadline stays on the connection after the body is read, and when it passes while the
//     handler is still working (a WHIP join placing its room in the cluster) net/http's background read fails
//     and cancels the request's context.
//   - The signaling handler carries its own bounds, wherever it is served.
//
// http.TimeoutHandler does not fit: it buffers the response and cannot be hijacked.

// setDeadlines gives the request's body bodyTimeout to arrive and its response responseTimeout to leave. The
// read deadline also bounds what net/http reads of an unread body after the handler, before it reuses the
// connection.
func (srv *Server) setDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	now := time.Now()
	if err := rc.SetReadDeadline(now.Add(srv.bodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		srv.log.Debug("set read deadline", zap.Error(err))
	}
	if err := rc.SetWriteDeadline(now.Add(responseTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		srv.log.Debug("set write deadline", zap.Error(err))
	}
}

// clearBodyDeadline lifts the read deadline once the handler has read the whole body.
func clearBodyDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// bodyTimedOut reports whether err is a body read cut off by the deadline.
func bodyTimedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
