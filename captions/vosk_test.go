package captions

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// voskServer runs handle on each WebSocket connection and returns the server's ws:// URL.
func voskServer(t *testing.T, handle func(c *websocket.Conn)) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		defer c.Close()
		handle(c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// readConfig asserts that the first message is the configuration.
func readConfig(t *testing.T, c *websocket.Conn) bool {
	kind, msg, err := c.ReadMessage()
	if err != nil {
		t.Errorf("reading the config: %v", err)
		return false
	}
	if kind != websocket.TextMessage || string(msg) != `{"config":{"sample_rate":16000}}` {
		t.Errorf("first message (type %d) %q, want the text {\"config\":{\"sample_rate\":16000}}", kind, msg)
	}
	return true
}

func TestVosk(t *testing.T) {
	pcm := ramp(16000+8000+320*3, 5)
	// What the server should get: 320, 320, 320 samples, then 24000 in a 16000 and an 8000.
	wantFrames := []int{640, 640, 640, 32000, 16000}
	replies := []string{
		`{"partial" : ""}`,
		`{"partial" : "hello"}`,
		`{"result" : [{"conf": 1, "end": 1.2, "start": 0.3, "word": "hello"}, {"conf": 1, "end": 1.5, "start": 1.2, "word": "world"}], "text" : "hello world"}`,
		`{"partial" : "how"}`,
		`{"partial" : "how are"}`,
	}
	type frame struct {
		n  int
		ok bool
	}
	frames := make(chan frame, 16)
	eof := make(chan string, 1)
	url := voskServer(t, func(c *websocket.Conn) {
		if !readConfig(t, c) {
			return
		}
		off, n := 0, 0
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if kind == websocket.TextMessage {
				eof <- string(msg)
				c.WriteMessage(websocket.TextMessage, []byte(`{"result" : [], "text" : " how are you "}`))
				return
			}
			ok := true
			for i := 0; i+1 < len(msg); i += 2 {
				if off+i/2 >= len(pcm) || int16(binary.LittleEndian.Uint16(msg[i:])) != pcm[off+i/2] {
					ok = false
					break
				}
			}
			off += len(msg) / 2
			frames <- frame{len(msg), ok}
			r := `{"partial" : "?"}`
			if n < len(replies) {
				r = replies[n]
			}
			n++
			c.WriteMessage(websocket.TextMessage, []byte(r))
		}
	})

	v := NewVosk(VoskConfig{URL: url})
	u, err := v.Open(context.Background(), "en")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i, want := range []string{"", "hello", "hello world"} {
		got, err := u.Write(pcm[320*i : 320*(i+1)])
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("partial %d = %q, want %q", i, got, want)
		}
	}
	// Two messages, two replies: the partial is the last one's, after the ended sentence.
	got, err := u.Write(pcm[960:])
	if err != nil || got != "hello world how are" {
		t.Errorf("partial = %q, %v; want hello world how are", got, err)
	}
	if p, err := u.Write(nil); err != nil || p != "hello world how are" {
		t.Errorf("empty write: %q, %v", p, err)
	}
	final, err := u.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if final != "hello world how are you" {
		t.Errorf("Finish = %q, want hello world how are you", final)
	}
	if m := <-eof; m != `{"eof" : 1}` {
		t.Errorf("end message %q, want {\"eof\" : 1}", m)
	}
	close(frames)
	var sizes []int
	for f := range frames {
		sizes = append(sizes, f.n)
		if !f.ok {
			t.Errorf("frame %d does not hold the samples written, little-endian", len(sizes))
		}
	}
	if len(sizes) != len(wantFrames) {
		t.Fatalf("frames of %v bytes, want %v", sizes, wantFrames)
	}
	for i := range sizes {
		if sizes[i] != wantFrames[i] {
			t.Errorf("frames of %v bytes, want %v", sizes, wantFrames)
			break
		}
	}
	if _, err := u.Write(pcm[:10]); err == nil {
		t.Error("Write after Finish succeeded")
	}
	if err := u.Close(); err != nil {
		t.Error(err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestVoskHTTPURL: an http:// URL means ws://.
func TestVoskHTTPURL(t *testing.T) {
	url := voskServer(t, func(c *websocket.Conn) {
		readConfig(t, c)
		c.ReadMessage()
		c.WriteMessage(websocket.TextMessage, []byte(`{"text" : "ok"}`))
	})
	u, err := NewVosk(VoskConfig{URL: "http" + strings.TrimPrefix(url, "ws")}).Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if got, err := u.Finish(); err != nil || got != "ok" {
		t.Errorf("Finish = %q, %v", got, err)
	}
}

func TestVoskErrors(t *testing.T) {
	ctx := context.Background()
	short := VoskConfig{Timeout: 300 * time.Millisecond}

	// The server refuses the WebSocket.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "model failed to load", http.StatusInternalServerError)
	}))
	defer srv.Close()
	if _, err := NewVosk(VoskConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http")}).Open(ctx, "en"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "500") {
		t.Errorf("500: %v", err)
	}
	// Nothing listens.
	if _, err := NewVosk(VoskConfig{URL: "ws" + strings.TrimPrefix(closedURL(t), "http")}).Open(ctx, "en"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no server: %v", err)
	}
	// A listener that never completes the handshake: Open returns by the time-out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	cfg := short
	cfg.URL = "ws://" + l.Addr().String()
	if _, err := NewVosk(cfg).Open(ctx, "en"); !errors.Is(err, ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Errorf("silent listener: %v after %v", err, time.Since(start))
	}

	// The server closes the connection after the config: Write fails, and so does all that follows.
	url := voskServer(t, func(c *websocket.Conn) { readConfig(t, c) })
	u, err := NewVosk(VoskConfig{URL: url}).Open(ctx, "en")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write(ramp(320, 0)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed connection: %v", err)
	}
	if _, err := u.Finish(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Finish after a failure: %v", err)
	}
	u.Close()

	// The server closes the connection instead of answering the end.
	url = voskServer(t, func(c *websocket.Conn) {
		readConfig(t, c)
		c.ReadMessage()
	})
	u, _ = NewVosk(VoskConfig{URL: url}).Open(ctx, "en")
	if _, err := u.Finish(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("no final result: %v", err)
	}
	u.Close()

	// A reply that is not Vosk's JSON.
	url = voskServer(t, func(c *websocket.Conn) {
		readConfig(t, c)
		c.ReadMessage()
		c.WriteMessage(websocket.TextMessage, []byte(`not json`))
		c.ReadMessage()
	})
	u, _ = NewVosk(VoskConfig{URL: url}).Open(ctx, "en")
	if _, err := u.Write(ramp(320, 0)); err == nil {
		t.Error("non-JSON reply: no error")
	}
	u.Close()

	// A server that never answers: Write and Finish return by the time-out.
	silent := func(c *websocket.Conn) {
		readConfig(t, c)
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return // the client has gone
			}
		}
	}
	cfg = short
	cfg.URL = voskServer(t, silent)
	u, err = NewVosk(cfg).Open(ctx, "en")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = u.Write(ramp(320, 0))
	if el := time.Since(start); !errors.Is(err, ErrUnavailable) || el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("silent server, Write: %v after %v", err, el)
	}
	u.Close()
	u, _ = NewVosk(cfg).Open(ctx, "en")
	start = time.Now()
	_, err = u.Finish()
	if el := time.Since(start); !errors.Is(err, ErrUnavailable) || el > 2*time.Second {
		t.Errorf("silent server, Finish: %v after %v", err, el)
	}
	u.Close()

	// The caller's context ends during a Write: it returns at once, with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	u, err = NewVosk(VoskConfig{URL: cfg.URL}).Open(cctx, "en")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	_, err = u.Write(ramp(320, 0))
	if el := time.Since(start); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || el > 2*time.Second {
		t.Errorf("cancelled: %v after %v", err, el)
	}
	u.Close()
}
