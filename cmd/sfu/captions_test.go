package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edge-sfu/sfu/captions"
	"github.com/edge-sfu/sfu/media/audio"
	"github.com/edge-sfu/sfu/media/audio/audiotest"
	"github.com/edge-sfu/sfu/media/opus"
	"github.com/edge-sfu/sfu/signaling/client"
)

// captionEvent is a caption message as a client receives it.
type captionEvent struct {
	Participant  string            `json:"participant"`
	Track        string            `json:"track"`
	Lang         string            `json:"lang"`
	Text         string            `json:"text"`
	Final        bool              `json:"final"`
	Start        float64           `json:"start"`
	End          float64           `json:"end"`
	Translations map[string]string `json:"translations"`
	at           time.Time
}

// captionReader is a participant that reads captions over a raw WebSocket: it asks for langs and keeps every
// caption with the time it arrived.
type captionReader struct {
	mu       sync.Mutex
	captions []captionEvent
	status   []string
	conn     *websocket.Conn
	done     chan struct{}
}

func readCaptions(t *testing.T, ctx context.Context, n *node, room, identity string, langs ...string) *captionReader {
	t.Helper()
	return readCaptionsToken(t, ctx, n, token(t, room, identity, false, true), langs...)
}

// readCaptionsToken is readCaptions with the given token; it also keeps the transcription messages in status.
func readCaptionsToken(t *testing.T, ctx context.Context, n *node, tok string, langs ...string) *captionReader {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, client.WSURL(n.baseURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	cr := &captionReader{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { _ = conn.Close(); <-cr.done })
	for _, m := range []any{
		map[string]any{"type": "join", "token": tok},
		map[string]any{"type": "captions", "languages": langs},
	} {
		if err := conn.WriteJSON(m); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		defer close(cr.done)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var head struct {
				Type, Code, Message, Reason string
				Available                   bool
			}
			_ = json.Unmarshal(b, &head)
			switch head.Type {
			case "caption":
				var c captionEvent
				if json.Unmarshal(b, &c) == nil {
					c.at = time.Now()
					cr.mu.Lock()
					cr.captions = append(cr.captions, c)
					cr.mu.Unlock()
				}
			case "captions_status", "error", "transcription":
				cr.mu.Lock()
				cr.status = append(cr.status, string(b))
				cr.mu.Unlock()
			}
		}
	}()
	return cr
}

func (cr *captionReader) finals() []captionEvent {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	var out []captionEvent
	for _, c := range cr.captions {
		if c.Final {
			out = append(out, c)
		}
	}
	return out
}

func (cr *captionReader) partials() int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	n := 0
	for _, c := range cr.captions {
		if !c.Final {
			n++
		}
	}
	return n
}

// speechClip is spoken text with a second of silence before and 2 s after, as 20 ms Opus packets, and where in
// the clip the speech ends.
type speechClip struct {
	frames    [][]byte
	speechEnd time.Duration
}

func newSpeechClip(t *testing.T, text string) speechClip {
	t.Helper()
	speech := audiotest.Speech(t, text)
	pcm := append(make([]int16, audio.SampleRate), speech...)
	last := 0
	for i, v := range pcm {
		if v > 300 || v < -300 {
			last = i
		}
	}
	pcm = append(pcm, make([]int16, 2*audio.SampleRate)...)
	return speechClip{frames: encodeLoop(t, pcm), speechEnd: time.Duration(last) * time.Second / audio.SampleRate}
}

// publishClip plays a clip `times` times from a new publisher; the channel gets the time each play starts and
// closes after the last.
func publishClip(t *testing.T, ctx context.Context, n *node, room, identity string, clip speechClip, times int) <-chan time.Time {
	t.Helper()
	return publishOpus(t, startMedia(t, ctx), joinClient(t, ctx, n, room, identity), clip.frames, times)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestCaptionsEndToEnd: a publisher speaks "hello world the meeting starts now" (espeak-ng, as Opus) three
// times; a subscriber reading English captions gets partial captions, then a final caption per utterance with a
// word error rate of at most 40 % (PocketSphinx narrowed by a grammar, as espeak's voice is far from what its
// model learnt). The time from the end of speech to the final caption at the subscriber is measured. The room's
// transcript downloads as WebVTT.
func TestCaptionsEndToEnd(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	const sentence = "hello world the meeting starts now"
	clip := newSpeechClip(t, sentence)
	n := startTestNode(t, func(c *config) {
		c.Captions, c.CaptionsGrammar, c.Translators = "pocketsphinx", "../../captions/pocketsphinx/testdata/meeting.jsgf", []string{"opencc"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reader := readCaptions(t, ctx, n, "captions", "reader", "en")
	time.Sleep(200 * time.Millisecond) // the captions request is in before the track starts
	var endTimes []time.Time
	for start := range publishClip(t, ctx, n, "captions", "speaker", clip, 3) {
		endTimes = append(endTimes, start.Add(clip.speechEnd))
	}
	eventually(t, 10*time.Second, "three final captions", func() bool { return len(reader.finals()) >= 3 })
	finals := reader.finals()
	var delays []time.Duration
	for i, c := range finals[:3] {
		wer := captions.WordErrorRate(sentence, c.Text)
		delays = append(delays, c.at.Sub(endTimes[i]))
		t.Logf("final %d: %q (WER %.0f %%) at %.2f-%.2f s, %v after the speech ended", i, c.Text, 100*wer, c.Start, c.End, c.at.Sub(endTimes[i]).Round(time.Millisecond))
		if wer > 0.4 {
			t.Errorf("caption %q: word error rate %.0f %%, want at most 40 %%", c.Text, 100*wer)
		}
		if c.Lang != "en" || c.Track != "mic-speaker" || c.End <= c.Start {
			t.Errorf("caption fields: %+v", c)
		}
	}
	t.Logf("end of speech to final caption at the subscriber: p50 %v over %d utterances; %d partial captions", median(delays).Round(time.Millisecond), len(delays), reader.partials())
	if reader.partials() == 0 {
		t.Error("no partial captions while speaking")
	}

	// The transcript, with a token for the room, as WebVTT.
	status, vtt := fetchTranscript(t, ctx, n, "captions")
	if status != 200 || !strings.HasPrefix(vtt, "WEBVTT\n") || strings.Count(vtt, " --> ") < 3 || !strings.Contains(vtt, "<v Name of speaker>") {
		t.Fatalf("transcript: %d\n%s", status, vtt)
	}
	t.Logf("transcript:\n%s", vtt)
	for _, tok := range []string{"", token(t, "elsewhere", "x", true, true)} {
		resp, err := http.Get(n.baseURL() + "/transcript/captions?token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("transcript with token %q: %s", tok, resp.Status)
		}
	}
}

// TestChineseCaptionsWithTraditionalTranslation: a room whose speakers speak Mandarin, captioned by an
// OpenAI-compatible transcription server (here one in the test, answering in Simplified Chinese as Whisper
// does); a reader of Traditional Chinese gets each final caption with its zh-Hant translation by OpenCC.
func TestChineseCaptionsWithTraditionalTranslation(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	var mu sync.Mutex
	var langs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/audio/transcriptions" {
			http.Error(w, "wrong endpoint", http.StatusNotFound)
			return
		}
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			http.Error(w, "no file", http.StatusBadRequest)
			return
		}
		pcm, rate, err := audio.ReadWAV(f)
		if err != nil || rate != 16000 || len(pcm) < 16000 {
			http.Error(w, fmt.Sprintf("bad audio: %d samples at %d Hz: %v", len(pcm), rate, err), http.StatusBadRequest)
			return
		}
		mu.Lock()
		langs = append(langs, r.FormValue("language"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"text": "会议现在开始"}`)
	}))
	defer srv.Close()
	clip := newSpeechClip(t, "hello world the meeting starts now")
	n := startTestNode(t, func(c *config) {
		c.Captions, c.CaptionsURL, c.CaptionsLang, c.Translators = "openai", srv.URL, "zh", []string{"opencc"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := readCaptions(t, ctx, n, "zh-room", "reader", "zh-Hant")
	time.Sleep(200 * time.Millisecond)
	end := (<-publishClip(t, ctx, n, "zh-room", "speaker", clip, 1)).Add(clip.speechEnd)
	eventually(t, 10*time.Second, "a final caption", func() bool { return len(reader.finals()) >= 1 })
	c := reader.finals()[0]
	t.Logf("caption %+v, %v after the speech ended", c, c.at.Sub(end).Round(time.Millisecond))
	if c.Lang != "zh" || c.Text != "会议现在开始" || c.Translations["zh-Hant"] != "會議現在開始" {
		t.Fatalf("caption %+v, want zh 会议现在开始 with zh-Hant 會議現在開始", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(langs) == 0 || langs[0] != "zh" {
		t.Fatalf("the server was asked for languages %q, want zh", langs)
	}
}

// TestCaptionsEngineDownMeetingCarriesOn: a transcription server that never answers marks captions unavailable
// for the readers, while everyone keeps hearing the speaker: captions never hold up forwarding.
func TestCaptionsEngineDownMeetingCarriesOn(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	hung := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // answers nothing until the client gives up or the test ends
		case <-r.Context().Done():
		case <-hung:
		}
	}))
	defer srv.Close()
	defer close(hung)
	clip := newSpeechClip(t, "hello world the meeting starts now")
	n := startTestNode(t, func(c *config) {
		c.Captions, c.CaptionsURL, c.CaptionsTimeout = "openai", srv.URL, 500*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := readCaptions(t, ctx, n, "down", "reader", "en")
	listener := joinClient(t, ctx, n, "down", "listener")
	time.Sleep(200 * time.Millisecond)
	for range publishClip(t, ctx, n, "down", "speaker", clip, 2) {
	}
	eventually(t, 10*time.Second, "captions reported unavailable", func() bool {
		reader.mu.Lock()
		defer reader.mu.Unlock()
		for _, s := range reader.status {
			if strings.Contains(s, `"available":false`) {
				return true
			}
		}
		return false
	})
	reader.mu.Lock()
	t.Logf("reader was told: %s", reader.status)
	reader.mu.Unlock()
	sent := 2 * len(clip.frames)
	var speaker string
	listener.mu.Lock()
	for k := range listener.received {
		if strings.HasSuffix(k, "/audio") {
			speaker = strings.TrimSuffix(k, "/audio")
		}
	}
	listener.mu.Unlock()
	got := listener.stats(speaker, "audio").packets.Load()
	t.Logf("the listener received %d of the %d audio packets sent", got, sent)
	if got < int64(sent)*95/100 {
		t.Fatalf("the listener received %d of %d audio packets while captions hung", got, sent)
	}
	if len(reader.finals()) != 0 {
		t.Fatalf("captions from a server that never answered: %+v", reader.finals())
	}
}
