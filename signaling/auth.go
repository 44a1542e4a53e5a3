package signaling

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a join token grants. The token is a JWT signed with HS256 (see PROTOCOL.md).
type Claims struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	Name      string `json:"name,omitempty"` // display name; Verify cleans it (see displayName)
	Publish   bool   `json:"publish"`
	Subscribe bool   `json:"subscribe"`
	// PublishData allows data channels on the publish connection.
	PublishData bool `json:"publish_data,omitempty"`
	// Admin may mute, kick, lock and end the room, and change others' roles.
	Admin bool `json:"admin,omitempty"`
	// Regions is the room's residency policy: the regions whose nodes may host it (default: the region of the
	// node the client reaches).
	Regions []string `json:"regions,omitempty"`
	// Relay marks a node's own connection that relays a room between two nodes: it joins where it is sent.
	Relay bool `json:"relay,omitempty"`
	// API grants the server API (/api/v1/, API.md) on the room in Room, or on every room of the node when Room is
	// empty. It grants nothing else: an API token joins no room (Verify refuses it) and carries no participant
	// rights.
	API bool `json:"api,omitempty"`
	jwt.RegisteredClaims
}

// Limits on token fields.
const (
	maxRoomLen     = 128
	maxIdentityLen = 128
	maxNameLen     = 64
)

// Token errors, mapped to the protocol's unauthorized and token_expired codes.
var (
	ErrUnauthorized = errors.New("invalid token")
	ErrTokenExpired = errors.New("token expired")
	// ErrNoAPIGrant is a valid token without the api grant, presented to the server API: forbidden, not
	// unauthorized.
	ErrNoAPIGrant = errors.New("the token does not carry the api grant")
)

// Keys are the secrets tokens may be signed with: Default for tokens without a "kid" header, the others by
// kid, and what a token must say to be taken here. Rotating keys: add the new key with its kid, mint new tokens
// with it, and remove the old key once the tokens signed with it have expired.
type Keys struct {
	Default []byte
	ByID    map[string][]byte
	// Audience is the "aud" a token must name (one of its audiences); "": DefaultAudience.
	Audience string
	// MaxTTL is the longest lifetime a token may have: exp - iat, or exp - now without iat; 0: DefaultMaxTokenTTL.
	MaxTTL time.Duration
}

// Defaults of Keys, and of the -token-audience and -max-token-ttl flags.
const (
	DefaultAudience    = "edge-sfu"
	DefaultMaxTokenTTL = 24 * time.Hour
)

// Leeway is the clock skew allowed between the minter and this node: a token is taken until Leeway after its exp.
const Leeway = 5 * time.Second

// ParseKeys reads "kid1:secret1,kid2:secret2" (the -keys flag).
func ParseKeys(s string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		kid, secret, ok := strings.Cut(kv, ":")
		if !ok || kid == "" || secret == "" {
			return nil, fmt.Errorf("key %q: want kid:secret", kv)
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("key id %q given twice", kid)
		}
		out[kid] = []byte(secret)
	}
	return out, nil
}

// MintToken signs claims with secret (no key id), valid for ttl from now.
func MintToken(secret []byte, c Claims, ttl time.Duration) (string, error) {
	return MintTokenWithKey("", secret, c, ttl)
}

// MintTokenWithKey signs claims with the key named kid ("" for the default key). The token's audience is the
// claims' Audience, DefaultAudience when it has none.
func MintTokenWithKey(kid string, secret []byte, c Claims, ttl time.Duration) (string, error) {
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	return mint(kid, secret, c)
}

// mint signs claims, their iat and exp set, with the key named kid ("" for the default key).
func mint(kid string, secret []byte, c Claims) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	if len(c.Audience) == 0 {
		c.Audience = jwt.ClaimStrings{DefaultAudience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

func (k Keys) audience() string {
	if k.Audience == "" {
		return DefaultAudience
	}
	return k.Audience
}

func (k Keys) maxTTL() time.Duration {
	if k.MaxTTL <= 0 {
		return DefaultMaxTokenTTL
	}
	return k.MaxTTL
}

// VerifyToken checks a token signed with secret and no key id.
func VerifyToken(secret []byte, token string) (*Claims, error) {
	return Keys{Default: secret}.Verify(token)
}

// Verify checks a participant's token: its signature (HS256 only, with the key its kid names), expiry, audience,
// lifetime and fields. The claims' Name is the display name to show (see displayName). A token with the api grant
// is refused: it is the server API's, not a participant's.
func (k Keys) Verify(token string) (*Claims, error) {
	c, err := k.verify(token)
	if err != nil {
		return nil, err
	}
	if c.API {
		return nil, fmt.Errorf("%w: an API token (api grant) cannot join a room", ErrUnauthorized)
	}
	return c, nil
}

// VerifyAPI checks a token of the server API as Verify checks a participant's; a valid token without the api
// grant is ErrNoAPIGrant.
func (k Keys) VerifyAPI(token string) (*Claims, error) {
	c, err := k.verify(token)
	if err != nil {
		return nil, err
	}
	if !c.API {
		return nil, ErrNoAPIGrant
	}
	return c, nil
}

// verify checks any token, participant's or API's.
func (k Keys) verify(token string) (*Claims, error) {
	aud, maxTTL := k.audience(), k.maxTTL()
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			if len(k.Default) == 0 {
				return nil, errors.New("tokens need a key id here")
			}
			return k.Default, nil
		}
		key, ok := k.ByID[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %.32q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(aud),
		jwt.WithLeeway(Leeway))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, fmt.Errorf("%w: the token's audience (aud) must be %.64q here", ErrUnauthorized, aud)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err := c.checkLifetime(maxTTL, time.Now()); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.Name = displayName(c.Name, c.Identity) // what the others see: no control or bidi characters
	return &c, nil
}

// checkLifetime refuses a token that lives longer than max: from its iat, or from now when it has none. A token
// minted for exactly max passes (the leeway covers the rounding of its times to seconds).
func (c *Claims) checkLifetime(max time.Duration, now time.Time) error {
	from := now
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if life := c.ExpiresAt.Sub(from); life > max+Leeway {
		return fmt.Errorf("%w: token lifetime %v is over this node's maximum of %v (max-token-ttl)", ErrUnauthorized, life.Round(time.Second), max)
	}
	return nil
}

// validUntil is the last moment the token is taken: its exp plus the leeway.
func (c *Claims) validUntil() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Add(Leeway)
}

// validate checks the fields: a participant's token names its room; an API token may name none (every room).
func (c *Claims) validate() error {
	switch {
	case c.API && (c.Publish || c.Subscribe || c.PublishData || c.Admin || c.Relay):
		return fmt.Errorf("%w: an API token carries no participant rights (publish, subscribe, admin, ...)", ErrUnauthorized)
	case (c.Room == "" && !c.API) || utf8.RuneCountInString(c.Room) > maxRoomLen || !utf8.ValidString(c.Room):
		return fmt.Errorf("%w: room must be 1 to %d characters", ErrUnauthorized, maxRoomLen)
	case c.Identity == "" || utf8.RuneCountInString(c.Identity) > maxIdentityLen || !utf8.ValidString(c.Identity):
		return fmt.Errorf("%w: identity must be 1 to %d characters", ErrUnauthorized, maxIdentityLen)
	case utf8.RuneCountInString(c.Name) > maxNameLen || !utf8.ValidString(c.Name):
		return fmt.Errorf("%w: name must be at most %d characters", ErrUnauthorized, maxNameLen)
	}
	return nil
}
