// Package audit keeps an append-only, hash-chained log of security-relevant events: authentication
// failures, joins, leaves, role changes, admin actions, residency refusals, limits hit and worker starts.
//
// # Format
//
// The log is a directory of files, one per UTC day, named audit-YYYY-MM-DD.jsonl. Each line is one JSON
// object with, in this order:
//
//	seq          uint64, 1 for the very first record, +1 for each record, continuous across files
//	ts           RFC 3339 time with nanoseconds, UTC
//	kind         one of the Kind constants (or "open", see below)
//	room, identity, participant, remote   optional strings
//	detail       optional object (keys sorted, as encoding/json writes maps)
//	prev         hex SHA-256 of the previous record (64 zeros before the first record)
//	hash         hex SHA-256 of this line's JSON without the hash field, i.e. of the bytes before
//	             `,"hash":` followed by `}`
//
// The chain runs across files: the first record of a day links to the last record of the previous file.
// Verify (and `sfu audit verify`) therefore reports a changed line, a removed line, reordered lines and a
// removed file between two others.
//
// # Limits
//
// A hash chain without a secret only shows that the records are consistent with each other:
//
//   - Someone who can write the files can rewrite the whole tail from a changed record on, recomputing every
//     hash. Keeping the last hash (Report.LastHash and Report.LastSeq) somewhere the SFU host cannot write is
//     what turns the log into evidence.
//   - Removing the oldest files looks like retention, and removing the newest lines looks like a crash or a
//     shorter log, unless an anchor is kept elsewhere. To narrow this, Open writes a record of kind "open"
//     carrying the seq and hash of the last record it found, so each restart is in the log; a restart whose
//     "open" record links to an older record than an operator's kept anchor shows lines were lost.
//
// # Durability
//
// Write issues one write(2) per record on a file opened with O_APPEND; nothing is buffered across records,
// so a record is safe from a crash of the process once Write returns. The file is fsynced when it is closed
// (on a new day and by Close), not per record: a crash of the machine may lose the last records, which then
// looks like a truncated tail. If a write was cut short (a full disk), the next write starts on a new line
// and Verify reports the partial line.
//
// # Retention
//
// Files whose whole day is older than Options.Retention (365 days by default) are deleted when Open runs and
// whenever a new day's file is opened.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Kinds of records.
const (
	KindAuthFailure      = "auth_failure"
	KindJoin             = "join"
	KindLeave            = "leave"
	KindRoleChange       = "role_change"
	KindAdmin            = "admin"
	KindResidencyRefused = "residency_refused"
	KindWorkerStart      = "worker_start"
	KindLimit            = "limit"
	// KindOpen is written by Open itself; its detail holds last_seq, last_hash and last_file, the record the
	// chain was resumed from.
	KindOpen = "open"
)

// DefaultRetention is how long files are kept when Options.Retention is zero.
const DefaultRetention = 365 * 24 * time.Hour

// ZeroHash is the prev of the very first record.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	dayLayout  = "2006-01-02"
	day        = 24 * time.Hour
)

// Record is one event. All fields but Kind are optional.
type Record struct {
	Time        time.Time // zero: the time of writing
	Kind        string
	Room        string
	Identity    string
	Participant string
	Remote      string // remote address
	Detail      map[string]any
}

// Options configure Open.
type Options struct {
	// Retention is how long files are kept: zero means DefaultRetention, negative keeps them forever.
	Retention time.Duration
	// Now is the clock (default time.Now); it picks the day's file and the time of records without one.
	Now func() time.Time
	// Logger gets warnings (default: none).
	Logger *zap.Logger
}

// Log is an open audit log, safe for concurrent use. A nil *Log is valid: Write and Close do nothing.
type Log struct {
	dir       string
	retention time.Duration
	now       func() time.Time
	log       *zap.Logger

	mu     sync.Mutex
	f      *os.File
	day    string // date of f, or of the newest file before the first write
	seq    uint64 // seq of the last record written
	prev   string // hash of the last record written
	needNL bool   // f does not end with a newline (a cut-short write)
	closed bool
}

// line is the on-disk record; the field order is the canonical order.
type line struct {
	Seq         uint64         `json:"seq"`
	TS          string         `json:"ts"`
	Kind        string         `json:"kind"`
	Room        string         `json:"room,omitempty"`
	Identity    string         `json:"identity,omitempty"`
	Participant string         `json:"participant,omitempty"`
	Remote      string         `json:"remote,omitempty"`
	Detail      map[string]any `json:"detail,omitempty"`
	Prev        string         `json:"prev"`
}

// Open opens (creating it if needed) the audit log in dir, resumes the chain from the newest existing
// file, deletes files past retention and writes an "open" record.
func Open(dir string, opt Options) (*Log, error) {
	l := &Log{dir: dir, retention: opt.Retention, now: opt.Now, log: opt.Logger, prev: ZeroHash}
	if l.retention == 0 {
		l.retention = DefaultRetention
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	files, err := listFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	lastFile := ""
	if len(files) > 0 {
		l.day = fileDay(files[len(files)-1])
	}
	// The chain resumes from the last valid record of the newest file that has one.
	for i := len(files) - 1; i >= 0; i-- {
		seq, hash, ok, err := lastValid(filepath.Join(dir, files[i]))
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if ok {
			l.seq, l.prev, lastFile = seq, hash, files[i]
			if i != len(files)-1 {
				l.log.Warn("audit: newest files hold no valid record; chain resumed from an older file",
					zap.String("file", files[i]))
			}
			break
		}
	}
	if err := l.Write(Record{Kind: KindOpen, Detail: map[string]any{
		"last_seq": l.seq, "last_hash": l.prev, "last_file": lastFile,
	}}); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Write appends one record. It fails if Kind is empty or Detail cannot be encoded as JSON.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	if r.Kind == "" {
		return errors.New("audit: record without kind")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("audit: %w", os.ErrClosed)
	}
	now := l.now()
	if err := l.rotate(now); err != nil {
		return err
	}
	t := r.Time
	if t.IsZero() {
		t = now
	}
	rec := line{Seq: l.seq + 1, TS: t.UTC().Format(time.RFC3339Nano), Kind: r.Kind, Room: r.Room,
		Identity: r.Identity, Participant: r.Participant, Remote: r.Remote, Detail: r.Detail, Prev: l.prev}
	buf, hash, err := encode(rec)
	if err != nil {
		return err
	}
	if l.needNL {
		buf = append([]byte{'\n'}, buf...)
	}
	n, err := l.f.Write(buf)
	if err != nil {
		if n > 0 {
			l.needNL = true // a partial line: the next record starts on a new one
		}
		return fmt.Errorf("audit: %w", err)
	}
	l.needNL = false
	l.seq, l.prev = rec.Seq, hash
	return nil
}

// Close syncs and closes the current file. Later Writes fail.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.closeFile()
}

func (l *Log) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// rotate makes l.f the file for now's day (never going back to an earlier day if the clock does).
func (l *Log) rotate(now time.Time) error {
	d := now.UTC().Format(dayLayout)
	if l.f != nil && d <= l.day {
		return nil
	}
	if d < l.day {
		d = l.day // the newest file is dated later than the clock: keep appending to it
	}
	if err := l.closeFile(); err != nil {
		l.log.Warn("audit: closing file", zap.Error(err))
	}
	name := filePrefix + d + fileSuffix
	f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	needNL, err := endsWithoutNewline(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	if needNL {
		l.log.Warn("audit: file ends with a partial line; Verify will report it", zap.String("file", name))
	}
	l.f, l.day, l.needNL = f, d, needNL
	l.prune(now, name)
	return nil
}

// prune deletes the files whose whole day ended more than retention before now, except keep.
func (l *Log) prune(now time.Time, keep string) {
	if l.retention < 0 {
		return
	}
	files, err := listFiles(l.dir)
	if err != nil {
		l.log.Warn("audit: listing files for retention", zap.Error(err))
		return
	}
	cutoff := now.Add(-l.retention)
	for _, name := range files {
		d, err := time.Parse(dayLayout, fileDay(name))
		if err != nil || name == keep || d.Add(day).After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
			l.log.Warn("audit: removing expired file", zap.String("file", name), zap.Error(err))
		} else {
			l.log.Info("audit: removed expired file", zap.String("file", name))
		}
	}
}

// encode returns the line for rec, newline-terminated, and its hash.
func encode(rec line) ([]byte, string, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, "", fmt.Errorf("audit: encoding record: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	out := make([]byte, 0, len(body)+len(hash)+12)
	out = append(out, body[:len(body)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, hash...)
	out = append(out, "\"}\n"...)
	return out, hash, nil
}

// hashSuffixLen is the length of `,"hash":"<64 hex>"}`.
const hashSuffixLen = len(`,"hash":""}`) + 64

// checkLine checks a line's own hash (not its link) and decodes it. The line has no trailing newline.
func checkLine(b []byte) (stored line, hash string, err error) {
	if len(b) < hashSuffixLen+2 || !bytes.HasSuffix(b, []byte(`"}`)) ||
		!bytes.HasPrefix(b[len(b)-hashSuffixLen:], []byte(`,"hash":"`)) {
		return line{}, "", errors.New("malformed line (no hash at the end)")
	}
	hash = string(b[len(b)-hashSuffixLen+len(`,"hash":"`) : len(b)-2])
	if !isHex64(hash) {
		return line{}, "", errors.New("malformed hash")
	}
	var rec struct {
		line
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return line{}, "", fmt.Errorf("malformed line: %v", err)
	}
	if rec.Hash != hash || !isHex64(rec.Prev) {
		return line{}, "", errors.New("malformed line (hash or prev)")
	}
	body := make([]byte, 0, len(b)-hashSuffixLen+1)
	body = append(body, b[:len(b)-hashSuffixLen]...)
	body = append(body, '}')
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != hash {
		return rec.line, hash, errHashMismatch
	}
	return rec.line, hash, nil
}

var errHashMismatch = errors.New("hash mismatch: the line was changed")

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// lastValid returns the seq and hash of the last line of the file whose own hash checks, reading the
// file from its end.
func lastValid(path string) (seq uint64, hash string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", false, err
	}
	size := st.Size()
	for chunk := int64(64 << 10); ; chunk *= 2 {
		start := max(size-chunk, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return 0, "", false, err
		}
		lines := bytes.Split(buf, []byte{'\n'})
		if start > 0 {
			lines = lines[1:] // the first piece may be the end of a longer line
		}
		for i := len(lines) - 1; i >= 0; i-- {
			if rec, h, err := checkLine(lines[i]); err == nil {
				return rec.Seq, h, true, nil
			}
		}
		if start == 0 {
			return 0, "", false, nil
		}
	}
}

// endsWithoutNewline reports whether f (opened for reading) is non-empty and its last byte is not a newline.
func endsWithoutNewline(f *os.File) (bool, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false, err
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil {
		return false, err
	}
	return b[0] != '\n', nil
}

// listFiles returns the names of the audit files in dir, oldest first.
func listFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(name, filePrefix) && strings.HasSuffix(name, fileSuffix) {
			if _, err := time.Parse(dayLayout, fileDay(name)); err == nil {
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func fileDay(name string) string {
	return strings.TrimSuffix(strings.TrimPrefix(name, filePrefix), fileSuffix)
}
