package signaling

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a join token grants. The token is a JWT signed with HS256 (see PROTOCOL.md).
type Claims struct {
	Room      string `json:"room"`
	Identity  string `json:"identity"`
	Name      string `json:"name,omitempty"`
	Publish   bool   `json:"publish"`
	Subscribe bool   `json:"subscribe"`
	Admin     bool   `json:"admin,omitempty"`
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
)

// MintToken signs claims with secret, valid for ttl from now.
func MintToken(secret []byte, c Claims, ttl time.Duration) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// VerifyToken checks the token's signature (HS256 only), expiry and fields.
func VerifyToken(secret []byte, token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = c.Identity
	}
	return &c, nil
}

func (c *Claims) validate() error {
	switch {
	case c.Room == "" || utf8.RuneCountInString(c.Room) > maxRoomLen || !utf8.ValidString(c.Room):
		return fmt.Errorf("%w: room must be 1 to %d characters", ErrUnauthorized, maxRoomLen)
	case c.Identity == "" || utf8.RuneCountInString(c.Identity) > maxIdentityLen || !utf8.ValidString(c.Identity):
		return fmt.Errorf("%w: identity must be 1 to %d characters", ErrUnauthorized, maxIdentityLen)
	case utf8.RuneCountInString(c.Name) > maxNameLen || !utf8.ValidString(c.Name):
		return fmt.Errorf("%w: name must be at most %d characters", ErrUnauthorized, maxNameLen)
	}
	return nil
}
