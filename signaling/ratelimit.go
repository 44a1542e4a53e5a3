package signaling

import "time"

// Message rate per socket: a client may send MaxMessagesPerSecond on average, in bursts of up to
// MessageBurst; messages beyond are dropped with a rate_limited error (at most one such error a second). Every
// frame counts, binary and oversized ones too (which are refused besides).
const (
	MaxMessagesPerSecond = 50
	MessageBurst         = 100
)

// Chat rate per participant: chatBurst messages, then one per chatInterval; more are refused with
// rate_limited (a person types slower; a script flooding the room is stopped).
const (
	chatBurst    = 5
	chatInterval = time.Second
)

// tokenBucket limits one socket's messages.
type tokenBucket struct {
	tokens   float64
	last     time.Time
	lastTold time.Time
}

// allow takes a token if there is one.
func (b *tokenBucket) allow(now time.Time) bool {
	return b.allowAt(now, MaxMessagesPerSecond, MessageBurst)
}

// allowAt takes a token if there is one, the bucket filling at perSecond up to burst.
func (b *tokenBucket) allowAt(now time.Time, perSecond, burst float64) bool {
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*perSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// shouldTell reports whether to send a rate_limited error now: once a second at most.
func (b *tokenBucket) shouldTell(now time.Time) bool {
	if now.Sub(b.lastTold) < time.Second {
		return false
	}
	b.lastTold = now
	return true
}
