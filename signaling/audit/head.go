package audit

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// ErrNoRecords is returned by Head for a log without a valid record.
var ErrNoRecords = errors.New("audit: no record in the log")

// Anchor is the last record of a log: keep it somewhere the SFU host cannot write. A later Verify whose chain
// no longer passes through it shows that records were removed or rewritten.
type Anchor struct {
	Seq  uint64
	Hash string
	Time time.Time
	File string
}

// Head returns the last record of the newest file that has one whose own hash checks. It reads only the end of
// that file; it does not check the chain (Verify does).
func Head(dir string) (Anchor, error) {
	files, err := listFiles(dir)
	if err != nil {
		return Anchor{}, fmt.Errorf("audit: %w", err)
	}
	for i := len(files) - 1; i >= 0; i-- {
		rec, hash, ok, err := lastValid(filepath.Join(dir, files[i]))
		if err != nil {
			return Anchor{}, fmt.Errorf("audit: %w", err)
		}
		if ok {
			ts, _ := time.Parse(time.RFC3339Nano, rec.TS)
			return Anchor{Seq: rec.Seq, Hash: hash, Time: ts, File: files[i]}, nil
		}
	}
	return Anchor{}, ErrNoRecords
}
