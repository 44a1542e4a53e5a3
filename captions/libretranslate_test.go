package captions

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLibreLang(t *testing.T) {
	for in, want := range map[string]string{
		"zh-Hans": "zh", "zh": "zh", "zh-Hant": "zt", "zh-HK": "zt", "zh-TW": "zt", "zh_TW": "zt", "zt": "zt",
		"en-US": "en", "pt-BR": "pt", "ES": "es", "yue": "yue", "ja": "ja",
	} {
		if got := libreLang(in); got != want {
			t.Errorf("libreLang(%q) = %q, want %q", in, got, want)
		}
	}
	all := NewLibreTranslate(LibreTranslateConfig{URL: "http://127.0.0.1:1"})
	some := NewLibreTranslate(LibreTranslateConfig{URL: "http://127.0.0.1:1", Languages: []string{"en", "es", "zh-Hant"}})
	for _, c := range []struct {
		from, to   string
		all, listd bool
	}{
		{"en", "es", true, true},
		{"en-US", "zh-TW", true, true},
		{"en", "zh-Hans", true, false},
		{"zh-Hans", "zh-Hant", true, false},
		{"en", "en-GB", false, false},
		{"zh", "zh-Hans", false, false},
		{"", "en", false, false},
	} {
		if got := all.Supports(c.from, c.to); got != c.all {
			t.Errorf("Supports(%q, %q) with any language = %v, want %v", c.from, c.to, got, c.all)
		}
		if got := some.Supports(c.from, c.to); got != c.listd {
			t.Errorf("Supports(%q, %q) with en, es, zt = %v, want %v", c.from, c.to, got, c.listd)
		}
	}
}

// libreServer asserts that each request is the JSON body want and answers with status and body.
func libreServer(t *testing.T, want map[string]any, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/translate" {
			t.Errorf("request %s %s, want POST /translate", r.Method, r.URL.Path)
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			t.Errorf("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
		}
		var got map[string]any
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
		if want != nil && !reflect.DeepEqual(got, want) {
			t.Errorf("body %v, want %v", got, want)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLibreTranslate(t *testing.T) {
	ctx := context.Background()
	url := libreServer(t, map[string]any{"q": "Hello world", "source": "en", "target": "es", "format": "text"},
		http.StatusOK, `{"translatedText": " Hola mundo "}`)
	l := NewLibreTranslate(LibreTranslateConfig{URL: url})
	if got, err := l.Translate(ctx, "Hello world", "en-US", "es"); err != nil || got != "Hola mundo" {
		t.Errorf("Translate = %q, %v", got, err)
	}

	// With a key, to Traditional Chinese.
	url = libreServer(t, map[string]any{"q": "Good morning", "source": "en", "target": "zt", "format": "text", "api_key": "k-123"},
		http.StatusOK, `{"translatedText": "早安"}`)
	l = NewLibreTranslate(LibreTranslateConfig{URL: url + "/", APIKey: "k-123"})
	if got, err := l.Translate(ctx, "Good morning", "en", "zh-HK"); err != nil || got != "早安" {
		t.Errorf("Translate = %q, %v", got, err)
	}
	// From Simplified Chinese.
	url = libreServer(t, map[string]any{"q": "早上好", "source": "zh", "target": "en", "format": "text"},
		http.StatusOK, `{"translatedText": "Good morning"}`)
	l = NewLibreTranslate(LibreTranslateConfig{URL: url})
	if got, err := l.Translate(ctx, "早上好", "zh-Hans", "en"); err != nil || got != "Good morning" {
		t.Errorf("Translate = %q, %v", got, err)
	}
}

func TestLibreTranslateErrors(t *testing.T) {
	ctx := context.Background()
	translate := func(cfg LibreTranslateConfig, ctx context.Context) error {
		_, err := NewLibreTranslate(cfg).Translate(ctx, "Hello", "en", "es")
		return err
	}
	// A refused request: its error message, not ErrUnavailable.
	url := libreServer(t, nil, http.StatusBadRequest, `{"error": "es is not supported"}`)
	if err := translate(LibreTranslateConfig{URL: url}, ctx); err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "es is not supported") {
		t.Errorf("400: %v", err)
	}
	// Server errors, a wrong key, a rate limit: unavailable.
	for _, status := range []int{http.StatusInternalServerError, http.StatusForbidden, http.StatusTooManyRequests} {
		url = libreServer(t, nil, status, `{"error": "no can do"}`)
		if err := translate(LibreTranslateConfig{URL: url}, ctx); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no can do") {
			t.Errorf("%d: %v", status, err)
		}
	}
	// A 200 without translatedText.
	url = libreServer(t, nil, http.StatusOK, `{"detectedLanguage": {}}`)
	if err := translate(LibreTranslateConfig{URL: url}, ctx); err == nil {
		t.Error("no translatedText: no error")
	}
	if err := translate(LibreTranslateConfig{URL: failingServer(t, hijackClose)}, ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed connection: %v", err)
	}
	if err := translate(LibreTranslateConfig{URL: closedURL(t)}, ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no server: %v", err)
	}
	url = hangServer(t)
	start := time.Now()
	err := translate(LibreTranslateConfig{URL: url, Timeout: 300 * time.Millisecond}, ctx)
	if el := time.Since(start); !errors.Is(err, ErrUnavailable) || el > 2*time.Second {
		t.Errorf("no answer: %v after %v", err, el)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	err = translate(LibreTranslateConfig{URL: url}, cctx)
	if el := time.Since(start); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || el > 2*time.Second {
		t.Errorf("cancelled: %v after %v", err, el)
	}
}
