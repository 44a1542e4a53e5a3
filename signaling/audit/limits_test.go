package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// records returns every record of the log in dir, decoded, with its line.
func records(t *testing.T, dir string) (lines [][]byte, recs []line) {
	t.Helper()
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for _, l := range readLines(t, filepath.Join(dir, f)) {
			l = bytes.TrimSuffix(l, []byte{'\n'})
			rec, _, err := checkLine(l)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			lines, recs = append(lines, l), append(recs, rec)
		}
	}
	return lines, recs
}

func number(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// TestBoundedFields: every string of a record, top-level or in its detail, is cut to a small size in JSON and
// its original length recorded.
func TestBoundedFields(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("<", 60000)
	if err := l.Write(Record{Kind: KindAdmin, Room: long, Identity: "alice", Remote: "192.0.2.1:5000",
		Detail: map[string]any{"track": long, "action": "mute", "list": []string{"a", long}, "n": 3}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines, recs := records(t, dir)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	if n := len(lines[1]); n >= 2048 {
		t.Fatalf("record is %d bytes, want < 2 KB", n)
	}
	rec := recs[1]
	tr, _ := rec.Detail["truncated"].(map[string]any)
	if number(tr["room"]) != 60000 || number(tr["detail.track"]) != 60000 || number(tr["detail.list.1"]) != 60000 {
		t.Fatalf("truncated %v", rec.Detail["truncated"])
	}
	if rec.Identity != "alice" || rec.Remote != "192.0.2.1:5000" || rec.Detail["action"] != "mute" || number(rec.Detail["n"]) != 3 {
		t.Fatalf("short fields changed: %+v", rec)
	}
	if !strings.HasPrefix(long, rec.Room) || len(rec.Room) == 0 {
		t.Fatalf("room %q", rec.Room)
	}
	for _, s := range []string{strings.Repeat("\x01", 1000), strings.Repeat("é", 1000), strings.Repeat("\xff", 1000)} {
		b, _ := boundString(s)
		enc, _ := json.Marshal(b)
		if len(enc)-2 > maxFieldBytes {
			t.Errorf("%q... bounded to %d bytes of JSON", s[:4], len(enc)-2)
		}
	}
	if rep := mustVerify(t, dir); !rep.OK() {
		t.Fatalf("problems %q", rep.Problems)
	}
}

// TestCollapsedRefusals: 1,000 identical refusals from one source are the window's allowance and one summary
// with the count of the rest; another source is counted on its own; a refusal after the window first writes
// the summary.
func TestCollapsedRefusals(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1}
	l, err := Open(dir, Options{Now: c.now, RefusalBurst: 3, RefusalWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ { // 1,000 ms of the test clock: one window
		if err := l.Write(Record{Kind: KindAuthFailure, Remote: fmt.Sprintf("192.0.2.7:%d", 1000+i), Refused: true,
			Detail: map[string]any{"endpoint": "transcript", "error": "invalid token"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Write(Record{Kind: KindAuthFailure, Remote: "198.51.100.1:1", Refused: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{Kind: KindJoin, Remote: "192.0.2.7:1"}); err != nil { // not a refusal: written
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	_, recs := records(t, dir)
	if len(recs) != 1+3+1+1 {
		t.Fatalf("%d records before the window ends, want open, 3 refusals, the other source and the join", len(recs))
	}
	c.set(day1.Add(2 * time.Hour)) // the window has ended: the next refusal writes the summary first
	if err := l.Write(Record{Kind: KindAuthFailure, Remote: "192.0.2.7:2", Refused: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines, recs := records(t, dir)
	var kinds []string
	size := 0
	for i, r := range recs {
		kinds = append(kinds, r.Kind)
		size += len(lines[i]) + 1
	}
	want := []string{KindOpen, KindAuthFailure, KindAuthFailure, KindAuthFailure, KindAuthFailure, KindJoin, KindSuppressed, KindAuthFailure}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	s := recs[6]
	if number(s.Detail["count"]) != 997 || s.Detail["kind"] != KindAuthFailure || s.Remote != "192.0.2.7" {
		t.Fatalf("summary %+v", s)
	}
	if size > 4<<10 {
		t.Fatalf("log is %d bytes", size)
	}
	rep := mustVerify(t, dir)
	if !rep.OK() || rep.Suppressed != 997 {
		t.Fatalf("report %+v", rep)
	}
}

// failingWriter fails every write while fail is set; while block is set, a write waits for release.
type failingWriter struct {
	fail    atomic.Bool
	block   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (fw *failingWriter) wrap(w io.Writer) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		if fw.block.Load() {
			fw.block.Store(false)
			fw.entered <- struct{}{}
			select {
			case <-fw.release:
			case <-time.After(10 * time.Second):
			}
		}
		if fw.fail.Load() {
			return 0, errors.New("injected write failure")
		}
		return w.Write(b)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestGapAfterWriteFailure: records that failed to be written are counted in a gap record written before the
// next record, which Verify reports.
func TestGapAfterWriteFailure(t *testing.T) {
	dir := t.TempDir()
	fw := &failingWriter{}
	l, err := Open(dir, Options{wrap: fw.wrap})
	if err != nil {
		t.Fatal(err)
	}
	write := func(id string) {
		t.Helper()
		if err := l.Write(Record{Kind: KindJoin, Identity: id}); err != nil {
			t.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	fw.fail.Store(true)
	write("b")
	write("c")
	fw.fail.Store(false)
	write("d")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	_, recs := records(t, dir)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.Kind+":"+r.Identity)
	}
	if got := strings.Join(ids, " "); got != "open: join:a gap: join:d" {
		t.Fatalf("records %s", got)
	}
	if g := recs[2].Detail; number(g["lost"]) != 2 || number(g["write_failures"]) != 2 {
		t.Fatalf("gap %v", g)
	}
	rep := mustVerify(t, dir)
	if !rep.OK() || rep.Lost != 2 || len(rep.Gaps) != 1 || !strings.HasPrefix(rep.Gaps[0], dayFileOf(recs[2])+":3:") {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("gaps: %q", rep.Gaps)
}

func dayFileOf(r line) string {
	return "audit-" + r.TS[:10] + ".jsonl"
}

// TestGapAfterQueueOverflow: records dropped because the queue was full are counted in a gap record.
func TestGapAfterQueueOverflow(t *testing.T) {
	dir := t.TempDir()
	fw := &failingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := Open(dir, Options{wrap: fw.wrap, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	fw.block.Store(true)
	if err := l.Write(Record{Kind: KindJoin, Identity: "first"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fw.entered: // the writer holds "first"; the queue is empty
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not start writing")
	}
	dropped := 0
	for i := 0; i < 10; i++ {
		err := l.Write(Record{Kind: KindLeave, Identity: fmt.Sprint(i)})
		switch {
		case errors.Is(err, ErrQueueFull):
			dropped++
		case err != nil:
			t.Fatal(err)
		}
	}
	close(fw.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if dropped != 6 {
		t.Fatalf("%d dropped, want 6 (a queue of 4)", dropped)
	}
	_, recs := records(t, dir)
	if len(recs) != 1+1+1+4 || recs[2].Kind != KindGap || number(recs[2].Detail["dropped"]) != 6 || number(recs[2].Detail["lost"]) != 6 {
		t.Fatalf("records %+v", recs)
	}
	if rep := mustVerify(t, dir); !rep.OK() || rep.Lost != 6 {
		t.Fatalf("report %+v", rep)
	}
}

// TestHead: Head gives the last record of the newest file, what Verify reports as the last.
func TestHead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Head(dir); !errors.Is(err, ErrNoRecords) {
		t.Fatalf("empty dir: %v", err)
	}
	writeDays(t, dir, 2, 3)
	rep := mustVerify(t, dir)
	a, err := Head(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Seq != rep.LastSeq || a.Hash != rep.LastHash || !a.Time.Equal(rep.Last) || a.File != dayFile(2) {
		t.Fatalf("head %+v, report %+v", a, rep)
	}
	if _, err := Head(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrNoRecords) {
		t.Fatalf("missing dir: %v", err)
	}
}

// TestWriteConcurrentWithClose: writers racing Close get either success or os.ErrClosed, never a panic.
func TestWriteConcurrentWithClose(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				err := l.Write(Record{Kind: KindLimit, Refused: true, Remote: "192.0.2.9:1"})
				if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, ErrQueueFull) {
					t.Error(err)
					return
				}
				_ = l.Flush()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
