package captions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/edge-sfu/sfu/media/audio"
)

// Shared by the network engines (whisper.go, libretranslate.go, vosk.go).
const (
	// defaultTimeout bounds one request to an engine when its config leaves Timeout zero.
	defaultTimeout = 10 * time.Second
	// maxResponseBytes bounds what is read of one response.
	maxResponseBytes = 1 << 20
	// maxBatchSamples is the longest utterance a batch recognizer takes: Whisper's 30 s window.
	maxBatchSamples = 30 * SampleRate
)

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return defaultTimeout
	}
	return d
}

// unavailable wraps a connection or server failure so that errors.Is(err, ErrUnavailable) holds. When the
// caller's own context has ended the failure is the caller's doing, so only that is reported.
func unavailable(parent context.Context, what string, err error) error {
	if perr := parent.Err(); perr != nil {
		if errors.Is(err, perr) {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: %w (%v)", what, perr, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// statusUnavailable reports whether an HTTP status means the engine cannot serve us (down, overloaded,
// misconfigured URL or key) rather than that this one request was bad.
func statusUnavailable(code int) bool {
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// newHTTPClient returns a client with its own connection pool, so that engines share nothing.
func newHTTPClient() *http.Client {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return &http.Client{Transport: t.Clone()}
	}
	return &http.Client{}
}

// doHTTP sends req and returns the body of its 2xx response, read through a 1 MiB limit. Failures to
// connect, time-outs and statuses that statusUnavailable names wrap ErrUnavailable; other statuses carry
// the server's error message.
func doHTTP(parent context.Context, client *http.Client, req *http.Request, what string) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, unavailable(parent, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, unavailable(parent, what+": reading the response", err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("%s: response larger than %d bytes", what, maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("HTTP %s: %s", resp.Status, errorMessage(body))
		if statusUnavailable(resp.StatusCode) {
			return nil, fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return body, nil
}

// errorMessage finds the message in an error body: {"error": "..."} (LibreTranslate, whisper.cpp),
// {"error": {"message": "..."}} (OpenAI), {"detail": ...} (FastAPI servers), or else the body's start.
func errorMessage(body []byte) string {
	var e struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		var s string
		var o struct {
			Message string `json:"message"`
		}
		switch {
		case json.Unmarshal(e.Error, &s) == nil && s != "":
			return s
		case json.Unmarshal(e.Error, &o) == nil && o.Message != "":
			return o.Message
		case json.Unmarshal(e.Detail, &s) == nil && s != "":
			return s
		case len(e.Detail) > 0 && string(e.Detail) != "null":
			return clip(string(e.Detail), 200)
		}
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		return clip(s, 200)
	}
	return "(empty body)"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// whisperLang maps a caption language to the code Whisper expects: the base language, lower-case, with the
// region or script dropped ("en-US" → "en", "zh-Hans"/"zh-Hant"/"zh-HK"/"zh-TW" → "zh"); "yue" (Cantonese,
// which large-v3 knows) stays "yue".
func whisperLang(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return lang
}

// HTTPRecognizerConfig configures a batch recognizer that posts each utterance to an HTTP server.
type HTTPRecognizerConfig struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:8080"; the endpoint's path is added to it.
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// Model names the model for the OpenAI-compatible API ("whisper-1" when empty). whisper.cpp's server
	// ignores it: it serves the model it was started with.
	Model string
	// Timeout bounds each request (10 s when zero), within the context given to Open.
	Timeout time.Duration
}

// WhisperCpp recognizes speech with whisper.cpp's HTTP server (examples/server): each utterance is posted
// to {URL}/inference when it finishes. It gives no partial results.
type WhisperCpp struct{ r httpRecognizer }

// NewWhisperCpp returns a recognizer that posts to {cfg.URL}/inference.
func NewWhisperCpp(cfg HTTPRecognizerConfig) *WhisperCpp {
	return &WhisperCpp{r: httpRecognizer{
		name:     "whisper.cpp",
		endpoint: strings.TrimRight(cfg.URL, "/") + "/inference",
		apiKey:   cfg.APIKey,
		timeout:  timeoutOr(cfg.Timeout),
		client:   newHTTPClient(),
		fields: func(lang string) [][2]string {
			if lang == "" {
				lang = "auto"
			}
			return [][2]string{{"response_format", "json"}, {"temperature", "0.0"}, {"language", lang}}
		},
	}}
}

// Open starts an utterance in lang ("" lets the server detect the language).
func (w *WhisperCpp) Open(ctx context.Context, lang string) (Utterance, error) {
	return w.r.open(ctx, lang)
}

// OpenAITranscriber recognizes speech with an OpenAI-compatible transcription API
// ({URL}/v1/audio/transcriptions), as served by faster-whisper-server/speaches, LocalAI, SenseVoice
// wrappers and OpenAI itself. Each utterance is posted when it finishes; there are no partial results.
type OpenAITranscriber struct{ r httpRecognizer }

// NewOpenAITranscriber returns a recognizer that posts to {cfg.URL}/v1/audio/transcriptions.
func NewOpenAITranscriber(cfg HTTPRecognizerConfig) *OpenAITranscriber {
	model := cfg.Model
	if model == "" {
		model = "whisper-1"
	}
	return &OpenAITranscriber{r: httpRecognizer{
		name:     "openai transcription",
		endpoint: strings.TrimRight(cfg.URL, "/") + "/v1/audio/transcriptions",
		apiKey:   cfg.APIKey,
		timeout:  timeoutOr(cfg.Timeout),
		client:   newHTTPClient(),
		fields: func(lang string) [][2]string {
			f := [][2]string{{"model", model}, {"response_format", "json"}}
			if lang != "" {
				f = append(f, [2]string{"language", lang})
			}
			return f
		},
	}}
}

// Open starts an utterance in lang ("" lets the server detect the language).
func (o *OpenAITranscriber) Open(ctx context.Context, lang string) (Utterance, error) {
	return o.r.open(ctx, lang)
}

// httpRecognizer is what WhisperCpp and OpenAITranscriber share: buffer the utterance, post it as a WAV
// file in a multipart form, read {"text": "..."}.
type httpRecognizer struct {
	name     string
	endpoint string
	apiKey   string
	timeout  time.Duration
	client   *http.Client
	fields   func(lang string) [][2]string // form fields besides the file, in order
}

func (r *httpRecognizer) open(ctx context.Context, lang string) (Utterance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	return &httpUtterance{r: r, ctx: ctx, lang: whisperLang(lang)}, nil
}

type httpUtterance struct {
	r    *httpRecognizer
	ctx  context.Context
	lang string

	mu       sync.Mutex
	pcm      []int16
	finished bool
	closed   bool
}

// Write buffers pcm; the server hears it all at Finish.
func (u *httpUtterance) Write(pcm []int16) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.closed:
		return "", fmt.Errorf("%s: write after close", u.r.name)
	case u.finished:
		return "", fmt.Errorf("%s: write after finish", u.r.name)
	case len(u.pcm)+len(pcm) > maxBatchSamples:
		return "", fmt.Errorf("%s: utterance longer than %d s", u.r.name, maxBatchSamples/SampleRate)
	}
	u.pcm = append(u.pcm, pcm...)
	return "", nil
}

// Finish posts the utterance and returns the server's transcript.
func (u *httpUtterance) Finish() (string, error) {
	u.mu.Lock()
	if u.closed || u.finished {
		u.mu.Unlock()
		return "", fmt.Errorf("%s: finish after close or finish", u.r.name)
	}
	u.finished = true
	pcm := u.pcm
	u.pcm = nil
	u.mu.Unlock()
	if len(pcm) == 0 {
		return "", nil
	}
	return u.r.transcribe(u.ctx, pcm, u.lang)
}

// Close drops the buffered audio.
func (u *httpUtterance) Close() error {
	u.mu.Lock()
	u.closed = true
	u.pcm = nil
	u.mu.Unlock()
	return nil
}

func (r *httpRecognizer) transcribe(parent context.Context, pcm []int16, lang string) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="file"; filename="audio.wav"`)
	h.Set("Content-Type", "audio/wav")
	part, err := mw.CreatePart(h)
	if err == nil {
		err = audio.WriteWAV(part, pcm, SampleRate)
	}
	for _, f := range r.fields(lang) {
		if err == nil {
			err = mw.WriteField(f[0], f[1])
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return "", fmt.Errorf("%s: building the request: %w", r.name, err)
	}

	ctx, cancel := context.WithTimeout(parent, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, &body)
	if err != nil {
		return "", fmt.Errorf("%s: %w", r.name, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	if r.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.apiKey)
	}
	b, err := doHTTP(parent, r.client, req, r.name+": POST "+r.endpoint)
	if err != nil {
		return "", err
	}
	var res struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return "", fmt.Errorf("%s: decoding the response: %w", r.name, err)
	}
	if res.Text == nil {
		return "", fmt.Errorf("%s: response has no text: %s", r.name, clip(string(b), 200))
	}
	// whisper.cpp writes this for silence; it is not speech.
	return strings.TrimSpace(strings.ReplaceAll(*res.Text, "[BLANK_AUDIO]", "")), nil
}
