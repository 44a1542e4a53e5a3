package signaling

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/edge-sfu/sfu/signaling/protocol"
)

// Token refresh: while a participant is in a room, its session sends it fresh join tokens (the token message),
// so that a client that reconnects after the token it joined with has expired (a meeting longer than a token)
// joins again with the latest one. A refreshed token carries the claims the participant joined with (room,
// identity, name, regions, audience) and its grants as they are now (an administrator's set_role sends one at
// once); it lives as long as the one it joined with, at most -max-token-ttl; it is signed with the node's
// current key (Config.TokenKeyID). A kicked participant gets none after the kick, and its ban lasts until the
// last one it got has ended (sfu.Participant.ExtendValidity).

const (
	// refreshEvery bounds the time between two refreshes: a token is refreshed at half its life, and at least
	// this often.
	refreshEvery = 10 * time.Minute
	// refreshFloor is the least time between two refreshes, for tokens of a second or two.
	refreshFloor = 500 * time.Millisecond
	// refreshRetry is when a refresh that could not be signed is tried again.
	refreshRetry = 10 * time.Second
)

// startRefresh starts the session's token refresh for the participant that joined with the verified claims c,
// verified at verifiedAt. The refresh loop is the session's: it ends when the session does (closing), and run
// waits for it.
func (s *session) startRefresh(c Claims, verifiedAt time.Time) {
	if c.Relay || c.ExpiresAt == nil { // a relay between nodes gets its tokens from its own node
		return
	}
	from := verifiedAt
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	life := min(c.ExpiresAt.Sub(from), s.srv.keys.maxTTL())
	if life < time.Second {
		return
	}
	s.refreshDone = make(chan struct{})
	go func() {
		defer close(s.refreshDone)
		s.refreshLoop(c, life)
	}()
}

// refreshLoop sends a fresh token at once, then at half of each one's life (at most refreshEvery apart), and at
// once when poked (refreshNow: a role change), until the session ends or the participant may have no more.
func (s *session) refreshLoop(c Claims, life time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-timer.C:
		case <-s.refreshNow:
		}
		next, ok := s.refresh(c, life)
		if !ok {
			return
		}
		timer.Reset(next)
	}
}

// refresh sends one fresh token and returns when the next is due; false: the participant was kicked or has left,
// and gets no more.
func (s *session) refresh(c Claims, life time.Duration) (time.Duration, bool) {
	info := s.p.Info() // its grants now: set_role changes them
	now := time.Now()
	iat, exp := jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(life))
	// Recorded before the token goes: a kick from now on bans the identity until this token's end, and a kick
	// that came first refuses it.
	if !s.p.ExtendValidity(exp.Add(Leeway)) {
		return 0, false
	}
	fresh := Claims{Room: c.Room, Identity: c.Identity, Name: c.Name, Regions: c.Regions,
		Publish: info.CanPublish, Subscribe: info.CanSubscribe, PublishData: info.CanPublishData, Admin: info.Admin,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, IssuedAt: iat, ExpiresAt: exp}}
	tok, err := mint(s.srv.signKid, s.srv.signKey, fresh)
	if err != nil {
		s.log.Warn("token refresh", zap.String("room", c.Room), zap.String("identity", c.Identity), zap.Error(err))
		return refreshRetry, true
	}
	s.send(protocol.Token{Type: protocol.TypeToken, Token: tok, ExpiresAt: exp.Unix()})
	return min(max(life/2, refreshFloor), refreshEvery), true
}

// pokeRefresh asks the refresh loop for a fresh token now, without waiting (it is called under the SFU's locks).
func (s *session) pokeRefresh() {
	select {
	case s.refreshNow <- struct{}{}:
	default:
	}
}
