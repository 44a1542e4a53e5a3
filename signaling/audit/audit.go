// Package audit keeps an append-only, hash-chained log of security-relevant events: authentication
// failures, joins, leaves, role changes, admin actions, residency refusals, limits hit, worker starts and server API
// calls.
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
// removed file between two others. Head (and `sfu audit head`) gives the seq and hash of the last record, to
// be kept off the host.
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
// Write does not touch the disk: it bounds the record's fields, encodes it and puts it on a bounded queue
// that one writer goroutine, owned by the Log, drains; a request is never held up by the disk. The writer
// issues one write(2) per record on a file opened with O_APPEND; Flush waits until the records written before
// it are in the file, and Close waits until the queue is drained. The file is fsynced when it is closed (on a
// new day and by Close), not per record: a crash of the machine may lose the last records, which then looks
// like a truncated tail. If a write was cut short (a full disk), the next write starts on a new line and
// Verify reports the partial line.
//
// # Losses are recorded
//
// A record the writer failed to write, or one Write dropped because the queue was full (ErrQueueFull), is
// counted; before the next record that is written, the writer writes a record of kind "gap" whose detail
// holds lost (the total), write_failures and dropped. Verify reports each gap (Report.Gaps, Report.Lost), so
// a lost record is visible in the chain rather than silently missing. Records lost with no write succeeding
// after them (until Close) are only logged.
//
// # Bounds
//
// Every string of a record (room, identity, participant, remote and each string in detail) is cut so that its
// JSON encoding is at most 128 bytes, and lists in detail to 16 items; the original length (bytes, or items)
// goes into detail.truncated, keyed by the field ("room", "detail.track", "detail.regions.3"). A record is
// therefore a few kilobytes at most whatever a client sends.
//
// Records marked Refused (a refused token, request or limit) are rate-limited per kind, identity and source
// host: the first Options.RefusalBurst in a window of Options.RefusalWindow are written, the others counted and
// written as one record of kind "suppressed" (detail: kind, count, since) when the window ends, before the
// next refusal of the same key after it, or at Close.
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
	KindRoomMoved        = "room_moved" // another node holds the room's lease: its participants were sent there
	KindWorkerStart      = "worker_start"
	KindLimit            = "limit"
	KindAPI              = "api" // a server API call (API.md); detail: method, pattern, status and what was done
	// KindOpen is written by Open itself; its detail holds last_seq, last_hash and last_file, the record the
	// chain was resumed from.
	KindOpen = "open"
	// KindGap is written by the log before the first record written after records were lost; its detail holds
	// lost, write_failures and dropped.
	KindGap = "gap"
	// KindSuppressed is written by the log for refusals beyond a window's allowance; its detail holds the kind
	// of the refusals, their count and since (the start of the window); identity and remote are the key's.
	KindSuppressed = "suppressed"
)

// Defaults of Options.
const (
	DefaultRetention     = 365 * 24 * time.Hour
	DefaultQueueSize     = 4096
	DefaultRefusalBurst  = 10
	DefaultRefusalWindow = time.Minute
)

// ZeroHash is the prev of the very first record.
const ZeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ErrQueueFull is returned by Write when the writer is that far behind: the record is dropped, and counted in
// the next gap record.
var ErrQueueFull = errors.New("audit: queue full, record dropped")

const (
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
	dayLayout  = "2006-01-02"
	day        = 24 * time.Hour
)

// Record is one event. All fields but Kind are optional.
type Record struct {
	Time        time.Time // zero: the time of Write
	Kind        string
	Room        string
	Identity    string
	Participant string
	Remote      string // remote address
	Detail      map[string]any
	// Refused marks a refusal (a bad token, a refused request, a limit hit): repeated ones of the same kind,
	// identity and remote host are collapsed (see Options.RefusalBurst). Not written.
	Refused bool
}

// Options configure Open.
type Options struct {
	// Retention is how long files are kept: zero means DefaultRetention, negative keeps them forever.
	Retention time.Duration
	// Now is the clock (default time.Now); it picks the day's file and the time of records without one.
	Now func() time.Time
	// Logger gets warnings (default: none).
	Logger *zap.Logger
	// QueueSize is how many records may wait for the writer (default DefaultQueueSize).
	QueueSize int
	// RefusalBurst is how many refusals of one key are written per RefusalWindow (default
	// DefaultRefusalBurst; negative: all are written); RefusalWindow defaults to DefaultRefusalWindow.
	RefusalBurst  int
	RefusalWindow time.Duration

	wrap func(io.Writer) io.Writer // tests: wraps each file the writer writes to
}

// Log is an open audit log, safe for concurrent use. A nil *Log is valid: Write, Flush and Close do nothing.
//
// Lock order: qmu and refusals.mu are never held together; the writer's state (f, w, day, seq, prev,
// needNL, failed, dropped, closeErr) belongs to the writer goroutine (to Open before it starts).
type Log struct {
	dir       string
	retention time.Duration
	now       func() time.Time
	log       *zap.Logger
	wrap      func(io.Writer) io.Writer
	refusals  *refusals

	qmu      sync.Mutex
	queue    chan entry
	closed   bool          // under qmu: Write refuses
	overflow uint64        // under qmu: records dropped since the writer last took the count
	stop     chan struct{} // closed by Close: the writer drains the queue and exits
	done     chan struct{} // closed by the writer when it has exited

	// The writer's state.
	f        *os.File
	w        io.Writer // f, wrapped in tests
	day      string    // date of f, or of the newest file before the first write
	seq      uint64    // seq of the last record written
	prev     string    // hash of the last record written
	needNL   bool      // f does not end with a newline (a cut-short write)
	failed   uint64    // records the writer failed to write since the last gap record
	dropped  uint64    // records dropped (queue full) since the last gap record
	closeErr error     // the last file's close, for Close
}

// entry is a record ready for the writer, or a Flush barrier.
type entry struct {
	at          time.Time // the clock at Write: picks the day's file
	ts          time.Time // the record's time
	kind        string
	room        string
	identity    string
	participant string
	remote      string
	detail      json.RawMessage // nil: no detail
	flushed     chan struct{}   // a barrier: closed when the entries before it are written
}

// record is the on-disk record; the field order is the canonical order. Its detail is read as a map (line) and
// written already encoded (rawLine), which give the same bytes.
type record[D any] struct {
	Seq         uint64 `json:"seq"`
	TS          string `json:"ts"`
	Kind        string `json:"kind"`
	Room        string `json:"room,omitempty"`
	Identity    string `json:"identity,omitempty"`
	Participant string `json:"participant,omitempty"`
	Remote      string `json:"remote,omitempty"`
	Detail      D      `json:"detail,omitempty"`
	Prev        string `json:"prev"`
}

type (
	line    = record[map[string]any]
	rawLine = record[json.RawMessage]
)

// Open opens (creating it if needed) the audit log in dir, resumes the chain from the newest existing
// file, deletes files past retention, writes an "open" record and starts the writer.
func Open(dir string, opt Options) (*Log, error) {
	l := &Log{dir: dir, retention: opt.Retention, now: opt.Now, log: opt.Logger, wrap: opt.wrap, prev: ZeroHash,
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.retention == 0 {
		l.retention = DefaultRetention
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = DefaultQueueSize
	}
	l.queue = make(chan entry, opt.QueueSize)
	if opt.RefusalBurst == 0 {
		opt.RefusalBurst = DefaultRefusalBurst
	}
	if opt.RefusalWindow <= 0 {
		opt.RefusalWindow = DefaultRefusalWindow
	}
	l.refusals = newRefusals(opt.RefusalBurst, opt.RefusalWindow)
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
		rec, hash, ok, err := lastValid(filepath.Join(dir, files[i]))
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if ok {
			l.seq, l.prev, lastFile = rec.Seq, hash, files[i]
			if i != len(files)-1 {
				l.log.Warn("audit: newest files hold no valid record; chain resumed from an older file",
					zap.String("file", files[i]))
			}
			break
		}
	}
	open, err := l.prepare(Record{Kind: KindOpen, Detail: map[string]any{
		"last_seq": l.seq, "last_hash": l.prev, "last_file": lastFile,
	}}, l.now())
	if err == nil {
		err = l.writeLine(open)
	}
	if err != nil {
		_ = l.closeFile()
		return nil, err
	}
	go l.run()
	return l, nil
}

// Write bounds the record's fields and queues it for the writer; it does not wait for the disk. It fails if
// Kind is empty, Detail cannot be encoded as JSON, the log is closed, or the queue is full (ErrQueueFull: the
// record is dropped and counted in the next gap record). A refusal beyond its window's allowance is counted,
// not queued, and Write returns nil.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	if r.Kind == "" {
		return errors.New("audit: record without kind")
	}
	now := l.now()
	e, err := l.prepare(r, now)
	if err != nil {
		return err
	}
	if r.Refused {
		summary, write := l.refusals.admit(e, now)
		if summary != nil { // if dropped, counted in the next gap record; e is queued all the same
			if err := l.enqueue(*summary); errors.Is(err, os.ErrClosed) {
				return err
			}
		}
		if !write {
			return nil
		}
	}
	return l.enqueue(e)
}

// prepare bounds r's fields and encodes its detail.
func (l *Log) prepare(r Record, now time.Time) (entry, error) {
	b := bounded(r)
	e := entry{at: now, ts: r.Time, kind: b.Kind, room: b.Room, identity: b.Identity, participant: b.Participant,
		remote: b.Remote}
	if e.ts.IsZero() {
		e.ts = now
	}
	if len(b.Detail) > 0 {
		d, err := json.Marshal(b.Detail)
		if err != nil {
			return entry{}, fmt.Errorf("audit: encoding record: %w", err)
		}
		e.detail = d
	}
	return e, nil
}

func (l *Log) enqueue(e entry) error {
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		return fmt.Errorf("audit: %w", os.ErrClosed)
	}
	select {
	case l.queue <- e:
		l.qmu.Unlock()
		return nil
	default:
	}
	l.overflow++
	first := l.overflow == 1
	l.qmu.Unlock()
	if first {
		l.log.Warn("audit: queue full; dropping records until the writer catches up (a gap record will count them)")
	}
	return ErrQueueFull
}

// takeOverflow returns and resets the count of records dropped by Write.
func (l *Log) takeOverflow() uint64 {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	n := l.overflow
	l.overflow = 0
	return n
}

// Flush waits until the records Written before it are in the file (or failed to be).
func (l *Log) Flush() error {
	if l == nil {
		return nil
	}
	l.qmu.Lock()
	closed := l.closed
	l.qmu.Unlock()
	if closed {
		return fmt.Errorf("audit: %w", os.ErrClosed)
	}
	e := entry{flushed: make(chan struct{})}
	select {
	case l.queue <- e:
	case <-l.done:
		return fmt.Errorf("audit: %w", os.ErrClosed)
	}
	select {
	case <-e.flushed:
		return nil
	case <-l.done:
		return fmt.Errorf("audit: %w", os.ErrClosed)
	}
}

// Close stops the writer once it has written what is queued and the pending summaries of refusals, then
// syncs and closes the file. Later Writes fail.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.qmu.Lock()
	if l.closed {
		l.qmu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.stop)
	l.qmu.Unlock()
	<-l.done
	return l.closeErr
}

// encode returns the line for rec (a line or a rawLine), newline-terminated, and its hash.
func encode(rec any) ([]byte, string, error) {
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

// lastValid returns the last line of the file whose own hash checks, and its hash, reading the file from its
// end.
func lastValid(path string) (rec line, hash string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return line{}, "", false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return line{}, "", false, err
	}
	size := st.Size()
	for chunk := int64(64 << 10); ; chunk *= 2 {
		start := max(size-chunk, 0)
		buf := make([]byte, size-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return line{}, "", false, err
		}
		lines := bytes.Split(buf, []byte{'\n'})
		if start > 0 {
			lines = lines[1:] // the first piece may be the end of a longer line
		}
		for i := len(lines) - 1; i >= 0; i-- {
			if rec, h, err := checkLine(lines[i]); err == nil {
				return rec, h, true, nil
			}
		}
		if start == 0 {
			return line{}, "", false, nil
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
