package signaling

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var authSecret = []byte("auth-test-secret-0123456789abcdef")

func TestTokenRoundTrip(t *testing.T) {
	in := Claims{Room: "standup", Identity: "alice", Name: "Alice A.", Publish: true, Subscribe: true, Admin: true}
	before := time.Now().Add(-time.Second)
	tok, err := MintToken(authSecret, in, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyToken(authSecret, tok)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if got.Room != in.Room || got.Identity != in.Identity || got.Name != in.Name ||
		got.Publish != in.Publish || got.Subscribe != in.Subscribe || got.Admin != in.Admin {
		t.Errorf("claims %+v, want %+v", got, in)
	}
	if got.ExpiresAt == nil || got.IssuedAt == nil {
		t.Fatalf("exp %v, iat %v: want both set", got.ExpiresAt, got.IssuedAt)
	}
	after := time.Now().Add(time.Second)
	if iat := got.IssuedAt.Time; iat.Before(before) || iat.After(after) {
		t.Errorf("iat %v, want between %v and %v", iat, before, after)
	}
	if exp := got.ExpiresAt.Time; exp.Before(before.Add(2*time.Hour)) || exp.After(after.Add(2*time.Hour)) {
		t.Errorf("exp %v, want two hours after minting", exp)
	}

	// The other booleans the other way round, and no name: the name defaults to the identity.
	in = Claims{Room: "r", Identity: "bob", Publish: false, Subscribe: true}
	tok, err = MintToken(authSecret, in, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err = VerifyToken(authSecret, tok)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if got.Publish || !got.Subscribe || got.Admin || got.Name != "bob" {
		t.Errorf("claims %+v, want publish=false subscribe=true admin=false name=bob", got)
	}
}

// signRaw builds a token with the given header and payload JSON, signed with HMAC-SHA256 over secret, whatever
// the header says.
func signRaw(secret []byte, header, payload string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(s))
	return s + "." + enc.EncodeToString(mac.Sum(nil))
}

func mustUnauthorized(t *testing.T, tok string) {
	t.Helper()
	c, err := VerifyToken(authSecret, tok)
	if err == nil {
		t.Fatalf("VerifyToken accepted %q: %+v", tok, c)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("error %v, want ErrUnauthorized", err)
	}
	if errors.Is(err, ErrTokenExpired) {
		t.Errorf("error %v is ErrTokenExpired, want only ErrUnauthorized", err)
	}
	if c != nil {
		t.Errorf("claims %+v returned with an error", c)
	}
}

func TestTokenWrongSecret(t *testing.T) {
	tok, err := MintToken([]byte("another-secret"), Claims{Room: "r", Identity: "i"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mustUnauthorized(t, tok)
}

func TestTokenTampered(t *testing.T) {
	tok, err := MintToken(authSecret, Claims{Room: "r", Identity: "i"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"room":"r","identity":"i","publish":true,"subscribe":true,"admin":true,"exp":` +
		jsonTime(time.Now().Add(time.Hour)) + `}`))
	mustUnauthorized(t, parts[0]+"."+payload+"."+parts[2])
}

func jsonTime(t time.Time) string {
	b, _ := jwt.NewNumericDate(t).MarshalJSON()
	return string(b)
}

func TestTokenExpired(t *testing.T) {
	tok, err := MintToken(authSecret, Claims{Room: "r", Identity: "i", Publish: true}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyToken(authSecret, tok)
	if !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("got %+v, %v; want ErrTokenExpired", c, err)
	}
	if c != nil {
		t.Errorf("claims %+v returned with an error", c)
	}
	// An expired token signed with the wrong secret is simply unauthorized: the signature is checked first.
	tok, err = MintToken([]byte("another-secret"), Claims{Room: "r", Identity: "i"}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	mustUnauthorized(t, tok)
}

func TestTokenOtherAlgorithms(t *testing.T) {
	exp := jsonTime(time.Now().Add(time.Hour))
	payload := `{"room":"r","identity":"i","publish":true,"subscribe":true,"aud":"edge-sfu","exp":` + exp + `}`

	// Control: the hand-built HS256 token is accepted, so the refusals below are about the algorithm.
	if _, err := VerifyToken(authSecret, signRaw(authSecret, `{"alg":"HS256","typ":"JWT"}`, payload)); err != nil {
		t.Fatalf("hand-built HS256 token refused: %v", err)
	}

	claims := Claims{Room: "r", Identity: "i", Publish: true, Subscribe: true,
		RegisteredClaims: jwt.RegisteredClaims{Audience: jwt.ClaimStrings{DefaultAudience}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}

	t.Run("none", func(t *testing.T) {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		mustUnauthorized(t, tok)
		enc := base64.RawURLEncoding
		mustUnauthorized(t, enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))+"."+enc.EncodeToString([]byte(payload))+".")
		mustUnauthorized(t, enc.EncodeToString([]byte(`{"alg":"None"}`))+"."+enc.EncodeToString([]byte(payload))+".")
	})
	t.Run("HS512 with the right secret", func(t *testing.T) {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(authSecret)
		if err != nil {
			t.Fatal(err)
		}
		mustUnauthorized(t, tok)
	})
	t.Run("HS384 with the right secret", func(t *testing.T) {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS384, claims).SignedString(authSecret)
		if err != nil {
			t.Fatal(err)
		}
		mustUnauthorized(t, tok)
	})
	t.Run("RS256", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		mustUnauthorized(t, tok)
	})
	t.Run("RS256 header over an HMAC signature", func(t *testing.T) {
		mustUnauthorized(t, signRaw(authSecret, `{"alg":"RS256","typ":"JWT"}`, payload))
	})
	t.Run("no alg", func(t *testing.T) {
		mustUnauthorized(t, signRaw(authSecret, `{"typ":"JWT"}`, payload))
	})
}

func TestTokenMissingExp(t *testing.T) {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Room: "r", Identity: "i", Publish: true}).SignedString(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	mustUnauthorized(t, tok)
	mustUnauthorized(t, signRaw(authSecret, `{"alg":"HS256","typ":"JWT"}`, `{"room":"r","identity":"i","exp":null}`))
	mustUnauthorized(t, signRaw(authSecret, `{"alg":"HS256","typ":"JWT"}`, `{"room":"r","identity":"i","exp":"tomorrow"}`))
}

func TestTokenNotYetValid(t *testing.T) {
	c := Claims{Room: "r", Identity: "i", RegisteredClaims: jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(2 * time.Hour)), NotBefore: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	mustUnauthorized(t, tok)
}

func TestTokenFieldLimits(t *testing.T) {
	tests := []struct {
		name string
		c    Claims
		ok   bool
	}{
		{"minimal", Claims{Room: "r", Identity: "i"}, true},
		{"empty room", Claims{Room: "", Identity: "i"}, false},
		{"empty identity", Claims{Room: "r", Identity: ""}, false},
		{"room of 128", Claims{Room: strings.Repeat("r", 128), Identity: "i"}, true},
		{"room of 129", Claims{Room: strings.Repeat("r", 129), Identity: "i"}, false},
		{"room of 128 runes", Claims{Room: strings.Repeat("é", 128), Identity: "i"}, true},
		{"identity of 128", Claims{Room: "r", Identity: strings.Repeat("i", 128)}, true},
		{"identity of 129", Claims{Room: "r", Identity: strings.Repeat("i", 129)}, false},
		{"name of 64", Claims{Room: "r", Identity: "i", Name: strings.Repeat("n", 64)}, true},
		{"name of 64 runes", Claims{Room: "r", Identity: "i", Name: strings.Repeat("名", 64)}, true},
		{"name of 65", Claims{Room: "r", Identity: "i", Name: strings.Repeat("n", 65)}, false},
		{"name of 1000", Claims{Room: "r", Identity: "i", Name: strings.Repeat("n", 1000)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// MintToken checks the fields.
			_, err := MintToken(authSecret, tt.c, time.Hour)
			if tt.ok != (err == nil) {
				t.Fatalf("MintToken: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("MintToken error %v, want ErrUnauthorized", err)
			}
			// VerifyToken checks them again on a token signed without MintToken.
			c := tt.c
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
			c.Audience = jwt.ClaimStrings{DefaultAudience}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(authSecret)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ok {
				got, err := VerifyToken(authSecret, tok)
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if got.Room != tt.c.Room || got.Identity != tt.c.Identity {
					t.Errorf("claims %+v", got)
				}
				return
			}
			mustUnauthorized(t, tok)
		})
	}
}

func TestTokenGarbage(t *testing.T) {
	for _, s := range []string{"", "garbage", "a.b.c", "..", "eyJ.eyJ.", "Bearer x.y.z",
		strings.Repeat("A", 10000), "\xff\xfe.\x00.\x01",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + ".!!!.sig"} {
		mustUnauthorized(t, s)
	}
}
