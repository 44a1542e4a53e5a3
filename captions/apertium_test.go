package captions

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireApertium fails the test unless the real apertium and its eng-spa pair are installed.
func requireApertium(t *testing.T) {
	t.Helper()
	path, err := exec.LookPath("apertium")
	if err != nil {
		t.Fatalf("apertium is not installed (%v): run `make deps` to install apertium and apertium-eng-spa", err)
	}
	out, err := exec.Command(path, "-l").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eng-spa") {
		t.Fatalf("apertium has no eng-spa pair (%v, `apertium -l` says %q): run `make deps` to install apertium-eng-spa", err, out)
	}
}

// currentProc returns the pair's running process, or nil.
func currentProc(a *Apertium, mode string) *apertiumProc {
	p := a.pairs[mode]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestApertiumCodes(t *testing.T) {
	for in, want := range map[string]string{
		"en": "eng", "en-US": "eng", "EN_gb": "eng", "es": "spa", "es-419": "spa", "ca": "cat", "fr": "fra",
		"pt-BR": "por", "it": "ita", "de": "deu", "eo": "epo", "eng": "eng", "spa": "spa", "oci": "oci",
	} {
		if got := apertiumCode(in); got != want {
			t.Errorf("apertiumCode(%q) = %q, want %q", in, got, want)
		}
	}
	a := NewApertium(ApertiumConfig{Pairs: []string{"eng-spa", "spa-eng", "en-eo"}})
	defer a.Close()
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"en", "es", true}, {"en-US", "es-ES", true}, {"eng", "spa", true}, {"es", "en", true},
		{"en", "eo", true}, {"en", "fr", false}, {"en", "en", false}, {"es", "es-MX", false}, {"", "es", false},
		{"zh-Hans", "en", false},
	} {
		if got := a.Supports(c.from, c.to); got != c.want {
			t.Errorf("Supports(%q, %q) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if _, err := a.Translate(context.Background(), "hello", "en", "fr"); err == nil {
		t.Error("Translate to an unconfigured pair succeeded")
	}
}

func TestApertiumInputOutput(t *testing.T) {
	for in, want := range map[string]string{
		"hello\nworld\r\n":           "hello world",
		"a [b] ^c$ d/e <f> {g} \\h":  "a b c d e f g h",
		"x@y *z #w ~v |u":            "x y z w v u",
		"nul\x00inside\ttab":         "nul inside tab",
		"  café  naïve  ":            "café naïve",
		"bad \xff utf8":              "bad \uFFFD utf8",
		"   \n\t  ":                  "",
		"The world is big. Really?!": "The world is big. Really?!",
	} {
		if got := apertiumInput(in); got != want {
			t.Errorf("apertiumInput(%q) = %q, want %q", in, got, want)
		}
	}
	if got := apertiumOutput("[<sfu:12>]*qwzx  #ir @foo casa. ", "[<sfu:12>]"); got != "qwzx ir foo casa." {
		t.Errorf("apertiumOutput = %q", got)
	}
}

// TestApertiumEngSpa translates with the real Debian apertium and apertium-eng-spa.
func TestApertiumEngSpa(t *testing.T) {
	requireApertium(t)
	a := NewApertium(ApertiumConfig{Pairs: []string{"eng-spa"}, Timeout: 20 * time.Second})
	defer a.Close()
	ctx := context.Background()

	got, err := a.Translate(ctx, "Hello world", "en", "es")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Hello world → %q", got)
	if !strings.Contains(got, "mundo") && !strings.Contains(got, "Hola") {
		t.Errorf("Hello world → %q: want mundo or Hola", got)
	}

	for _, c := range []struct{ in, want string }{
		// lt-proc drops a full stop just before the NUL: the trailing space keeps it.
		{"The world is big.", "El mundo es grande."},
		{"Good morning\nmy friend", "amigo"},
		{"I like the house", "casa"},
		// An unknown word comes back without its * mark.
		{"qwzx is here", "qwzx"},
		// Stream-format characters would make apertium fail ("Malformed input stream") or hang.
		{"the cat [sic] ate 1/2 of it <really> ^_^ $5 @home #tag", "gato"},
	} {
		start := time.Now()
		got, err := a.Translate(ctx, c.in, "en-US", "es")
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		t.Logf("%q → %q in %v", c.in, got, time.Since(start).Round(time.Millisecond))
		if !strings.Contains(got, c.want) {
			t.Errorf("%q → %q: want it to contain %q", c.in, got, c.want)
		}
		if strings.ContainsAny(got, "*#@\n\x00[]") {
			t.Errorf("%q → %q: marks, newlines, NULs or tags left", c.in, got)
		}
	}

	// Concurrent calls are serialized and each gets its own answer.
	words := map[string]string{"the house": "casa", "the cat": "gato", "the dog": "perro", "the book": "libro", "the tree": "árbol"}
	var wg sync.WaitGroup
	for in, want := range words {
		wg.Go(func() {
			got, err := a.Translate(ctx, in, "en", "es")
			if err != nil {
				t.Errorf("%q: %v", in, err)
			} else if !strings.Contains(strings.ToLower(got), want) {
				t.Errorf("%q → %q: want %q", in, got, want)
			}
		})
	}
	wg.Wait()
	if got, err := a.Translate(ctx, " \n ", "en", "es"); got != "" || err != nil {
		t.Errorf("blank text → %q, %v", got, err)
	}
}

// TestApertiumRestart kills the real apertium: the next call fails, and one after the back-off works.
func TestApertiumRestart(t *testing.T) {
	requireApertium(t)
	a := NewApertium(ApertiumConfig{Pairs: []string{"eng-spa"}, Timeout: 20 * time.Second})
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Translate(ctx, "Hello world", "en", "es"); err != nil {
		t.Fatal(err)
	}
	proc := currentProc(a, "eng-spa")
	if proc == nil {
		t.Fatal("no process after a translation")
	}
	if err := proc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proc.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the killed process was not noticed")
	}

	_, err := a.Translate(ctx, "Hello world", "en", "es")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after the kill: err = %v, want ErrUnavailable", err)
	}
	t.Logf("after the kill: %v", err)
	// The pipeline behind the killed shell is gone too, and its goroutines have ended.
	if !closed(proc.readerDone) || !closed(proc.stderrDone) {
		t.Error("the dead process's readers are still running")
	}
	_, err = a.Translate(ctx, "Hello world", "en", "es")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "restarting in") {
		t.Fatalf("within the back-off: err = %v, want ErrUnavailable restarting in …", err)
	}

	p := a.pairs["eng-spa"]
	p.mu.Lock()
	wait := time.Until(p.retryAt)
	p.mu.Unlock()
	if wait <= 0 || wait > apertiumBackoffMin {
		t.Fatalf("back-off of %v, want (0, %v]", wait, apertiumBackoffMin)
	}
	time.Sleep(wait + 20*time.Millisecond)
	got, err := a.Translate(ctx, "The world is big.", "en", "es")
	if err != nil {
		t.Fatalf("after the back-off: %v", err)
	}
	if !strings.Contains(got, "mundo") {
		t.Errorf("after the restart: %q", got)
	}
	if np := currentProc(a, "eng-spa"); np == nil || np == proc {
		t.Error("no new process after the restart")
	}
}

// fakeApertium writes a stand-in for apertium: it echoes each NUL-terminated record, except that for the
// pair eng-nev it reads and never answers, for eng-hng it hangs on the second non-blank record, and for
// eng-fal it exits at once with an error.
func fakeApertium(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apertium")
	script := `#!/bin/bash
# arguments: -f none -z PAIR
[ "$1 $2 $3" = "-f none -z" ] || { echo "bad arguments: $*" >&2; exit 2; }
case "$4" in
eng-nev) while IFS= read -r -d "" rec; do :; done; exit 0 ;;
eng-fal) echo "Error: Mode eng-fal does not exist." >&2; exit 1 ;;
esac
n=0
while IFS= read -r -d '' rec; do
  case "$rec" in *[![:space:]]*) ;; *) printf ' \0'; continue ;; esac
  n=$((n+1))
  if [ "$4" = eng-hng ] && [ "$n" -ge 2 ]; then exec sleep 1000; fi
  printf '%s\0' "$rec"
done
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApertiumFakeTimeouts(t *testing.T) {
	cmd := fakeApertium(t)
	before := runtime.NumGoroutine()
	a := NewApertium(ApertiumConfig{Pairs: []string{"eng-spa", "eng-nev", "eng-hng", "eng-fal"}, Command: cmd, Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	// The fake maps codes like the real one: eng-spa is en → es.
	if got, err := a.Translate(ctx, "hello\nthere [x]", "en", "es"); err != nil || got != "hello there x" {
		t.Fatalf("echo: %q, %v", got, err)
	}

	// A process that never answers: the call returns by the time-out. It has never answered, so it may
	// still be starting: it is left running.
	start := time.Now()
	_, err := a.Translate(ctx, "hello", "en", "nev")
	if el := time.Since(start); !errors.Is(err, ErrUnavailable) || el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("eng-nev: err = %v after %v, want ErrUnavailable after about 300ms", err, el)
	}
	if currentProc(a, "eng-nev") == nil {
		t.Error("a process that is still starting was killed")
	}

	// One that answered once and then hangs is killed, and not restarted within the back-off.
	if got, err := a.Translate(ctx, "one", "en", "hng"); err != nil || got != "one" {
		t.Fatalf("eng-hng, first call: %q, %v", got, err)
	}
	proc := currentProc(a, "eng-hng")
	start = time.Now()
	_, err = a.Translate(ctx, "two", "en", "hng")
	if el := time.Since(start); !errors.Is(err, ErrUnavailable) || el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("eng-hng: err = %v after %v, want ErrUnavailable after about 300ms", err, el)
	}
	if currentProc(a, "eng-hng") != nil || !closed(proc.exited) {
		t.Error("the hung process was not killed")
	}
	if _, err = a.Translate(ctx, "three", "en", "hng"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("within the back-off: %v", err)
	}

	// One that exits at once: its error is reported.
	_, err = a.Translate(ctx, "hello", "en", "fal")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("eng-fal: %v", err)
	}

	// A cancelled context ends the wait at once, without ErrUnavailable.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = a.Translate(cctx, "hello", "en", "nev")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled: %v", err)
	}

	never := currentProc(a, "eng-nev")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !closed(never.exited) || !closed(never.readerDone) || !closed(never.stderrDone) {
		t.Error("Close left the process or its readers running")
	}
	if _, err := a.Translate(ctx, "hello", "en", "es"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("after Close: %v", err)
	}
	waitGoroutines(t, before)
}

func TestApertiumMissingCommand(t *testing.T) {
	a := NewApertium(ApertiumConfig{Pairs: []string{"eng-spa"}, Command: filepath.Join(t.TempDir(), "no-apertium")})
	defer a.Close()
	_, err := a.Translate(context.Background(), "hello", "en", "es")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	t.Log(err)
}
