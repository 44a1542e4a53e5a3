package captions

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// VoskConfig configures a Vosk server (alphacep/vosk-server's WebSocket server) as a Recognizer.
type VoskConfig struct {
	// URL is the server's WebSocket address, e.g. "ws://127.0.0.1:2700"; http:// and https:// mean ws://
	// and wss://.
	URL string
	// Timeout bounds each exchange with the server (connecting, one reply; 10 s when zero), within the
	// context given to Open.
	Timeout time.Duration
}

// Vosk recognizes speech with a Vosk WebSocket server, one connection per utterance. A Vosk server loads
// one model, so the language is the one of the server URL points at: Open's lang is not sent anywhere, and a
// node that captions several languages with Vosk needs one Vosk (and one server) per language.
type Vosk struct {
	url     string
	timeout time.Duration
	dialer  *websocket.Dialer
}

// voskChunk is the most audio sent in one message (1 s): each message gets one reply, and the server's
// WebSocket library refuses messages over 1 MiB.
const voskChunk = SampleRate

// voskEOF is the end-of-stream message; the server compares it as a string, spaces included.
const voskEOF = `{"eof" : 1}`

// NewVosk returns a recognizer that dials cfg.URL for each utterance.
func NewVosk(cfg VoskConfig) *Vosk {
	u := strings.TrimSpace(cfg.URL)
	switch {
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	}
	t := timeoutOr(cfg.Timeout)
	return &Vosk{url: u, timeout: t, dialer: &websocket.Dialer{HandshakeTimeout: t}}
}

// Open connects to the server and configures the stream; lang is ignored (see Vosk).
func (v *Vosk) Open(ctx context.Context, lang string) (Utterance, error) {
	dctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	conn, resp, err := v.dialer.DialContext(dctx, v.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, unavailable(ctx, "vosk: dial "+v.url, err)
	}
	conn.SetReadLimit(maxResponseBytes)
	u := &voskUtterance{conn: conn, ctx: ctx, timeout: v.timeout}
	u.stop = context.AfterFunc(ctx, u.cancel)
	if err := u.send(websocket.TextMessage, []byte(fmt.Sprintf(`{"config":{"sample_rate":%d}}`, SampleRate))); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

type voskUtterance struct {
	conn    *websocket.Conn
	ctx     context.Context
	timeout time.Duration
	stop    func() bool

	// mu orders the context's cancellation against setting deadlines.
	mu        sync.Mutex
	cancelled bool

	done    []string // sentences the server has ended
	partial string
	err     error // the first failure: the connection is unusable after it
	state   int   // 0 open, 1 finished, 2 closed
}

// cancel runs when the utterance's context ends: it breaks any exchange in progress.
func (u *voskUtterance) cancel() {
	u.mu.Lock()
	u.cancelled = true
	u.conn.NetConn().SetDeadline(time.Unix(1, 0))
	u.mu.Unlock()
}

// deadline sets the deadline of the next exchange.
func (u *voskUtterance) deadline() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cancelled {
		return fmt.Errorf("vosk: %w", u.ctx.Err())
	}
	return u.conn.NetConn().SetDeadline(time.Now().Add(u.timeout))
}

func (u *voskUtterance) fail(what string, err error) error {
	u.err = unavailable(u.ctx, "vosk: "+what, err)
	return u.err
}

func (u *voskUtterance) send(kind int, msg []byte) error {
	if err := u.deadline(); err != nil {
		u.err = err
		return err
	}
	if err := u.conn.WriteMessage(kind, msg); err != nil {
		return u.fail("send", err)
	}
	return nil
}

// voskReply is one of the server's replies: {"partial": "..."} while a sentence lasts, {"text": "..."}
// (with "result" word timings, ignored) when the server ends one.
type voskReply struct {
	Partial *string `json:"partial"`
	Text    *string `json:"text"`
}

func (u *voskUtterance) receive() (voskReply, error) {
	var r voskReply
	kind, rd, err := u.conn.NextReader()
	if err != nil {
		return r, u.fail("receive", err)
	}
	b, err := io.ReadAll(io.LimitReader(rd, maxResponseBytes))
	if err != nil {
		return r, u.fail("receive", err)
	}
	if kind != websocket.TextMessage {
		u.err = fmt.Errorf("vosk: server sent a binary message")
		return r, u.err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		u.err = fmt.Errorf("vosk: decoding %q: %w", clip(string(b), 200), err)
		return r, u.err
	}
	if r.Text != nil {
		if t := strings.TrimSpace(*r.Text); t != "" {
			u.done = append(u.done, t)
		}
		u.partial = ""
	} else if r.Partial != nil {
		u.partial = strings.TrimSpace(*r.Partial)
	}
	return r, nil
}

// text is everything recognized so far: the sentences the server has ended, then the current partial.
func (u *voskUtterance) text() string {
	if u.partial == "" {
		return strings.Join(u.done, " ")
	}
	return strings.TrimSpace(strings.Join(u.done, " ") + " " + u.partial)
}

func (u *voskUtterance) usable(op string) error {
	switch {
	case u.err != nil:
		return u.err
	case u.state == 1:
		return fmt.Errorf("vosk: %s after finish", op)
	case u.state == 2:
		return fmt.Errorf("vosk: %s after close", op)
	}
	return nil
}

// Write sends pcm and returns the utterance's text so far: the sentences the server has ended within it
// followed by its partial hypothesis for the current one.
func (u *voskUtterance) Write(pcm []int16) (string, error) {
	if err := u.usable("write"); err != nil {
		return "", err
	}
	for len(pcm) > 0 {
		n := min(len(pcm), voskChunk)
		b := make([]byte, 2*n)
		for i, s := range pcm[:n] {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
		}
		pcm = pcm[n:]
		if err := u.send(websocket.BinaryMessage, b); err != nil {
			return "", err
		}
		if _, err := u.receive(); err != nil {
			return "", err
		}
	}
	return u.text(), nil
}

// Finish ends the stream and returns all the utterance's sentences, joined with spaces.
func (u *voskUtterance) Finish() (string, error) {
	if err := u.usable("finish"); err != nil {
		return "", err
	}
	u.state = 1
	if err := u.send(websocket.TextMessage, []byte(voskEOF)); err != nil {
		return "", err
	}
	for {
		r, err := u.receive()
		if err != nil {
			return "", err
		}
		if r.Text != nil {
			break
		}
	}
	u.partial = ""
	return strings.TrimSpace(u.text()), nil
}

// Close closes the connection.
func (u *voskUtterance) Close() error {
	if u.state == 2 {
		return nil
	}
	u.state = 2
	u.stop()
	if u.err == nil {
		u.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(min(u.timeout, time.Second)))
	}
	if err := u.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("vosk: close: %w", err)
	}
	return nil
}
