package turn

import (
	"testing"
	"time"
)

// TestTURNCredentialsCappedAtToken: a participant's TURN credentials never outlive its token (pen-test finding
// 12): they expire at the token's end when that comes before -turn-ttl; a zero end means no token end.
func TestTURNCredentialsCappedAtToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := &Minter{Secret: "s", URLs: []string{"turn:192.0.2.1:3478"}, TTL: 12 * time.Hour, Now: func() time.Time { return now }}
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		want     string
	}{
		{"token ends in an hour", now.Add(time.Hour), "1800003600:alice"},
		{"token ends after the TTL", now.Add(24 * time.Hour), "1800043200:alice"},
		{"no token end", time.Time{}, "1800043200:alice"},
	} {
		if u := m.ICEServersUntil("alice", tt.notAfter)[0].Username; u != tt.want {
			t.Errorf("%s: username %q, want %q", tt.name, u, tt.want)
		}
	}
}
