package signaling

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/signaling/audit"
)

// record queues a security event for the audit log, if there is one; it does not wait for the disk. A record
// dropped because the log's queue is full is counted by the log in its next gap record; other failures are
// logged: the request the record is about has been answered already.
func (srv *Server) record(r audit.Record) {
	if srv.audit == nil {
		return
	}
	if err := srv.audit.Write(r); err != nil && !errors.Is(err, audit.ErrQueueFull) {
		srv.log.Error("audit log write failed", zap.String("kind", r.Kind), zap.Error(err))
	}
}

// recordAuthFailure records a refused token on an HTTP endpoint (a name of the server's, not the path). The
// room in the path is the client's choice, unverified: only its length is recorded.
func (srv *Server) recordAuthFailure(r *http.Request, endpoint string, err error) {
	detail := map[string]any{"endpoint": endpoint, "error": err.Error()}
	if room := r.PathValue("room"); room != "" {
		detail["room_len"] = len(room)
	}
	srv.record(audit.Record{Kind: audit.KindAuthFailure, Remote: r.RemoteAddr, Refused: true, Detail: detail})
}
