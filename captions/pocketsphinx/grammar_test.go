package pocketsphinx

import (
	"os"
	"testing"
)

// testGrammar is a small JSGF grammar of meeting phrases (testdata/meeting.jsgf) that narrows Engine in
// tests, as the issue allows: espeak-ng's voice is far from the speech the acoustic model learnt.
func testGrammar(t testing.TB) string {
	b, err := os.ReadFile("testdata/meeting.jsgf")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
