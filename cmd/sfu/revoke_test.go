package main

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/signaling"
)

// Pen-test finding 12, revocation: a kick bans the identity from the room until its token expires; tokens name
// the node's audience and live at most -max-token-ttl.

// tokenFor mints a publish and subscribe token for identity in room, valid for ttl, with the audience aud (""
// for MintToken's default).
func tokenFor(t *testing.T, room, identity, aud string, ttl time.Duration) string {
	t.Helper()
	c := signaling.Claims{Room: room, Identity: identity, Publish: true, Subscribe: true}
	if aud != "" {
		c.Audience = jwt.ClaimStrings{aud}
	}
	tok, err := signaling.MintToken([]byte(testSecret), c, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// kickMallory joins mallory to room on n with a token living life, has the admin's socket kick her, and returns
// her token once she has been told.
func kickMallory(t *testing.T, n *node, admin *websocket.Conn, room string, life time.Duration) string {
	t.Helper()
	tok := tokenFor(t, room, "mallory", "", life)
	victim, msg := rawJoin(t, n, tok)
	if msg["type"] != "joined" {
		t.Fatalf("mallory: %v", msg)
	}
	id, _ := msg["you"].(map[string]any)["id"].(string)
	if err := admin.WriteJSON(map[string]any{"type": "admin", "action": "kick", "participant": id}); err != nil {
		t.Fatal(err)
	}
	if bye := readUntil(t, victim, "bye"); bye["reason"] != "kicked" {
		t.Fatalf("mallory's bye: %v", bye)
	}
	return tok
}

// refusedKicked asserts that joining n with tok is refused: mallory is kicked.
func refusedKicked(t *testing.T, n *node, what, tok string) {
	t.Helper()
	_, msg := rawJoin(t, n, tok)
	if msg["type"] != "error" || msg["code"] != "kicked" || !strings.Contains(msg["message"].(string), "mallory") {
		t.Fatalf("%s, through %s: %v, want error kicked", what, n.baseURL(), msg)
	}
}

// TestKickBansUntilTokenExpiry: a kicked participant cannot rejoin the room, with its token or a new one for its
// identity, until its token has expired; others still join; after the ban it joins again.
func TestKickBansUntilTokenExpiry(t *testing.T) {
	n := startTestNode(t)
	admin, joined := rawJoin(t, n, adminToken(t, "revoke", "chair"))
	if joined["type"] != "joined" {
		t.Fatalf("admin: %v", joined)
	}
	const life = 3 * time.Second
	minted := time.Now()
	victimTok := kickMallory(t, n, admin, "revoke", life)
	refusedKicked(t, n, "the kicked token again", victimTok)
	refusedKicked(t, n, "a new token for the kicked identity", tokenFor(t, "revoke", "mallory", "", time.Hour))
	if _, msg := rawJoin(t, n, tokenFor(t, "revoke", "bob", "", time.Hour)); msg["type"] != "joined" {
		t.Fatalf("another identity: %v", msg)
	}
	if _, msg := rawJoin(t, n, tokenFor(t, "elsewhere", "mallory", "", time.Hour)); msg["type"] != "joined" {
		t.Fatalf("the kicked identity in another room: %v", msg)
	}

	// The ban ends when the kicked token can no longer be used: its exp plus the verifier's leeway.
	if time.Since(minted) > life {
		t.Fatalf("the refusals took %v, longer than the kicked token's life: the test proved nothing", time.Since(minted))
	}
	deadline := minted.Add(life + 15*time.Second)
	for i := 0; ; i++ {
		_, msg := rawJoin(t, n, tokenFor(t, "revoke", "mallory", "", time.Hour))
		if msg["type"] == "joined" {
			if since := time.Since(minted); since < life {
				t.Fatalf("joined again %v after minting, before the kicked token's exp", since)
			}
			break
		}
		if msg["code"] != "kicked" || time.Now().After(deadline) || i > 60 {
			t.Fatalf("after the ban, attempt %d: %v", i, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestTokenLifetimeAndAudienceAtJoin: the node refuses a token without exp, one that lives 30 days and one for
// another audience, and takes one for its own (-token-audience).
func TestTokenLifetimeAndAudienceAtJoin(t *testing.T) {
	n := startTestNode(t, func(c *config) { c.TokenAudience = "hk-prod" })
	unauthorized := func(what, tok, want string) {
		t.Helper()
		_, msg := rawJoin(t, n, tok)
		if msg["type"] != "error" || msg["code"] != "unauthorized" || !strings.Contains(msg["message"].(string), want) {
			t.Fatalf("%s: %v, want unauthorized about %q", what, msg, want)
		}
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, signaling.Claims{Room: "aud", Identity: "a",
		RegisteredClaims: jwt.RegisteredClaims{Audience: jwt.ClaimStrings{"hk-prod"}, IssuedAt: jwt.NewNumericDate(time.Now())}}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	unauthorized("no exp", noExp, "exp")
	unauthorized("30 days", tokenFor(t, "aud", "a", "hk-prod", 30*24*time.Hour), "lifetime")
	unauthorized("another audience", tokenFor(t, "aud", "a", "eu-prod", time.Hour), "audience")
	unauthorized("the default audience at a node with its own", tokenFor(t, "aud", "a", "", time.Hour), "audience")
	if _, msg := rawJoin(t, n, tokenFor(t, "aud", "a", "hk-prod", time.Hour)); msg["type"] != "joined" {
		t.Fatalf("the node's audience: %v", msg)
	}
}

// TestTokenCmdLifetime: sfu token refuses a -ttl over the maximum and names the audience it is given.
func TestTokenCmdLifetime(t *testing.T) {
	clearSFUEnv(t)
	if out, err := runTokenCmd(t, "-secret", "s", "-room", "r", "-identity", "i", "-ttl", "720h"); err == nil || !strings.Contains(err.Error(), "max-token-ttl") {
		t.Fatalf("-ttl 720h: %q, %v; want a refusal naming -max-token-ttl", out, err)
	}
	out, err := runTokenCmd(t, "-secret", "s", "-room", "r", "-identity", "i", "-ttl", "48h", "-max-token-ttl", "72h", "-token-audience", "hk-prod")
	if err != nil {
		t.Fatalf("-ttl 48h under -max-token-ttl 72h: %v", err)
	}
	keys := signaling.Keys{Default: []byte("s"), Audience: "hk-prod", MaxTTL: 72 * time.Hour}
	if _, err := keys.Verify(strings.TrimSpace(out)); err != nil {
		t.Fatalf("the printed token does not verify at a node of its audience: %v", err)
	}
	if _, err := signaling.VerifyToken([]byte("s"), strings.TrimSpace(out)); err == nil {
		t.Fatal("a token for hk-prod verified at a node of the default audience")
	}
}
