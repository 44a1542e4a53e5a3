package audit

import (
	"strconv"
	"unicode/utf8"
)

// maxFieldBytes bounds each string of a record, measured as JSON (escapes included).
const maxFieldBytes = 128

// maxListItems bounds the strings kept of a list in detail; the list's length goes into detail.truncated.
const maxListItems = 16

// bounded returns r with every string cut to maxFieldBytes of JSON and lists to maxListItems; the original
// length of each cut field (bytes for a string, items for a list) is in detail.truncated. r's Detail is not
// modified.
func bounded(r Record) Record {
	cut := map[string]int{}
	field := func(name string, s *string) {
		if b, ok := boundString(*s); ok {
			cut[name] = len(*s)
			*s = b
		}
	}
	field("room", &r.Room)
	field("identity", &r.Identity)
	field("participant", &r.Participant)
	field("remote", &r.Remote)
	if len(r.Detail) > 0 {
		r.Detail = boundMap(r.Detail, "detail.", cut)
	}
	if len(cut) > 0 {
		if r.Detail == nil {
			r.Detail = map[string]any{}
		}
		r.Detail["truncated"] = cut
	}
	return r
}

func boundMap(m map[string]any, prefix string, cut map[string]int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		name := k
		if b, ok := boundString(k); ok { // keys are the server's, but cost nothing to bound
			name = b
		}
		out[name] = boundValue(v, prefix+name, cut)
	}
	return out
}

func boundValue(v any, name string, cut map[string]int) any {
	switch v := v.(type) {
	case string:
		if b, ok := boundString(v); ok {
			cut[name] = len(v)
			return b
		}
		return v
	case []string:
		items := make([]any, len(v))
		for i, s := range v {
			items[i] = s
		}
		return boundList(items, name, cut)
	case []any:
		return boundList(v, name, cut)
	case map[string]any:
		return boundMap(v, name+".", cut)
	default:
		return v
	}
}

func boundList(items []any, name string, cut map[string]int) []any {
	if len(items) > maxListItems {
		cut[name] = len(items)
		items = items[:maxListItems]
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = boundValue(it, name+"."+strconv.Itoa(i), cut)
	}
	return out
}

// boundString returns the longest prefix of s (whole runes) whose JSON encoding, quotes excluded, is at most
// maxFieldBytes, and whether it is shorter than s.
func boundString(s string) (string, bool) {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonLen(r, size)
		if n > maxFieldBytes {
			return s[:i], true
		}
		i += size
	}
	return s, false
}

// jsonLen is how many bytes encoding/json writes for the rune r, size bytes of UTF-8 (an upper bound).
func jsonLen(r rune, size int) int {
	switch {
	case r == utf8.RuneError && size == 1: // invalid UTF-8: \ufffd
		return 6
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	default:
		return size
	}
}
