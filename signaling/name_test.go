package signaling

import (
	"strings"
	"testing"
	"time"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"Alice":                       "Alice",
		"A\u202Egnp.exe\u0007":        "Agnp.exe",
		"\u2066evil\u2069 \u200Fname": "evil name",
		"  lots \t of\n\u00A0space  ": "lots of space",
		"\u061Cx\u200Ey\u202Az\u2067": "xyz",
		"zero\u200Bwidth\uFEFF":       "zerowidth",
		"\u0000\u001B[31m":            "[31m",
		"李小龍":                         "李小龍",
		"\u202E\u0007 \u2066":         "",
		strings.Repeat("ab ", 40):     strings.TrimSpace(strings.Repeat("ab ", 22)[:64]),
	} {
		if got := CleanName(in); got != want {
			t.Errorf("CleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestVerifyCleansName: the name a verified token carries is cleaned; one with nothing left is the identity's,
// cleaned too, and "Guest" when that leaves nothing either.
func TestVerifyCleansName(t *testing.T) {
	secret := []byte("name-test-secret")
	for _, c := range []struct{ identity, name, want string }{
		{"u1", "A\u202Egnp.exe\u0007", "Agnp.exe"},
		{"u2", "\u202E\u0007", "u2"},
		{"u\u202E3", "", "u3"},
		{"\u2066", "\u2069", "Guest"},
	} {
		tok, err := MintToken(secret, Claims{Room: "r", Identity: c.identity, Name: c.name}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got, err := VerifyToken(secret, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != c.want || got.Identity != c.identity {
			t.Errorf("identity %q name %q: verified as identity %q name %q, want name %q", c.identity, c.name, got.Identity, got.Name, c.want)
		}
	}
}
