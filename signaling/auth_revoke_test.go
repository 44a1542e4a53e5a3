package signaling

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Pen-test finding 12: a token must name this node's audience and may not live longer than the node's maximum.

// signClaims signs c as it is, without MintToken's defaults.
func signClaims(t *testing.T, c Claims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenAudience(t *testing.T) {
	keys := Keys{Default: authSecret, Audience: "hk-prod"}
	c := Claims{Room: "r", Identity: "i"}
	c.Audience = jwt.ClaimStrings{"hk-prod"}
	tok, err := MintToken(authSecret, c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tok); err != nil {
		t.Fatalf("the right audience refused: %v", err)
	}
	c.Audience = jwt.ClaimStrings{"eu-prod"}
	if tok, err = MintToken(authSecret, c, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tok); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("a wrong audience: %v, want ErrUnauthorized about the audience", err)
	}
	// MintToken names the default audience, which a node with the default accepts and another refuses.
	if tok, err = MintToken(authSecret, Claims{Room: "r", Identity: "i"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := VerifyToken(authSecret, tok)
	if err != nil {
		t.Fatalf("the default audience refused: %v", err)
	}
	if len(got.Audience) != 1 || got.Audience[0] != DefaultAudience {
		t.Errorf("aud %v, want [%s]", got.Audience, DefaultAudience)
	}
	if _, err := keys.Verify(tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the default audience at a node of another: %v", err)
	}
	// No aud at all.
	mustUnauthorized(t, signClaims(t, Claims{Room: "r", Identity: "i", RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(time.Now())}}))
}

func TestTokenLifetime(t *testing.T) {
	now := time.Now()
	aud := jwt.ClaimStrings{DefaultAudience}
	for _, tt := range []struct {
		name     string
		iat, exp time.Time
		ok       bool
	}{
		{"an hour", now, now.Add(time.Hour), true},
		{"24 hours exactly", now, now.Add(DefaultMaxTokenTTL), true},
		{"30 days", now, now.Add(30 * 24 * time.Hour), false},
		{"30 days, issued long ago", now.Add(-30 * 24 * time.Hour), now.Add(time.Hour), false},
		{"no iat, 30 days from now", time.Time{}, now.Add(30 * 24 * time.Hour), false},
		{"no iat, an hour from now", time.Time{}, now.Add(time.Hour), true},
		{"iat in the future", now.Add(time.Hour), now.Add(2 * time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Claims{Room: "r", Identity: "i", RegisteredClaims: jwt.RegisteredClaims{Audience: aud, ExpiresAt: jwt.NewNumericDate(tt.exp)}}
			if !tt.iat.IsZero() {
				c.IssuedAt = jwt.NewNumericDate(tt.iat)
			}
			tok := signClaims(t, c)
			if tt.ok {
				if _, err := VerifyToken(authSecret, tok); err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			mustUnauthorized(t, tok)
		})
	}
	// A message that says why, and a node maximum that is the node's to set.
	tok, err := MintToken(authSecret, Claims{Room: "r", Identity: "i"}, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(authSecret, tok); err == nil || !strings.Contains(err.Error(), "lifetime") {
		t.Fatalf("a 30-day token: %v, want a refusal about its lifetime", err)
	}
	if tok, err = MintToken(authSecret, Claims{Room: "r", Identity: "i"}, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := (Keys{Default: authSecret, MaxTTL: time.Hour}).Verify(tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a 2-hour token at a node whose maximum is an hour: %v", err)
	}
	// No exp at all is refused (TestTokenMissingExp), with an audience too.
	mustUnauthorized(t, signClaims(t, Claims{Room: "r", Identity: "i", RegisteredClaims: jwt.RegisteredClaims{Audience: aud,
		IssuedAt: jwt.NewNumericDate(now)}}))
}
