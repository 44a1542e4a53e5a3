package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-sfu/sfu/media/opus"
	"github.com/edge-sfu/sfu/signaling/client"
)

// fakeTranscriber is an OpenAI-compatible transcription server that hears "hello world" in everything; it counts
// the requests it gets.
func fakeTranscriber(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"text": "hello world"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// has says whether the reader was sent a message (error, captions_status, transcription) containing all of parts.
func (cr *captionReader) has(parts ...string) bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	for _, s := range cr.status {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(s, p) }) {
			return true
		}
	}
	return false
}

func (cr *captionReader) all() []captionEvent {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return slices.Clone(cr.captions)
}

// waitTranscribed waits until tc is told that exactly ids are transcribed.
func waitTranscribed(t *testing.T, ctx context.Context, tc *testClient, ids ...string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := client.WaitFor(wctx, tc.events, func(m client.Message) bool {
		return m.Type == "transcription" && slices.Equal(slices.Sorted(slices.Values(m.Transcribed)), slices.Sorted(slices.Values(ids)))
	}); err != nil {
		t.Errorf("%s was not told that %v are transcribed: %v", tc.ID(), ids, err)
	}
}

// TestCaptionsNeedSubscribe (pen test finding 7): a participant whose token may publish but not subscribe is
// refused captions (forbidden), gets no caption of anyone's speech while another participant reads them, and
// cannot download the transcript; the speaker is told it is being transcribed, and so is a participant who joins
// while it is.
func TestCaptionsNeedSubscribe(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	srv, _ := fakeTranscriber(t)
	n := startTestNode(t, func(c *config) { c.Captions, c.CaptionsURL = "openai", srv.URL })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reader := readCaptions(t, ctx, n, "subs", "reader", "en")
	spy := readCaptionsToken(t, ctx, n, token(t, "subs", "spy", true, false), "en")
	time.Sleep(200 * time.Millisecond)
	m := startMedia(t, ctx)
	speaker := joinClient(t, ctx, n, "subs", "speaker")
	clip := newSpeechClip(t, "hello world the meeting starts now")
	publishOpus(t, m, speaker, clip.frames, 0)
	waitTranscribed(t, ctx, speaker, speaker.ID())
	eventually(t, 15*time.Second, "the reader gets a final caption", func() bool { return len(reader.finals()) >= 1 })
	late := joinClient(t, ctx, n, "subs", "late") // joins while the speaker is transcribed: told so at once
	waitTranscribed(t, ctx, late, speaker.ID())
	time.Sleep(500 * time.Millisecond)
	if !spy.has(`"type":"error"`, `"code":"forbidden"`, `"ref":"captions"`) {
		t.Errorf("a publish-only participant asking for captions was not refused with forbidden; it was sent %v", spy.status)
	}
	if got := spy.all(); len(got) != 0 {
		t.Errorf("a publish-only participant received %d captions, e.g. %+v", len(got), got[0])
	}
	for _, c := range []struct {
		tok  string
		want int
	}{
		{token(t, "subs", "spy", true, false), http.StatusForbidden},
		{token(t, "subs", "reader", false, true), http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(ctx, "GET", n.baseURL()+"/transcript/subs", nil)
		req.Header.Set("Authorization", "Bearer "+c.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("transcript: %s, want %d", resp.Status, c.want)
		}
	}
}

// TestCaptionsAdminPolicy (pen test finding 7): in a room whose settings say "captions": "admin", a member
// reading captions does not start transcription (the engine hears nothing, everyone is told nobody is
// transcribed); once an administrator reads captions, the speaker is transcribed, told so, and the member gets
// captions too. A room setting that is neither "anyone" nor "admin" stops the node from starting.
func TestCaptionsAdminPolicy(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	srv, calls := fakeTranscriber(t)
	rc := filepath.Join(t.TempDir(), "rooms.json")
	if err := os.WriteFile(rc, []byte(`{"rooms": {"board": {"captions": "admin"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startTestNode(t, func(c *config) { c.Captions, c.CaptionsURL, c.RoomConfig = "openai", srv.URL, rc })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	member := readCaptions(t, ctx, n, "board", "member", "en")
	time.Sleep(200 * time.Millisecond)
	m := startMedia(t, ctx)
	speaker := joinClient(t, ctx, n, "board", "speaker")
	clip := newSpeechClip(t, "hello world the meeting starts now")
	publishOpus(t, m, speaker, clip.frames, 0)
	time.Sleep(clip.speechEnd + 2*time.Second) // a whole utterance
	if c := calls.Load(); c != 0 || len(member.all()) != 0 {
		t.Errorf("a member's captions request transcribed the room: %d requests to the engine, %d captions", c, len(member.all()))
	}
	if !member.has(`"type":"transcription"`, `"transcribed":[]`) {
		t.Errorf("the member was not told that nobody is transcribed: %v", member.status)
	}
	readCaptionsToken(t, ctx, n, adminToken(t, "board", "chair"), "en")
	waitTranscribed(t, ctx, speaker, speaker.ID())
	eventually(t, 15*time.Second, "the member gets a caption once an administrator reads them", func() bool { return len(member.finals()) >= 1 })

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rooms": {"x": {"captions": "everyone"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config{Addr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", Secret: testSecret, RoomConfig: bad, Captions: "off"}
	if nd, err := startNode(cfg); err == nil {
		_ = nd.shutdown(ctx)
		t.Error(`a node started with "captions": "everyone" in a room's settings`)
	} else {
		t.Log(err)
	}
}

// TestWorkerBudget (pen test finding 9): with -max-worker-streams 2, two denoise chains run and a third is
// refused with unavailable naming the limit; the budget is the node's, so captions in another room are refused
// too; when a chain stops (turned off, or its publisher leaves) a new one is accepted.
func TestWorkerBudget(t *testing.T) {
	if !opus.EncoderAvailable {
		t.Skip("this build has no cgo")
	}
	srv, _ := fakeTranscriber(t)
	n := startTestNode(t, func(c *config) { c.MaxWorkerStreams, c.Captions, c.CaptionsURL = 2, "openai", srv.URL })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := startMedia(t, ctx)
	// publish joins a participant that publishes a tone, and waits until the room forwards it.
	publish := func(room, identity string, listener *testClient) *testClient {
		tc := joinClient(t, ctx, n, room, identity)
		publishTone(t, m, tc)
		eventually(t, 10*time.Second, identity+" is heard", func() bool { return listener.stats(tc.ID(), "audio").packets.Load() >= 5 })
		return tc
	}
	denoise := func(tc *testClient, on bool) client.Message {
		if err := tc.Send(map[string]any{"type": "denoise", "enabled": on, "engine": "speex"}); err != nil {
			t.Fatal(err)
		}
		return waitMessage(t, ctx, tc, "audio_processing", "error")
	}
	refused := func(msg client.Message) bool {
		return strings.Contains(msg.Error+msg.Message, "max-worker-streams") && (msg.Type == "audio_processing" || msg.Code == "unavailable")
	}
	listener := joinClient(t, ctx, n, "busy", "listener")
	var pubs []*testClient
	for _, id := range []string{"a", "b", "c"} {
		pubs = append(pubs, publish("busy", id, listener))
	}
	a, b, c := pubs[0], pubs[1], pubs[2]
	for _, tc := range []*testClient{a, b} {
		if msg := denoise(tc, true); msg.Type != "audio_processing" || !slices.Equal(msg.Processors, []string{"speex"}) {
			t.Fatalf("denoise within the budget: %+v", msg)
		}
	}
	if msg := denoise(c, true); !refused(msg) {
		t.Errorf("a third denoise chain with a budget of 2: %+v, want refused naming -max-worker-streams", msg)
	} else if msg := waitMessage(t, ctx, c, "error"); msg.Code != "unavailable" || !strings.Contains(msg.Message, "max-worker-streams") {
		t.Errorf("a third denoise chain: error %+v, want unavailable naming -max-worker-streams", msg)
	} else {
		t.Log(msg.Message)
	}

	// The budget is the node's: captions of a speaker in another room are refused while it is spent.
	other := joinClient(t, ctx, n, "other", "listener")
	speaker := publish("other", "speaker", other)
	reader := readCaptions(t, ctx, n, "other", "reader", "en")
	eventually(t, 5*time.Second, "captions refused with unavailable naming the limit", func() bool {
		return reader.has(`"code":"unavailable"`, "max-worker-streams")
	})

	// A chain turned off frees its slot: c gets one.
	if msg := denoise(a, false); msg.Type != "audio_processing" || len(msg.Processors) != 0 {
		t.Fatalf("denoise off: %+v", msg)
	}
	if msg := denoise(c, true); msg.Type != "audio_processing" || !slices.Equal(msg.Processors, []string{"speex"}) {
		t.Fatalf("denoise after a slot was freed: %+v", msg)
	}
	// A publisher that leaves frees its slot: the captions reader, asking again, gets its speaker transcribed.
	b.Close()
	time.Sleep(500 * time.Millisecond)
	if err := reader.conn.WriteJSON(map[string]any{"type": "captions", "languages": []string{"en"}}); err != nil {
		t.Fatal(err)
	}
	waitTranscribed(t, ctx, speaker, speaker.ID())
}
