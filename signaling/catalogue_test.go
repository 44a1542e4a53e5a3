package signaling

import (
	"maps"
	"regexp"
	"slices"
	"testing"
)

// catalogueKey finds the keys of a language catalogue of the browser client (web/i18n/*.js): 'group.name': or
// name: at the start of a line.
var catalogueKey = regexp.MustCompile(`(?m)^\s+(?:'([^']+)'|([A-Za-z0-9_]+)):`)

// The three catalogues of the browser client hold the same keys: a key missing from one language would show
// its English fallback there.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	keys := map[string]map[string]bool{}
	for _, lang := range []string{"en", "zh-HK", "zh-CN"} {
		b, err := webFiles.ReadFile("web/i18n/" + lang + ".js")
		if err != nil {
			t.Fatal(err)
		}
		keys[lang] = map[string]bool{}
		for _, m := range catalogueKey.FindAllSubmatch(b, -1) {
			keys[lang][string(m[1])+string(m[2])] = true
		}
		if len(keys[lang]) < 100 {
			t.Fatalf("%s: only %d keys found; has the catalogue's format changed?", lang, len(keys[lang]))
		}
	}
	for _, lang := range []string{"zh-HK", "zh-CN"} {
		for k := range keys["en"] {
			if !keys[lang][k] {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(keys[lang])) {
			if !keys["en"][k] {
				t.Errorf("%s has %q, which English lacks", lang, k)
			}
		}
	}
}
