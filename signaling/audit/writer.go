package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// run is the writer goroutine: it writes the queued entries in order, the summaries of refusal windows that
// have ended, and at stop drains the queue, writes every pending summary and closes the file.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.refusals.sweepEvery())
	defer tick.Stop()
	for {
		select {
		case e := <-l.queue:
			l.handle(e)
		case <-tick.C:
			for _, s := range l.refusals.ended(l.now()) {
				l.writeEntry(s)
			}
		case <-l.stop:
			for drained := false; !drained; { // Close set closed first: nothing more is queued
				select {
				case e := <-l.queue:
					l.handle(e)
				default:
					drained = true
				}
			}
			for _, s := range l.refusals.all(l.now()) {
				l.writeEntry(s)
			}
			if n := l.failed + l.dropped + l.takeOverflow(); n > 0 {
				l.log.Error("audit: records lost at close, after the last record written", zap.Uint64("lost", n))
			}
			l.closeErr = l.closeFile()
			return
		}
	}
}

func (l *Log) handle(e entry) {
	if e.flushed != nil {
		close(e.flushed)
		return
	}
	l.writeEntry(e)
}

// writeEntry writes e, preceded by a gap record if records were lost since the last one written. A record
// that cannot be written is counted, and logged when it is the first of a run of failures.
func (l *Log) writeEntry(e entry) {
	l.dropped += l.takeOverflow()
	if lost := l.failed + l.dropped; lost > 0 {
		gap := l.gapEntry(e.at)
		if err := l.writeLine(gap); err != nil {
			l.failed++ // e: not written after a loss the chain does not show
			return
		}
		l.log.Warn("audit: records were lost; gap record written", zap.Uint64("lost", lost),
			zap.Uint64("write_failures", l.failed), zap.Uint64("dropped", l.dropped))
		l.failed, l.dropped = 0, 0
	}
	if err := l.writeLine(e); err != nil {
		if l.failed == 0 {
			l.log.Error("audit: write failed; records are lost until a write succeeds", zap.String("kind", e.kind), zap.Error(err))
		}
		l.failed++
	}
}

func (l *Log) gapEntry(at time.Time) entry {
	d, _ := json.Marshal(map[string]uint64{"lost": l.failed + l.dropped, "write_failures": l.failed, "dropped": l.dropped})
	return entry{at: at, ts: at, kind: KindGap, detail: d}
}

// writeLine appends e to the chain.
func (l *Log) writeLine(e entry) error {
	if err := l.rotate(e.at); err != nil {
		return err
	}
	rec := rawLine{Seq: l.seq + 1, TS: e.ts.UTC().Format(time.RFC3339Nano), Kind: e.kind, Room: e.room,
		Identity: e.identity, Participant: e.participant, Remote: e.remote, Detail: e.detail, Prev: l.prev}
	buf, hash, err := encode(rec)
	if err != nil {
		return err
	}
	if l.needNL {
		buf = append([]byte{'\n'}, buf...)
	}
	n, err := l.w.Write(buf)
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

func (l *Log) closeFile() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f, l.w = nil, nil
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
	l.f, l.w, l.day, l.needNL = f, f, d, needNL
	if l.wrap != nil {
		l.w = l.wrap(f)
	}
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
