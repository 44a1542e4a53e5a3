package signaling

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edge-sfu/sfu/sfu"
)

// TestHTTPError: a busy node answers WHIP and WHEP with 503 and Retry-After, an offer beyond a limit with 400, and
// the message says why.
func TestHTTPError(t *testing.T) {
	for _, c := range []struct {
		err   error
		want  int
		retry bool
	}{
		{fmt.Errorf("%w: 50 joins are being set up", sfu.ErrBusy), http.StatusServiceUnavailable, true},
		{fmt.Errorf("the offer has 800 media sections; at most 32 are taken: %w", sfu.ErrLimit), http.StatusBadRequest, false},
		{fmt.Errorf("the whep offer names 300 ICE candidates: %w", sfu.ErrBadSDP), http.StatusBadRequest, false},
	} {
		w := httptest.NewRecorder()
		httpError(w, c.err)
		if w.Code != c.want || (w.Header().Get("Retry-After") != "") != c.retry || !strings.Contains(w.Body.String(), c.err.Error()) {
			t.Errorf("%v: %d, Retry-After %q, body %q; want %d, Retry-After %v", c.err, w.Code, w.Header().Get("Retry-After"), w.Body.String(), c.want, c.retry)
		}
	}
}
