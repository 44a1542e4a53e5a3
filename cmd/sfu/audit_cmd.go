package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edge-sfu/sfu/signaling/audit"
)

const auditUsage = "usage: sfu audit verify [-dir DIR]\n       sfu audit head [-dir DIR]"

// auditCmd runs `sfu audit verify [-dir DIR]` and `sfu audit head [-dir DIR]`.
func auditCmd(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(auditUsage)
	}
	switch args[0] {
	case "verify":
		dir, err := auditDirFlag("verify", args[1:], out)
		if err != nil {
			return err
		}
		return auditVerify(dir, out)
	case "head":
		dir, err := auditDirFlag("head", args[1:], out)
		if err != nil {
			return err
		}
		return auditHead(dir, out)
	default:
		return errors.New(auditUsage)
	}
}

// auditDirFlag parses [-dir DIR] (default $SFU_AUDIT_DIR, else the node's default, /var/lib/sfu/audit).
func auditDirFlag(sub string, args []string, out io.Writer) (string, error) {
	fs := flag.NewFlagSet("sfu audit "+sub, flag.ContinueOnError)
	fs.SetOutput(out)
	defDir := os.Getenv("SFU_AUDIT_DIR")
	if defDir == "" {
		defDir = defaultAuditDir
	}
	dir := fs.String("dir", defDir, "audit log directory (env SFU_AUDIT_DIR); a -dev node's is ~/.local/state/sfu/audit")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", errors.New(auditUsage)
	}
	return *dir, nil
}

// auditVerify checks the hash chain of the audit log, prints a summary, each gap (records the log lost) and
// each problem, and fails when there are problems.
func auditVerify(dir string, out io.Writer) error {
	rep, err := audit.Verify(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dir:       %s\nfiles:     %d\nrecords:   %d", dir, rep.Files, rep.Records)
	if rep.Records > 0 {
		fmt.Fprintf(out, " (seq %d to %d)", rep.FirstSeq, rep.LastSeq)
	}
	fmt.Fprintln(out)
	if rep.Records > 0 {
		fmt.Fprintf(out, "first:     %s\nlast:      %s\nlast hash: %s\n",
			rep.First.Format(time.RFC3339Nano), rep.Last.Format(time.RFC3339Nano), rep.LastHash)
	}
	if rep.Suppressed > 0 {
		fmt.Fprintf(out, "suppressed: %d repeated refusals counted in summary records\n", rep.Suppressed)
	}
	if len(rep.Gaps) > 0 {
		fmt.Fprintf(out, "lost:      %d record(s) in %d gap(s)\n", rep.Lost, len(rep.Gaps))
	}
	for _, g := range rep.Gaps {
		fmt.Fprintln(out, "GAP:", g)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "PROBLEM:", p)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%d problem(s) in the audit log", len(rep.Problems))
	}
	fmt.Fprintln(out, "chain intact. Keep the last seq and hash elsewhere (sfu audit head): removed newest records or",
		"oldest files cannot be detected without them.")
	return nil
}

// auditHead prints the last record's seq, hash, time and file on one line, to be kept off the host.
func auditHead(dir string, out io.Writer) error {
	a, err := audit.Head(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	fmt.Fprintf(out, "%d %s %s %s\n", a.Seq, a.Hash, a.Time.Format(time.RFC3339Nano), a.File)
	return nil
}
