package captions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// ApertiumConfig configures Apertium, the rule-based translator, run locally.
type ApertiumConfig struct {
	// Pairs lists the Apertium modes to use, e.g. "eng-spa" (`apertium -l` lists the installed ones).
	Pairs []string
	// Command is the apertium program ("apertium" on PATH when empty). It is run as
	// `Command -f none -z PAIR`, and must answer each NUL-terminated input with a NUL-terminated output.
	Command string
	// Timeout bounds each translation (10 s when zero), within the context given to Translate.
	Timeout time.Duration
}

// Apertium translates with one long-lived `apertium -f none -z PAIR` process per pair, started on first use
// and restarted, after a back-off, when it dies or hangs. Close stops the processes.
//
// The apertium program is a shell script whose null-flush pipeline is wrapped in two gawk filters that hold
// each record back until more input arrives, so an answer only comes out once later input pushes it: while
// waiting, Translate keeps writing empty records (" \x00"), and it marks each input with a numbered
// superblank ("[<sfu:N>]", which Apertium passes through untouched) to tell its answer from the empty
// ones and from answers to calls that gave up. Inputs lose the characters that Apertium's stream format
// reserves (\ [ ] ^ $ / < > { } @ * # ~ |) and control characters, and end with a space: lt-proc drops a
// full stop just before the NUL, and its bilingual mode hangs on a record that ends in a word.
type Apertium struct {
	command string
	timeout time.Duration
	pairs   map[string]*apertiumPair
}

const (
	apertiumBackoffMin = time.Second
	apertiumBackoffMax = 30 * time.Second
	// apertiumPump is how often an empty record is written while an answer is awaited.
	apertiumPump = 10 * time.Millisecond
	// apertiumStartGrace is how long a process that has not answered yet may take to start (loading its
	// transducers) before a time-out counts against it: until then a call that times out leaves it running.
	apertiumStartGrace = 30 * time.Second
	// apertiumMaxInput bounds the text of one call, in bytes.
	apertiumMaxInput = 16 << 10
)

// NewApertium returns a Translator for cfg.Pairs. No process starts until a pair is first used.
func NewApertium(cfg ApertiumConfig) *Apertium {
	a := &Apertium{command: cfg.Command, timeout: timeoutOr(cfg.Timeout), pairs: make(map[string]*apertiumPair)}
	if a.command == "" {
		a.command = "apertium"
	}
	for _, p := range cfg.Pairs {
		p = strings.TrimSpace(p)
		if p == "" || a.pairs[p] != nil {
			continue
		}
		a.pairs[p] = &apertiumPair{a: a, mode: p, sem: make(chan struct{}, 1), backoff: apertiumBackoffMin}
	}
	return a
}

// apertiumCodes maps ISO 639-1 codes to Apertium's ISO 639-3 ones.
var apertiumCodes = map[string]string{
	"en": "eng", "es": "spa", "ca": "cat", "fr": "fra", "pt": "por", "it": "ita", "de": "deu", "eo": "epo",
	"gl": "glg", "oc": "oci", "an": "arg", "ast": "ast", "eu": "eus", "ro": "ron", "nl": "nld", "af": "afr",
	"nb": "nob", "nn": "nno", "sv": "swe", "da": "dan", "is": "isl", "cy": "cym", "br": "bre", "ga": "gle",
	"mt": "mlt", "ar": "ara", "he": "heb", "ru": "rus", "uk": "ukr", "be": "bel", "pl": "pol", "cs": "ces",
	"sk": "slk", "sl": "slv", "hr": "hbs", "sr": "hbs", "bs": "hbs", "bg": "bul", "mk": "mkd", "kk": "kaz",
	"tt": "tat", "tr": "tur", "ms": "msa", "id": "ind", "hi": "hin", "ur": "urd", "sc": "srd", "co": "cos",
}

// apertiumCode maps a caption language to Apertium's code: region dropped, two-letter codes to three.
func apertiumCode(lang string) string {
	l := strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(l, "-_"); i >= 0 {
		l = l[:i]
	}
	if c, ok := apertiumCodes[l]; ok {
		return c
	}
	return l
}

func (a *Apertium) pair(from, to string) *apertiumPair {
	f, t := apertiumCode(from), apertiumCode(to)
	if f == "" || t == "" || f == t {
		return nil
	}
	if p := a.pairs[f+"-"+t]; p != nil {
		return p
	}
	// Older pairs are named with two-letter codes ("en-es").
	return a.pairs[strings.ToLower(from)+"-"+strings.ToLower(to)]
}

// Supports reports whether a configured pair goes from one language to the other.
func (a *Apertium) Supports(from, to string) bool { return a.pair(from, to) != nil }

// Translate translates text. Errors from a process that is missing, dead, hung or waiting out its back-off
// wrap ErrUnavailable.
func (a *Apertium) Translate(ctx context.Context, text, from, to string) (string, error) {
	p := a.pair(from, to)
	if p == nil {
		return "", fmt.Errorf("apertium: no pair configured for %s to %s", from, to)
	}
	in := apertiumInput(text)
	if in == "" {
		return "", nil
	}
	if len(in) > apertiumMaxInput {
		return "", fmt.Errorf("apertium %s: text of %d bytes is over the limit of %d", p.mode, len(in), apertiumMaxInput)
	}
	return p.translate(ctx, in)
}

// Close stops every pair's process and the goroutines that serve it. Later calls fail.
func (a *Apertium) Close() error {
	for _, p := range a.pairs {
		p.mu.Lock()
		p.closed = true
		proc := p.proc
		p.proc = nil
		p.mu.Unlock()
		if proc != nil {
			proc.stop()
		}
	}
	return nil
}

// apertiumInput makes text safe for Apertium's stream format: reserved and control characters (newlines
// among them) become spaces, runs of spaces one space.
func apertiumInput(text string) string {
	var b strings.Builder
	for _, r := range text {
		if unicode.IsControl(r) || strings.ContainsRune(`\[]^$/<>{}@*#~|`, r) {
			r = ' '
		}
		b.WriteRune(r) // invalid UTF-8 has become U+FFFD
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// apertiumOutput strips a record of its tag and of Apertium's marks (* unknown word, # generation failed,
// @ not in the bilingual dictionary): the input had none of those characters, so every one is a mark.
func apertiumOutput(rec, tag string) string {
	rec = strings.Replace(rec, tag, "", 1)
	rec = strings.Map(func(r rune) rune {
		switch r {
		case '*', '#', '@':
			return -1
		}
		return r
	}, rec)
	return strings.Join(strings.Fields(rec), " ")
}

// apertiumPair is one mode's process and what serializes its calls.
type apertiumPair struct {
	a    *Apertium
	mode string
	sem  chan struct{} // held by the call in progress
	seq  uint64        // tags; guarded by sem

	mu      sync.Mutex // guards what follows
	proc    *apertiumProc
	closed  bool
	backoff time.Duration // the next back-off
	retryAt time.Time     // no start before
	lastErr error
}

func (p *apertiumPair) translate(ctx context.Context, in string) (string, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("apertium %s: %w", p.mode, ctx.Err())
	}
	defer func() { <-p.sem }()
	timer := time.NewTimer(p.a.timeout)
	defer timer.Stop()
	// Writes block only when the pipe is full, which takes a hung process: they get the whole time-out,
	// the caller's context aside, and failing them kills the process.
	deadline := time.Now().Add(p.a.timeout)

	proc, err := p.process()
	if err != nil {
		return "", err
	}
	p.seq++
	tag := "[<sfu:" + strconv.FormatUint(p.seq, 10) + ">]"
	proc.stdin.SetWriteDeadline(deadline)
	if _, err := io.WriteString(proc.stdin, tag+in+" \x00"); err != nil {
		return "", p.writeFailed(proc, err)
	}
	pump := time.NewTicker(apertiumPump)
	defer pump.Stop()
	for {
		select {
		case rec := <-proc.records:
			if !strings.Contains(rec, tag) {
				continue // the answer to a call that gave up
			}
			proc.ready = true
			p.mu.Lock()
			p.backoff = apertiumBackoffMin
			p.mu.Unlock()
			return apertiumOutput(rec, tag), nil
		case <-pump.C:
			if _, err := io.WriteString(proc.stdin, " \x00"); err != nil {
				return "", p.writeFailed(proc, err)
			}
		case <-proc.exited:
			return "", p.fail(proc, proc.exitError())
		case <-timer.C:
			if !proc.ready && time.Since(proc.started) < apertiumStartGrace {
				return "", fmt.Errorf("apertium %s: %w: no answer within %v while starting", p.mode, ErrUnavailable, p.a.timeout)
			}
			return "", p.fail(proc, fmt.Errorf("no answer within %v", p.a.timeout))
		case <-ctx.Done():
			// The process may be fine: its late answer will be told from the next one by its tag.
			return "", fmt.Errorf("apertium %s: %w", p.mode, ctx.Err())
		}
	}
}

// process returns the running process, starting it if the back-off allows.
func (p *apertiumPair) process() (*apertiumProc, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("apertium %s: %w: closed", p.mode, ErrUnavailable)
	}
	if proc := p.proc; proc != nil {
		p.mu.Unlock()
		select {
		case <-proc.exited: // it died while idle
			return nil, p.fail(proc, proc.exitError())
		default:
			return proc, nil
		}
	}
	defer p.mu.Unlock()
	if wait := time.Until(p.retryAt); wait > 0 {
		return nil, fmt.Errorf("apertium %s: %w: restarting in %v after: %v", p.mode, ErrUnavailable,
			wait.Round(time.Millisecond), p.lastErr)
	}
	proc, err := startApertium(p.a.command, p.mode)
	if err != nil {
		return nil, p.failed(err)
	}
	p.proc = proc
	return proc, nil
}

// failed records a failure and schedules the next start; p.mu is held.
func (p *apertiumPair) failed(err error) error {
	p.lastErr = err
	p.retryAt = time.Now().Add(p.backoff)
	p.backoff = min(2*p.backoff, apertiumBackoffMax)
	return fmt.Errorf("apertium %s: %w: %w", p.mode, ErrUnavailable, err)
}

// writeFailed reports a write to proc that failed: a broken pipe means it exited, and what it said on the way
// out says more than the pipe does.
func (p *apertiumPair) writeFailed(proc *apertiumProc, err error) error {
	select {
	case <-proc.exited:
		return p.fail(proc, proc.exitError())
	case <-time.After(200 * time.Millisecond):
		return p.fail(proc, fmt.Errorf("writing: %w", err))
	}
}

// fail kills proc after it failed a call.
func (p *apertiumPair) fail(proc *apertiumProc, err error) error {
	p.mu.Lock()
	if p.proc == proc {
		p.proc = nil
		err = p.failed(err)
	} else {
		err = fmt.Errorf("apertium %s: %w: %w", p.mode, ErrUnavailable, err) // closed meanwhile
	}
	p.mu.Unlock()
	proc.stop()
	return err
}

// apertiumProc is one running `apertium -f none -z PAIR`, in its own process group so that killing it
// kills its whole pipeline.
type apertiumProc struct {
	cmd     *exec.Cmd
	stdin   *os.File
	stdout  *os.File
	errOut  *os.File
	started time.Time
	ready   bool // it has answered; guarded by its pair's sem

	records    chan string   // non-blank output records
	exited     chan struct{} // closed when the process has exited and its group is killed
	readerDone chan struct{}
	stderrDone chan struct{}
	quit       chan struct{}
	stopOnce   sync.Once

	waitErr error // set before exited closes

	stderrMu sync.Mutex
	stderr   []byte // the last of what it wrote there
}

func startApertium(command, mode string) (*apertiumProc, error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err1 := pipe()
	outR, outW, err2 := pipe()
	errR, errW, err3 := pipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		closeAll()
		return nil, err
	}
	cmd := exec.Command(command, "-f", "none", "-z", mode)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("starting %s (install Apertium and the %s pair): %w", command, mode, err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	p := &apertiumProc{
		cmd:        cmd,
		stdin:      inW,
		stdout:     outR,
		errOut:     errR,
		started:    time.Now(),
		records:    make(chan string, 4),
		exited:     make(chan struct{}),
		readerDone: make(chan struct{}),
		stderrDone: make(chan struct{}),
		quit:       make(chan struct{}),
	}
	go p.wait()
	go p.readRecords()
	go p.readStderr()
	return p, nil
}

func (p *apertiumProc) wait() {
	p.waitErr = p.cmd.Wait()
	p.kill() // the rest of the pipeline
	close(p.exited)
}

// kill kills the process group.
func (p *apertiumProc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Process.Kill()
}

// stop kills the process and waits for its goroutines to end.
func (p *apertiumProc) stop() {
	p.stopOnce.Do(func() {
		close(p.quit)
		p.kill()
	})
	<-p.exited
	// The readers end at EOF, once the whole group is dead; closing their ends makes sure of it.
	p.stdout.Close()
	p.errOut.Close()
	<-p.readerDone
	<-p.stderrDone
	p.stdin.Close()
}

func (p *apertiumProc) readRecords() {
	r := p.stdout
	defer close(p.readerDone)
	defer p.kill() // without its output the process is no use
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, 0)
			if i < 0 {
				break
			}
			rec := string(pending[:i])
			pending = pending[i+1:]
			if strings.TrimSpace(rec) == "" {
				continue // the answer to an empty record
			}
			select {
			case p.records <- rec:
			case <-p.quit:
				return
			}
		}
		if err != nil || len(pending) > maxResponseBytes {
			return
		}
		if len(pending) == 0 {
			pending = nil // let the buffer go
		}
	}
}

func (p *apertiumProc) readStderr() {
	r := p.errOut
	defer close(p.stderrDone)
	buf := make([]byte, 4<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p.stderrMu.Lock()
			p.stderr = append(p.stderr, buf[:n]...)
			if len(p.stderr) > 1<<10 {
				p.stderr = p.stderr[len(p.stderr)-1<<10:]
			}
			p.stderrMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// exitError describes the process's end; exited is closed.
func (p *apertiumProc) exitError() error {
	select { // let what it said last arrive
	case <-p.stderrDone:
	case <-time.After(200 * time.Millisecond):
	}
	p.stderrMu.Lock()
	msg := strings.TrimSpace(strings.ToValidUTF8(string(p.stderr), ""))
	p.stderrMu.Unlock()
	err := p.waitErr
	if err == nil {
		err = errors.New("exited")
	}
	if msg != "" {
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && utf8.RuneCountInString(msg) > 300 {
			msg = msg[i+1:]
		}
		return fmt.Errorf("%w: %s", err, clip(msg, 300))
	}
	return err
}
