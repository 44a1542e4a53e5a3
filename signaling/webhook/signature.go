package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a webhook request.
const (
	// SignatureHeader is "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the shared secret>".
	SignatureHeader = "X-SFU-Signature"
	// DeliveryHeader is the event's id, the same on every try.
	DeliveryHeader = "X-SFU-Delivery"
	// EventHeader is the event's name, as in the body.
	EventHeader = "X-SFU-Event"
)

// DefaultTolerance is how old a signature's timestamp Verify's callers should accept: enough for clock skew,
// short enough that a captured request cannot be replayed much later.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook: bad signature")
	ErrStale        = errors.New("webhook: signature timestamp outside the tolerance")
)

// Sign returns the signature header's value for body sent at t: t=<unix>,v1=<hex HMAC-SHA256("<unix>.<body>")>.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a request's signature header (X-SFU-Signature) against its body with the shared secret: one of
// its v1 values must be the HMAC of "<t>.<body>", and t within tolerance of now (either way). It is what a
// receiver calls before trusting the body.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix>,v1=<hex>", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(unix, 0)); age > tolerance || -age > tolerance {
		return fmt.Errorf("%w: signed %v from now", ErrStale, age.Round(time.Second))
	}
	return nil
}
