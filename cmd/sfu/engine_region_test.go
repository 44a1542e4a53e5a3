package main

import "testing"

// TestEngineRegion: where a room's speech and caption text go, for its residency: nowhere off the node with the
// built-in engines or servers on loopback; the declared region of a remote server; and a remote server nobody
// declared is in no region, so no room with a policy sends it anything.
func TestEngineRegion(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  config
		want string
	}{
		{"pocketsphinx and local translators", config{Captions: "pocketsphinx", Translators: []string{"opencc", "apertium"}}, ""},
		{"whisper on loopback", config{Captions: "whisper", CaptionsURL: "http://127.0.0.1:8080"}, ""},
		{"openai remote, declared", config{Captions: "openai", CaptionsURL: "https://api.example.com", CaptionsRegion: "us"}, "us"},
		{"openai remote, undeclared", config{Captions: "openai", CaptionsURL: "https://api.example.com"}, "undeclared (-captions-region)"},
		{"libretranslate remote, declared", config{Captions: "pocketsphinx", Translators: []string{"libretranslate"}, LibreURL: "http://mt.sg.internal:5000", CaptionsRegion: "sg"}, "sg"},
		{"captions off", config{Captions: "off", CaptionsURL: "https://api.example.com"}, ""},
	} {
		if got := engineRegion(c.cfg); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
