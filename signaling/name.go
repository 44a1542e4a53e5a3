package signaling

import (
	"strings"
	"unicode"
)

// defaultName is the display name of a participant whose token's name and identity clean to nothing.
const defaultName = "Guest"

// CleanName makes a display name safe to show: control characters (Cc) and format characters (Cf, which hold
// the bidi overrides, isolates and marks U+202A–U+202E, U+2066–U+2069, U+200E, U+200F and U+061C, and the
// zero-width characters) are removed, runs of whitespace become one space, the ends are trimmed and the result is
// cut to maxNameLen characters. It may return "".
func CleanName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	n, space := 0, false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = n > 0
			continue
		case r == unicode.ReplacementChar || unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r):
			continue
		}
		if space {
			if n+1 >= maxNameLen { // no room for the space and a character after it
				break
			}
			b.WriteByte(' ')
			n, space = n+1, false
		}
		if n >= maxNameLen {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// displayName is the name a participant is shown by: the token's name, else its identity, cleaned; defaultName
// when both clean to nothing.
func displayName(name, identity string) string {
	if n := CleanName(name); n != "" {
		return n
	}
	if n := CleanName(identity); n != "" {
		return n
	}
	return defaultName
}
