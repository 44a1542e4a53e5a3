package captions

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// LibreTranslateConfig configures a LibreTranslate server as a Translator.
type LibreTranslateConfig struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:5000".
	URL string
	// APIKey is sent as "api_key" when set (servers started with --api-keys want one).
	APIKey string
	// Timeout bounds each request (10 s when zero), within the context given to Translate.
	Timeout time.Duration
	// Languages lists the codes the server has models for (its /languages); empty means any. Entries are
	// mapped like the languages asked for, so "zh-Hant" and "zt" are the same.
	Languages []string
}

// LibreTranslate translates with a LibreTranslate server's POST /translate.
type LibreTranslate struct {
	endpoint string
	apiKey   string
	timeout  time.Duration
	client   *http.Client
	langs    map[string]bool // nil: any
}

// NewLibreTranslate returns a Translator that posts to {cfg.URL}/translate.
func NewLibreTranslate(cfg LibreTranslateConfig) *LibreTranslate {
	l := &LibreTranslate{
		endpoint: strings.TrimRight(cfg.URL, "/") + "/translate",
		apiKey:   cfg.APIKey,
		timeout:  timeoutOr(cfg.Timeout),
		client:   newHTTPClient(),
	}
	if len(cfg.Languages) > 0 {
		l.langs = make(map[string]bool, len(cfg.Languages))
		for _, c := range cfg.Languages {
			l.langs[libreLang(c)] = true
		}
	}
	return l
}

// libreLang maps a caption language to LibreTranslate's code: "zh-Hans" and "zh" are "zh" (Simplified
// Chinese), "zh-Hant", "zh-HK" and "zh-TW" are "zt" (its Traditional Chinese); others lose their region.
func libreLang(lang string) string {
	l := strings.ToLower(strings.TrimSpace(strings.ReplaceAll(lang, "_", "-")))
	switch l {
	case "zh-hant", "zh-hk", "zh-tw", "zh-mo", "zt":
		return "zt"
	}
	if strings.HasPrefix(l, "zh-hant-") {
		return "zt"
	}
	if i := strings.IndexByte(l, '-'); i >= 0 {
		l = l[:i]
	}
	return l
}

// Supports reports whether from and to differ and, when the config lists the server's languages, both are
// among them.
func (l *LibreTranslate) Supports(from, to string) bool {
	f, t := libreLang(from), libreLang(to)
	if f == "" || t == "" || f == t {
		return false
	}
	return l.langs == nil || (l.langs[f] && l.langs[t])
}

// Translate translates text from one language to another.
func (l *LibreTranslate) Translate(ctx context.Context, text, from, to string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", nil
	}
	body, err := json.Marshal(struct {
		Q      string `json:"q"`
		Source string `json:"source"`
		Target string `json:"target"`
		Format string `json:"format"`
		APIKey string `json:"api_key,omitempty"`
	}{text, libreLang(from), libreLang(to), "text", l.apiKey})
	if err != nil {
		return "", fmt.Errorf("libretranslate: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, l.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("libretranslate: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	b, err := doHTTP(ctx, l.client, req, "libretranslate: POST "+l.endpoint)
	if err != nil {
		return "", err
	}
	var res struct {
		TranslatedText *string `json:"translatedText"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return "", fmt.Errorf("libretranslate: decoding the response: %w", err)
	}
	if res.TranslatedText == nil {
		return "", fmt.Errorf("libretranslate: response has no translatedText: %s", clip(string(b), 200))
	}
	return strings.TrimSpace(*res.TranslatedText), nil
}
