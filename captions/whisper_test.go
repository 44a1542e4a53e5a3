package captions

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkWAV asserts that b is a 16 kHz mono 16-bit PCM WAV file holding want.
func checkWAV(t *testing.T, b []byte, want []int16) {
	t.Helper()
	if len(b) < 44 {
		t.Errorf("WAV of %d bytes", len(b))
		return
	}
	le16 := func(o int) int { return int(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int { return int(binary.LittleEndian.Uint32(b[o:])) }
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"RIFF", string(b[0:4]), "RIFF"},
		{"RIFF size", le32(4), 36 + 2*len(want)},
		{"WAVE", string(b[8:12]), "WAVE"},
		{"fmt chunk", string(b[12:16]), "fmt "},
		{"fmt size", le32(16), 16},
		{"format (PCM)", le16(20), 1},
		{"channels", le16(22), 1},
		{"sample rate", le32(24), 16000},
		{"byte rate", le32(28), 32000},
		{"block align", le16(32), 2},
		{"bits per sample", le16(34), 16},
		{"data chunk", string(b[36:40]), "data"},
		{"data size", le32(40), 2 * len(want)},
		{"file size", len(b), 44 + 2*len(want)},
	} {
		if c.got != c.want {
			t.Errorf("WAV %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for i := 0; i < len(want) && 44+2*i+1 < len(b); i++ {
		if got := int16(binary.LittleEndian.Uint16(b[44+2*i:])); got != want[i] {
			t.Errorf("WAV sample %d = %d, want %d", i, got, want[i])
			return
		}
	}
}

// ramp returns n samples that differ from one another.
func ramp(n, seed int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16((i*37 + seed*1000) % 65536)
	}
	return s
}

// transcriptionServer serves path, asserting the multipart request's shape: the WAV holds want, the form
// fields are fields, and the Authorization header is auth. It answers with the canned body.
func transcriptionServer(t *testing.T, path string, want []int16, fields map[string]string, auth, body string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != path {
			t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, path)
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
			t.Errorf("Content-Type %q, want multipart/form-data", r.Header.Get("Content-Type"))
		}
		if got := r.Header.Get("Authorization"); got != auth {
			t.Errorf("Authorization %q, want %q", got, auth)
		}
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			t.Errorf("multipart form: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for k, v := range fields {
			if got := r.MultipartForm.Value[k]; len(got) != 1 || got[0] != v {
				t.Errorf("field %s = %q, want %q", k, got, v)
			}
		}
		for k := range r.MultipartForm.Value {
			if _, ok := fields[k]; !ok {
				t.Errorf("unexpected field %s = %q", k, r.MultipartForm.Value[k])
			}
		}
		files := r.MultipartForm.File["file"]
		if len(files) != 1 {
			t.Errorf("%d file parts, want 1", len(files))
		} else {
			if files[0].Filename != "audio.wav" {
				t.Errorf("file name %q, want audio.wav", files[0].Filename)
			}
			if ct := files[0].Header.Get("Content-Type"); ct != "audio/wav" {
				t.Errorf("file Content-Type %q, want audio/wav", ct)
			}
			f, err := files[0].Open()
			if err != nil {
				t.Error(err)
			} else {
				b, _ := io.ReadAll(f)
				f.Close()
				checkWAV(t, b, want)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// writeAll writes the chunks and checks that each partial is "".
func writeAll(t *testing.T, u Utterance, chunks ...[]int16) []int16 {
	t.Helper()
	var all []int16
	for _, c := range chunks {
		p, err := u.Write(c)
		if err != nil {
			t.Fatal(err)
		}
		if p != "" {
			t.Errorf("partial %q from a batch recognizer", p)
		}
		all = append(all, c...)
	}
	return all
}

func TestWhisperLang(t *testing.T) {
	for in, want := range map[string]string{
		"yue": "yue", "zh-Hans": "zh", "zh-Hant": "zh", "zh-HK": "zh", "zh-TW": "zh", "zh": "zh",
		"en-US": "en", "EN": "en", "pt_BR": "pt", "ja": "ja", "": "",
	} {
		if got := whisperLang(in); got != want {
			t.Errorf("whisperLang(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWhisperCpp(t *testing.T) {
	chunks := [][]int16{ramp(1600, 1), ramp(320, 2), ramp(4000, 3)}
	var want []int16
	for _, c := range chunks {
		want = append(want, c...)
	}
	srv, calls := transcriptionServer(t, "/inference", want,
		map[string]string{"response_format": "json", "temperature": "0.0", "language": "zh"}, "",
		`{"text": "  你好，世界 \n"}`)
	r := NewWhisperCpp(HTTPRecognizerConfig{URL: srv.URL + "/"})
	u, err := r.Open(context.Background(), "zh-Hant")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	writeAll(t, u, chunks...)
	got, err := u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if got != "你好，世界" {
		t.Errorf("Finish = %q", got)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1", calls.Load())
	}
	if _, err := u.Write(ramp(10, 0)); err == nil {
		t.Error("Write after Finish succeeded")
	}

	// Cantonese stays yue; silence gives no request and no text.
	srv, calls = transcriptionServer(t, "/inference", want[:100],
		map[string]string{"response_format": "json", "temperature": "0.0", "language": "yue"}, "",
		`{"text": " [BLANK_AUDIO]"}`)
	r = NewWhisperCpp(HTTPRecognizerConfig{URL: srv.URL})
	u, _ = r.Open(context.Background(), "yue")
	writeAll(t, u, want[:100])
	if got, err := u.Finish(); got != "" || err != nil {
		t.Errorf("blank audio: %q, %v", got, err)
	}
	u.Close()
	u, _ = r.Open(context.Background(), "yue")
	if got, err := u.Finish(); got != "" || err != nil || calls.Load() != 1 {
		t.Errorf("empty utterance: %q, %v after %d requests", got, err, calls.Load())
	}
	u.Close()
}

func TestOpenAITranscriber(t *testing.T) {
	pcm := ramp(8000, 7)
	srv, calls := transcriptionServer(t, "/v1/audio/transcriptions", pcm,
		map[string]string{"model": "whisper-1", "language": "en", "response_format": "json"}, "Bearer sk-test",
		`{"text":" Hello there. "}`)
	r := NewOpenAITranscriber(HTTPRecognizerConfig{URL: srv.URL, APIKey: "sk-test"})
	u, err := r.Open(context.Background(), "en-US")
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, pcm[:3000], pcm[3000:])
	if got, err := u.Finish(); err != nil || got != "Hello there." {
		t.Errorf("Finish = %q, %v", got, err)
	}
	u.Close()

	// A model of one's own, no key, no language (the server detects it).
	srv, calls = transcriptionServer(t, "/v1/audio/transcriptions", pcm,
		map[string]string{"model": "Systran/faster-whisper-small", "response_format": "json"}, "",
		`{"text":"Bonjour"}`)
	r = NewOpenAITranscriber(HTTPRecognizerConfig{URL: srv.URL, Model: "Systran/faster-whisper-small"})
	u, _ = r.Open(context.Background(), "")
	writeAll(t, u, pcm)
	if got, err := u.Finish(); err != nil || got != "Bonjour" || calls.Load() != 1 {
		t.Errorf("Finish = %q, %v after %d requests", got, err, calls.Load())
	}
	u.Close()
}

func TestHTTPRecognizerLimit(t *testing.T) {
	r := NewWhisperCpp(HTTPRecognizerConfig{URL: "http://127.0.0.1:1"})
	u, _ := r.Open(context.Background(), "en")
	defer u.Close()
	if _, err := u.Write(make([]int16, 30*SampleRate)); err != nil {
		t.Fatalf("30 s: %v", err)
	}
	if _, err := u.Write(make([]int16, 1)); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("beyond 30 s: %v, want an error that is not ErrUnavailable", err)
	}
}

// failingServer answers every request with handler.
func failingServer(t *testing.T, handler http.HandlerFunc) string {
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// hangServer reads each request and never answers it (until the client gives up or the test ends).
func hangServer(t *testing.T) string {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices the client leave only once the body is read
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv.URL
}

// closedURL returns the URL of a port that nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func hijackClose(w http.ResponseWriter, r *http.Request) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		c.Close()
	}
}

func TestHTTPRecognizerErrors(t *testing.T) {
	makers := map[string]func(HTTPRecognizerConfig) Recognizer{
		"whisper.cpp": func(c HTTPRecognizerConfig) Recognizer { return NewWhisperCpp(c) },
		"openai":      func(c HTTPRecognizerConfig) Recognizer { return NewOpenAITranscriber(c) },
	}
	finish := func(r Recognizer, ctx context.Context) (string, error) {
		u, err := r.Open(ctx, "en")
		if err != nil {
			return "", err
		}
		defer u.Close()
		if _, err := u.Write(ramp(1600, 0)); err != nil {
			return "", err
		}
		return u.Finish()
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			// 500: unavailable, with the server's message.
			url := failingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `{"error": "model not loaded"}`)
			})
			_, err := finish(mk(HTTPRecognizerConfig{URL: url}), context.Background())
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "model not loaded") {
				t.Errorf("500: %v", err)
			}
			// 400 (OpenAI's error shape): this request was bad, the engine is not unavailable.
			url = failingServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error": {"message": "bad audio", "type": "invalid_request_error"}}`)
			})
			_, err = finish(mk(HTTPRecognizerConfig{URL: url}), context.Background())
			if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bad audio") {
				t.Errorf("400: %v", err)
			}
			// The connection closes without an answer.
			url = failingServer(t, hijackClose)
			if _, err = finish(mk(HTTPRecognizerConfig{URL: url}), context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("closed connection: %v", err)
			}
			// Nothing listens.
			if _, err = finish(mk(HTTPRecognizerConfig{URL: closedURL(t)}), context.Background()); !errors.Is(err, ErrUnavailable) {
				t.Errorf("no server: %v", err)
			}
			// A 200 that is not the API's.
			url = failingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>`) })
			if _, err = finish(mk(HTTPRecognizerConfig{URL: url}), context.Background()); err == nil {
				t.Error("HTML answer: no error")
			}
			// An answer over 1 MiB.
			url = failingServer(t, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"text": "`+strings.Repeat("a", 2<<20)+`"}`)
			})
			if _, err = finish(mk(HTTPRecognizerConfig{URL: url}), context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
				t.Errorf("2 MiB answer: %v", err)
			}

			// A server that never answers: Finish returns by the time-out.
			url = hangServer(t)
			start := time.Now()
			_, err = finish(mk(HTTPRecognizerConfig{URL: url, Timeout: 300 * time.Millisecond}), context.Background())
			if el := time.Since(start); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || el > 2*time.Second {
				t.Errorf("no answer: %v after %v", err, el)
			}
			// The caller's context ends first: its error, not ErrUnavailable.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start = time.Now()
			_, err = finish(mk(HTTPRecognizerConfig{URL: url}), ctx)
			if el := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) || el > 2*time.Second {
				t.Errorf("caller's deadline: %v after %v", err, el)
			}
		})
	}
}
