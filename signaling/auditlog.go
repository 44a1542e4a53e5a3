package signaling

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/signaling/audit"
)

// record writes a security event to the audit log, if there is one. A failed write is logged: the request it
// records has been answered already.
func (srv *Server) record(r audit.Record) {
	if srv.audit == nil {
		return
	}
	if err := srv.audit.Write(r); err != nil {
		srv.log.Error("audit log write failed", zap.String("kind", r.Kind), zap.Error(err))
	}
}

// recordAuthFailure records a refused token on an HTTP endpoint.
func (srv *Server) recordAuthFailure(r *http.Request, endpoint string, err error) {
	srv.record(audit.Record{Kind: audit.KindAuthFailure, Room: r.PathValue("room"), Remote: r.RemoteAddr,
		Detail: map[string]any{"endpoint": endpoint, "error": err.Error()}})
}
