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

const auditUsage = "usage: sfu audit verify [-dir DIR]"

// auditCmd runs `sfu audit verify [-dir DIR]`: it checks the hash chain of the audit log, prints a summary
// and each problem, and fails when there are problems.
func auditCmd(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New(auditUsage)
	}
	fs := flag.NewFlagSet("sfu audit verify", flag.ContinueOnError)
	fs.SetOutput(out)
	defDir := os.Getenv("SFU_AUDIT_DIR")
	if defDir == "" {
		defDir = "audit"
	}
	dir := fs.String("dir", defDir, "audit log directory (env SFU_AUDIT_DIR)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(auditUsage)
	}
	rep, err := audit.Verify(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dir:       %s\nfiles:     %d\nrecords:   %d", *dir, rep.Files, rep.Records)
	if rep.Records > 0 {
		fmt.Fprintf(out, " (seq %d to %d)", rep.FirstSeq, rep.LastSeq)
	}
	fmt.Fprintln(out)
	if rep.Records > 0 {
		fmt.Fprintf(out, "first:     %s\nlast:      %s\nlast hash: %s\n",
			rep.First.Format(time.RFC3339Nano), rep.Last.Format(time.RFC3339Nano), rep.LastHash)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(out, "PROBLEM:", p)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%d problem(s) in the audit log", len(rep.Problems))
	}
	fmt.Fprintln(out, "chain intact. Keep the last seq and hash elsewhere: removed newest records or oldest files",
		"cannot be detected without them.")
	return nil
}
