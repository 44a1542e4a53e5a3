package signaling

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestPagesNeedNoInlineCode: the pages run under a Content-Security-Policy without 'unsafe-inline': every script
// is a file of its own, and no element carries a style attribute or an event handler attribute.
func TestPagesNeedNoInlineCode(t *testing.T) {
	inlineScript := regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	attr := regexp.MustCompile(`(?is)<[a-z][^>]*\s(style|on[a-z]+)\s*=`)
	err := fs.WalkDir(webFiles, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := fs.ReadFile(webFiles, path)
		if err != nil {
			return err
		}
		page := string(b)
		if m := inlineScript.FindString(page); m != "" {
			t.Errorf("%s has an inline script: %q", path, m)
		}
		for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(page, -1) {
			if !strings.Contains(m, "src=") {
				t.Errorf("%s: a script without src: %q", path, m)
			}
		}
		if m := attr.FindStringSubmatch(page); m != nil {
			t.Errorf("%s has a %s attribute: %q", path, m[1], m[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
