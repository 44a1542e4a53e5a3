package signaling

import (
	"fmt"
	"net/http"
	"strings"
)

// serveTranscript answers GET /transcript/{room} with the room's final captions as WebVTT. The caller proves it
// is in the room with a token for it that may subscribe, in the Authorization header (Bearer) only: a token in
// the address would stay in histories, proxies' logs and Referer headers. ?lang= picks a translation.
func (srv *Server) serveTranscript(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims, err := srv.keys.Verify(tok)
	if err != nil {
		srv.recordAuthFailure(r, "transcript", err)
		http.Error(w, "a valid token for the room is required in the Authorization header (Bearer): "+err.Error(), http.StatusUnauthorized)
		return
	}
	if claims.Room != room || !claims.Subscribe {
		http.Error(w, "the token is not for reading this room", http.StatusForbidden)
		return
	}
	lang := r.URL.Query().Get("lang")
	if len(lang) > 16 {
		http.Error(w, "lang is a language tag", http.StatusBadRequest)
		return
	}
	var vtt []byte
	ok := false
	if srv.transcripts != nil {
		vtt, ok = srv.transcripts.Transcript(room, lang)
	}
	if !ok {
		http.Error(w, "no transcript of this room on this node", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/vtt; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "transcript-"+sanitizeFilename(room)+".vtt"))
	_, _ = w.Write(vtt)
}

// Transcripts gives a room's transcript (the captions worker).
type Transcripts interface {
	// Transcript is the room's final captions so far as WebVTT, in lang where translated ("": as spoken); false
	// when this node keeps no transcript of the room.
	Transcript(room, lang string) ([]byte, bool)
}

func sanitizeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
