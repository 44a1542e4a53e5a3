package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Report is what Verify found.
type Report struct {
	Files    int       // audit files read
	Records  int       // well-formed records (including ones whose hash does not match)
	First    time.Time // ts of the first record
	Last     time.Time // ts of the last record
	FirstSeq uint64    // seq of the first record: 1 unless older files were removed (retention)
	LastSeq  uint64    // seq of the last record
	// LastHash is the hash of the last record. Keep it (with LastSeq) somewhere else: a later Verify whose
	// chain no longer contains it shows that records were removed from the end.
	LastHash string
	Problems []string // "file:line: what", in file order; empty when the chain is intact
	// Gaps are the gap records, "file:line: what": records the log lost (failed writes, a full queue). They are
	// not Problems: the chain is intact and shows the loss.
	Gaps       []string
	Lost       uint64 // records lost, the sum of the gap records' counts
	Suppressed uint64 // repeated refusals counted in "suppressed" records instead of written
}

// OK reports whether no problems were found.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify reads every audit file in dir, oldest first, and checks each line's hash and its link to the
// record before it (prev and seq), across files. A broken chain is reported in Report.Problems; the error
// is only for failing to read dir or a file.
//
// Verify cannot tell the removal of the oldest files from retention, nor the removal of the newest lines
// from a log that simply ended there; compare LastSeq/LastHash with a copy kept elsewhere for that.
func Verify(dir string) (Report, error) {
	var rep Report
	files, err := listFiles(dir)
	if err != nil {
		return rep, fmt.Errorf("audit: %w", err)
	}
	rep.Files = len(files)
	v := verifier{rep: &rep}
	for _, name := range files {
		if err := v.file(filepath.Join(dir, name), name); err != nil {
			return rep, fmt.Errorf("audit: %w", err)
		}
	}
	return rep, nil
}

type verifier struct {
	rep     *Report
	have    bool   // a record was seen
	prev    string // hash of the last record seen
	seq     uint64 // its seq
	prevLoc string // its file:line
}

func (v *verifier) file(path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for n := 1; ; n++ {
		b, err := r.ReadBytes('\n')
		if len(b) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		loc := fmt.Sprintf("%s:%d", name, n)
		complete := bytes.HasSuffix(b, []byte{'\n'})
		v.line(loc, bytes.TrimSuffix(b, []byte{'\n'}), complete)
		if err != nil { // EOF after a last line without a newline
			return nil
		}
	}
}

func (v *verifier) problem(loc, format string, args ...any) {
	v.rep.Problems = append(v.rep.Problems, loc+": "+fmt.Sprintf(format, args...))
}

func (v *verifier) line(loc string, b []byte, complete bool) {
	if len(b) == 0 {
		v.problem(loc, "empty line")
		return
	}
	rec, hash, err := checkLine(b)
	if err != nil && !errors.Is(err, errHashMismatch) {
		if !complete {
			v.problem(loc, "incomplete last line (a cut-short write?): %v", err)
		} else {
			v.problem(loc, "%v", err)
		}
		return
	}
	if err != nil {
		v.problem(loc, "%v (seq %d)", err, rec.Seq)
	}
	var broken []string
	switch {
	case !v.have:
		if rec.Prev == ZeroHash && rec.Seq != 1 {
			broken = append(broken, fmt.Sprintf("first record has seq %d but no predecessor", rec.Seq))
		}
		// Otherwise the log starts later than seq 1: older files were removed (retention).
	case rec.Seq == v.seq+1 && rec.Prev != v.prev:
		broken = append(broken, fmt.Sprintf("prev does not match the hash of seq %d at %s", v.seq, v.prevLoc))
	case rec.Seq > v.seq+1:
		broken = append(broken, fmt.Sprintf("seq %d follows seq %d at %s: %d record(s) missing",
			rec.Seq, v.seq, v.prevLoc, rec.Seq-v.seq-1))
	case rec.Seq <= v.seq:
		broken = append(broken, fmt.Sprintf("seq %d follows seq %d at %s: out of order or repeated",
			rec.Seq, v.seq, v.prevLoc))
	}
	if v.have && rec.Seq != v.seq+1 && rec.Prev == v.prev {
		broken = append(broken, "prev links to the previous record but seq does not follow")
	}
	if len(broken) > 0 {
		v.problem(loc, "chain broken: %s", strings.Join(broken, "; "))
	}
	ts, terr := time.Parse(time.RFC3339Nano, rec.TS)
	if terr != nil {
		v.problem(loc, "bad ts %q", rec.TS)
	}
	if rec.Kind == "" {
		v.problem(loc, "no kind")
	}
	switch rec.Kind {
	case KindGap:
		lost := count(rec.Detail, "lost")
		v.rep.Lost += lost
		v.rep.Gaps = append(v.rep.Gaps, fmt.Sprintf("%s: %d record(s) lost before seq %d (write failures %d, dropped %d)",
			loc, lost, rec.Seq, count(rec.Detail, "write_failures"), count(rec.Detail, "dropped")))
	case KindSuppressed:
		v.rep.Suppressed += count(rec.Detail, "count")
	}
	if rec.Kind == KindOpen && rec.Detail != nil {
		if h, _ := rec.Detail["last_hash"].(string); h != rec.Prev {
			v.problem(loc, "open record's last_hash does not match its prev")
		}
	}
	if !complete {
		v.problem(loc, "no newline at the end of the file")
	}

	rep := v.rep
	if !v.have {
		rep.FirstSeq = rec.Seq
		if terr == nil {
			rep.First = ts
		}
	}
	if terr == nil {
		rep.Last = ts
		if rep.First.IsZero() {
			rep.First = ts
		}
	}
	rep.Records++
	rep.LastSeq, rep.LastHash = rec.Seq, hash
	v.have, v.prev, v.seq, v.prevLoc = true, hash, rec.Seq, loc
}

// count reads a non-negative count from a decoded detail (0 if absent or not a count).
func count(detail map[string]any, key string) uint64 {
	f, ok := detail[key].(float64)
	if !ok || f < 0 {
		return 0
	}
	return uint64(f)
}
