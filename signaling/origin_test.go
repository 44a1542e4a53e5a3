package signaling

import "testing"

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://meet.example.org":      "https://meet.example.org",
		"HTTPS://Meet.Example.ORG/":     "https://meet.example.org",
		"https://meet.example.org:443":  "https://meet.example.org",
		"http://meet.example.org:80":    "http://meet.example.org",
		"https://meet.example.org:8443": "https://meet.example.org:8443",
		"http://127.0.0.1:7880":         "http://127.0.0.1:7880",
		"https://[2001:db8::1]:443":     "https://[2001:db8::1]",
		" https://meet.example.org ":    "https://meet.example.org",
		"http://[2001:db8::1]:7880":     "http://[2001:db8::1]:7880",
		"https://meet.example.org:443/": "https://meet.example.org",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
	} {
		got, err := NormalizeOrigin(in)
		if err != nil || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "meet.example.org", "ftp://meet.example.org", "https://", "https://meet.example.org/room",
		"https://user@meet.example.org", "https://meet.example.org?x=1", "null", "*"} {
		if got, err := NormalizeOrigin(bad); err == nil {
			t.Errorf("NormalizeOrigin(%q) = %q, want an error", bad, got)
		}
	}
}
