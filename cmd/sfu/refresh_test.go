package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/signaling"
	"github.com/edge-sfu/sfu/signaling/client"
)

// Token refresh (issue 16): while a participant is in a room the node sends it fresh tokens, so that a meeting
// outlives the token it started with.

// newKey is the key the test nodes rotate to: refreshed tokens are signed with it (-token-kid).
const newKid, newKey = "2026-12", "the key after rotation"

// rotatedNode is a test node whose current key is newKid, and whose tokens live at most maxTTL.
func rotatedNode(t *testing.T, maxTTL time.Duration) *node {
	return startTestNode(t, func(c *config) {
		c.Keys = map[string][]byte{newKid: []byte(newKey)}
		c.TokenKID = newKid
		c.MaxTokenTTL = maxTTL
	})
}

// parseRefreshed checks a refreshed token as the node would (signed with newKid) and returns its claims.
func parseRefreshed(t *testing.T, tok string, maxTTL time.Duration) *signaling.Claims {
	t.Helper()
	c, err := signaling.Keys{ByID: map[string][]byte{newKid: []byte(newKey)}, MaxTTL: maxTTL}.Verify(tok)
	if err != nil {
		t.Fatalf("the refreshed token is not signed with the node's current key %q: %v", newKid, err)
	}
	return c
}

// TestTokenRefreshSurvivesReconnect: a participant whose token lives 3 s gets fresh tokens while it is in the
// room; once the original has expired and the socket drops, it rejoins with the latest token it got, while the
// original is refused as expired.
func TestTokenRefreshSurvivesReconnect(t *testing.T) {
	const life = 3 * time.Second
	n := rotatedNode(t, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	original := tokenFor(t, "refresh", "alice", "", life)
	origClaims, err := signaling.VerifyToken([]byte(testSecret), original)
	if err != nil {
		t.Fatal(err)
	}
	alice := joinClientToken(t, ctx, n, original)
	eventually(t, 5*time.Second, "a refreshed token", func() bool { return alice.Token() != original })
	c := parseRefreshed(t, alice.Token(), time.Hour)
	if c.Room != "refresh" || c.Identity != "alice" || !c.Publish || !c.Subscribe || c.Admin {
		t.Errorf("refreshed claims %+v, want those of the original", c)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != life {
		t.Errorf("the refreshed token lives %v, want the original's %v", got, life)
	}

	// Past the original's end (its exp plus the verifier's leeway), the socket drops.
	wait := time.Until(origClaims.ExpiresAt.Add(signaling.Leeway + 500*time.Millisecond))
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	latest := alice.Token()
	if latest == original {
		t.Fatal("no refreshed token")
	}
	if c := parseRefreshed(t, latest, time.Hour); !c.ExpiresAt.After(origClaims.ExpiresAt.Time.Add(signaling.Leeway)) {
		t.Fatalf("the latest token ends at %v: not refreshed while the session lived (the original ended at %v)", c.ExpiresAt, origClaims.ExpiresAt)
	}
	alice.Close()

	if _, err := client.Dial(ctx, client.WSURL(n.baseURL()), original, client.Options{}); err == nil || !strings.Contains(err.Error(), "token_expired") {
		t.Fatalf("rejoin with the original token: %v, want token_expired", err)
	}
	again := joinClientToken(t, ctx, n, latest)
	if again.Joined.You == nil || again.Joined.You.Identity != "alice" {
		t.Fatalf("rejoin with the refreshed token: %+v", again.Joined)
	}
}

// TestRefreshCappedByMaxTTL: a refreshed token lives as long as the original, but no longer than the node's
// -max-token-ttl (a token a little longer is taken within the verifier's leeway).
func TestRefreshCappedByMaxTTL(t *testing.T) {
	n := rotatedNode(t, 2*time.Second)
	conn, joined := rawJoin(t, n, tokenFor(t, "cap", "carol", "", 6*time.Second))
	if joined["type"] != "joined" {
		t.Fatalf("carol: %v", joined)
	}
	c := parseRefreshed(t, readUntil(t, conn, "token")["token"].(string), 2*time.Second)
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != 2*time.Second {
		t.Errorf("the refreshed token lives %v, want -max-token-ttl's 2s", got)
	}
}

// TestRefreshCarriesRoleChange: an administrator's set_role sends the participant a fresh token at once, whose
// grants say what it may do now.
func TestRefreshCarriesRoleChange(t *testing.T) {
	n := rotatedNode(t, time.Hour)
	admin, joined := rawJoin(t, n, adminToken(t, "roles", "chair"))
	if joined["type"] != "joined" {
		t.Fatalf("admin: %v", joined)
	}
	bob, joined := rawJoin(t, n, tokenFor(t, "roles", "bob", "", 10*time.Minute))
	if joined["type"] != "joined" {
		t.Fatalf("bob: %v", joined)
	}
	first := readUntil(t, bob, "token")
	if c := parseRefreshed(t, first["token"].(string), time.Hour); !c.Publish {
		t.Fatalf("bob's first refreshed token: %+v, want publish", c)
	}
	id, _ := joined["you"].(map[string]any)["id"].(string)
	if err := admin.WriteJSON(map[string]any{"type": "admin", "action": "set_role", "participant": id, "publish": false}); err != nil {
		t.Fatal(err)
	}
	// The role change sends a fresh token at once, without the publish grant.
	next := readUntil(t, bob, "token")
	if c := parseRefreshed(t, next["token"].(string), time.Hour); c.Publish || !c.Subscribe {
		t.Fatalf("bob's token after set_role publish=false: %+v, want subscribe only", c)
	}
}

// TestRefreshedTokenOfKickedStillBanned: a kick bans the identity until the latest token the node gave it has
// ended, not only the one it joined with.
func TestRefreshedTokenOfKickedStillBanned(t *testing.T) {
	const life = 4 * time.Second
	n := rotatedNode(t, time.Hour)
	admin, joined := rawJoin(t, n, adminToken(t, "kickrefresh", "chair"))
	if joined["type"] != "joined" {
		t.Fatalf("admin: %v", joined)
	}
	original := tokenFor(t, "kickrefresh", "mallory", "", life)
	origClaims, err := signaling.VerifyToken([]byte(testSecret), original)
	if err != nil {
		t.Fatal(err)
	}
	victim, msg := rawJoin(t, n, original)
	if msg["type"] != "joined" {
		t.Fatalf("mallory: %v", msg)
	}
	// Mallory keeps her session until she holds a token that outlives the original by a whole lifetime.
	var refreshed string
	var refreshedClaims *signaling.Claims
	for refreshedClaims == nil || refreshedClaims.ExpiresAt.Before(origClaims.ExpiresAt.Add(life)) {
		m := readUntilWithin(t, victim, 10*time.Second, "token")
		refreshed = m["token"].(string)
		refreshedClaims = parseRefreshed(t, refreshed, time.Hour)
	}
	id, _ := msg["you"].(map[string]any)["id"].(string)
	if err := admin.WriteJSON(map[string]any{"type": "admin", "action": "kick", "participant": id}); err != nil {
		t.Fatal(err)
	}
	if bye := readUntil(t, victim, "bye"); bye["reason"] != "kicked" {
		t.Fatalf("mallory's bye: %v", bye)
	}
	refusedKicked(t, n, "the refreshed token right after the kick", refreshed)

	// Once the original token has ended, the refreshed one is still refused: the ban lasts as long as it.
	time.Sleep(time.Until(origClaims.ExpiresAt.Add(signaling.Leeway + 500*time.Millisecond)))
	if time.Now().After(refreshedClaims.ExpiresAt.Add(signaling.Leeway)) {
		t.Fatalf("the test ran past the refreshed token's end: it proved nothing")
	}
	refusedKicked(t, n, "the refreshed token after the original's end", refreshed)
}

// readUntilWithin is readUntil with its own bound.
func readUntilWithin(t *testing.T, conn *websocket.Conn, d time.Duration, types ...string) map[string]any {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	defer conn.SetReadDeadline(time.Time{})
	for {
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %v: %v", types, err)
		}
		for _, ty := range types {
			if m["type"] == ty {
				return m
			}
		}
	}
}

// TestTokenCmdHelpDocumentsTTL: sfu token -h prints its usage to standard output, -ttl with its default and its
// maximum.
func TestTokenCmdHelpDocumentsTTL(t *testing.T) {
	clearSFUEnv(t)
	out, err := runTokenCmd(t, "-h")
	if err != nil {
		t.Fatalf("sfu token -h: %v", err)
	}
	i := strings.Index(out, "-ttl duration")
	if i < 0 {
		t.Fatalf("sfu token -h does not list -ttl:\n%s", out)
	}
	ttl := out[i:]
	for _, want := range []string{"default 1h", "-max-token-ttl", signaling.DefaultMaxTokenTTL.String(), "fresh tokens"} {
		if !strings.Contains(ttl, want) {
			t.Errorf("-ttl's help does not say %q:\n%s", want, ttl)
		}
	}
}

// TestTokenKIDMustBeAKey: -token-kid names a key of -keys; another is refused at start.
func TestTokenKIDMustBeAKey(t *testing.T) {
	clearSFUEnv(t)
	if _, err := parseConfig([]string{"-secret", "s", "-keys", "old:x,new:y", "-token-kid", "newer"}); err == nil || !strings.Contains(err.Error(), "-token-kid") {
		t.Errorf("an unknown -token-kid: %v, want refused", err)
	}
	c, err := parseConfig([]string{"-secret", "s", "-keys", "old:x,new:y", "-token-kid", "new"})
	if err != nil || c.TokenKID != "new" {
		t.Errorf("-token-kid new: %q %v", c.TokenKID, err)
	}
}
