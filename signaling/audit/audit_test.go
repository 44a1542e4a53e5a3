package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var day1 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func dayFile(d int) string {
	return "audit-" + day1.AddDate(0, 0, d-1).Format("2006-01-02") + ".jsonl"
}

// writeDays writes perDay join records on each of days 1..days (Open's "open" record goes to day 1).
func writeDays(t *testing.T, dir string, days, perDay int) {
	t.Helper()
	c := &clock{t: day1}
	l, err := Open(dir, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for d := 1; d <= days; d++ {
		c.set(day1.AddDate(0, 0, d-1))
		for i := 0; i < perDay; i++ {
			if err := l.Write(Record{Kind: KindJoin, Room: "r1", Identity: fmt.Sprintf("user-%d-%d", d, i),
				Participant: "p", Remote: "192.0.2.1:5000", Detail: map[string]any{"day": d, "i": i}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t *testing.T, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		if !bytes.HasSuffix(l, []byte{'\n'}) {
			b = append(b, '\n')
		}
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func wantProblem(t *testing.T, rep Report, loc string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("Verify found no problem, want one at %s", loc)
	}
	for _, p := range rep.Problems {
		if strings.HasPrefix(p, loc+":") {
			return
		}
	}
	t.Fatalf("no problem at %s; problems: %q", loc, rep.Problems)
}

func TestThreeDays(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 3, 10)
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if len(files) != 3 {
		t.Fatalf("files %v, want 3", files)
	}
	for d := 1; d <= 3; d++ {
		if _, err := os.Stat(filepath.Join(dir, dayFile(d))); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, dir)
	if !rep.OK() {
		t.Fatalf("problems: %q", rep.Problems)
	}
	if rep.Files != 3 || rep.Records != 31 || rep.FirstSeq != 1 || rep.LastSeq != 31 {
		t.Fatalf("report %+v, want 3 files, 31 records (open + 30), seq 1..31", rep)
	}
	if !rep.First.Equal(day1.Add(time.Millisecond)) || rep.Last.Format("2006-01-02") != "2026-11-23" {
		t.Fatalf("first %v last %v", rep.First, rep.Last)
	}
	if len(rep.LastHash) != 64 {
		t.Fatalf("last hash %q", rep.LastHash)
	}
	// The first line of day 2 links to the last line of day 1.
	l1 := readLines(t, filepath.Join(dir, dayFile(1)))
	l2 := readLines(t, filepath.Join(dir, dayFile(2)))
	last1, h1, err := checkLine(bytes.TrimSuffix(l1[len(l1)-1], []byte{'\n'}))
	if err != nil {
		t.Fatal(err)
	}
	first2, _, err := checkLine(bytes.TrimSuffix(l2[0], []byte{'\n'}))
	if err != nil {
		t.Fatal(err)
	}
	if first2.Prev != h1 || first2.Seq != last1.Seq+1 {
		t.Fatalf("day 2 does not link to day 1: %+v after %+v (%s)", first2, last1, h1)
	}
	// Canonical field order on disk.
	if !bytes.HasPrefix(l1[1], []byte(`{"seq":2,"ts":"2026-11-21T09:00:00.00`)) ||
		!bytes.Contains(l1[1], []byte(`"kind":"join","room":"r1","identity":"user-1-0","participant":"p","remote":"192.0.2.1:5000","detail":{"day":1,"i":0},"prev":"`)) {
		t.Fatalf("line: %s", l1[1])
	}
}

func TestTamper(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, dir string)
		loc    string
	}{
		{"changed identity", func(t *testing.T, dir string) {
			p := filepath.Join(dir, dayFile(2))
			lines := readLines(t, p)
			lines[4] = bytes.Replace(lines[4], []byte("user-2-4"), []byte("user-2-5"), 1)
			writeLines(t, p, lines)
		}, dayFile(2) + ":5"},
		{"deleted line", func(t *testing.T, dir string) {
			p := filepath.Join(dir, dayFile(2))
			lines := readLines(t, p)
			writeLines(t, p, append(lines[:4:4], lines[5:]...))
		}, dayFile(2) + ":5"},
		{"swapped lines", func(t *testing.T, dir string) {
			p := filepath.Join(dir, dayFile(2))
			lines := readLines(t, p)
			lines[3], lines[4] = lines[4], lines[3]
			writeLines(t, p, lines)
		}, dayFile(2) + ":4"},
		{"deleted middle file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, dayFile(2))); err != nil {
				t.Fatal(err)
			}
		}, dayFile(3) + ":1"},
		{"changed hash", func(t *testing.T, dir string) {
			p := filepath.Join(dir, dayFile(1))
			lines := readLines(t, p)
			i := bytes.LastIndex(lines[3], []byte(`"hash":"`)) + len(`"hash":"`)
			if lines[3][i] == 'a' {
				lines[3][i] = 'b'
			} else {
				lines[3][i] = 'a'
			}
			writeLines(t, p, lines)
		}, dayFile(1) + ":4"},
		{"changed and rehashed line", func(t *testing.T, dir string) {
			// Recomputing the changed line's own hash moves the break to the next line.
			p := filepath.Join(dir, dayFile(2))
			lines := readLines(t, p)
			rec, _, err := checkLine(bytes.TrimSuffix(lines[4], []byte{'\n'}))
			if err != nil {
				t.Fatal(err)
			}
			rec.Identity = "mallory"
			b, _, err := encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			lines[4] = b
			writeLines(t, p, lines)
		}, dayFile(2) + ":6"},
		{"broken JSON", func(t *testing.T, dir string) {
			p := filepath.Join(dir, dayFile(3))
			lines := readLines(t, p)
			lines[2] = lines[2][5:]
			writeLines(t, p, lines)
		}, dayFile(3) + ":3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDays(t, dir, 3, 10)
			tc.mutate(t, dir)
			rep := mustVerify(t, dir)
			wantProblem(t, rep, tc.loc)
			t.Logf("problems: %q", rep.Problems)
		})
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: day1}
	l, err := Open(dir, Options{Now: c.now, Retention: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for d := 1; d <= 5; d++ {
		c.set(day1.AddDate(0, 0, d-1))
		for i := 0; i < 3; i++ {
			if err := l.Write(Record{Kind: KindLeave, Identity: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Flush(); err != nil { // Write only queues the records
		t.Fatal(err)
	}
	// Day 5 09:00 minus 2 days is day 3 09:00: days 1 and 2 have wholly expired, day 3 has not.
	for d := 1; d <= 5; d++ {
		_, err := os.Stat(filepath.Join(dir, dayFile(d)))
		if exists := err == nil; exists != (d >= 3) {
			t.Errorf("day %d file exists=%v", d, exists)
		}
	}
	rep := mustVerify(t, dir)
	if !rep.OK() || rep.Files != 3 || rep.Records != 9 || rep.FirstSeq != 8 || rep.LastSeq != 16 {
		t.Fatalf("report %+v", rep)
	}

	// Open also applies retention.
	l.Close()
	c.set(day1.AddDate(0, 0, 6))
	l2, err := Open(dir, Options{Now: c.now, Retention: 2 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if _, err := os.Stat(filepath.Join(dir, dayFile(3))); !os.IsNotExist(err) {
		t.Fatalf("day 3 not removed at Open: %v", err)
	}
	if rep := mustVerify(t, dir); !rep.OK() || rep.LastSeq != 17 {
		t.Fatalf("report %+v", rep)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 2, 5)
	before := mustVerify(t, dir)
	if !before.OK() || before.LastSeq != 11 {
		t.Fatalf("report %+v", before)
	}
	c := &clock{t: day1.AddDate(0, 0, 1).Add(time.Hour)} // same day as the last file
	l, err := Open(dir, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Record{Kind: KindRoleChange, Identity: "x", Detail: map[string]any{"to": "admin"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, filepath.Join(dir, dayFile(2)))
	open, _, err := checkLine(bytes.TrimSuffix(lines[len(lines)-2], []byte{'\n'}))
	if err != nil {
		t.Fatal(err)
	}
	if open.Kind != KindOpen || open.Seq != 12 || open.Prev != before.LastHash || open.Detail["last_hash"] != before.LastHash ||
		open.Detail["last_file"] != dayFile(2) {
		t.Fatalf("open record %+v, want seq 12 after %s", open, before.LastHash)
	}
	rep := mustVerify(t, dir)
	if !rep.OK() || rep.Records != 13 || rep.LastSeq != 13 || rep.Files != 2 {
		t.Fatalf("report %+v", rep)
	}
}

func TestReopenAfterPartialLine(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 1, 3)
	p := filepath.Join(dir, dayFile(1))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":5,"ts":"2026-`) // a cut-short write
	f.Close()
	c := &clock{t: day1.Add(time.Hour)}
	l, err := Open(dir, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(Record{Kind: KindAdmin, Identity: "a"})
	l.Close()
	rep := mustVerify(t, dir)
	// Only the partial line is reported; the chain resumed from the record before it.
	if len(rep.Problems) != 1 || !strings.HasPrefix(rep.Problems[0], dayFile(1)+":5:") || rep.LastSeq != 6 {
		t.Fatalf("report %+v", rep)
	}
}

func TestConcurrentWrite(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if err := l.Write(Record{Kind: KindAuthFailure, Remote: fmt.Sprintf("g%d", g), Detail: map[string]any{"i": i}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if !rep.OK() || rep.Records != 801 { // 800 + the open record
		t.Fatalf("report: %d records, problems %q", rep.Records, rep.Problems)
	}
}

func TestNilAndClosed(t *testing.T) {
	var l *Log
	if err := l.Write(Record{Kind: KindJoin}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Write(Record{}); err == nil {
		t.Fatal("record without kind accepted")
	}
	if err := l2.Write(Record{Kind: KindLimit, Detail: map[string]any{"bad": func() {}}}); err == nil {
		t.Fatal("unencodable detail accepted")
	}
	l2.Close()
	if err := l2.Write(Record{Kind: KindJoin}); err == nil {
		t.Fatal("write after close accepted")
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Verify of a missing dir: no error")
	}
}
