package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/audit"
	"github.com/otpledger/otpledger/internal/progress"
	"github.com/otpledger/otpledger/internal/securefile"
	"github.com/otpledger/otpledger/projections"
)

// auditFlags are the flags of the audit commands.
type auditFlags struct {
	format string
	asOf   string
	limit  int
	after  uint64
	from   string
	to     string
	out    string
	in     string
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: want an RFC 3339 timestamp such as 2026-11-25T01:00:00Z", name)
	}
	return t, nil
}

// verifyCmd re-reads the stream and reports tampering; it fails when it
// finds any.
func verifyCmd(ctx context.Context, cfg *config, f *auditFlags, stdout, stderr io.Writer) error {
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), reads)
	if errors.Is(err, journal.ErrNoJournal) {
		return consumers.ErrNothingToVerify
	}
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "verifying")
	key, err := cfg.checkpointKey()
	if err != nil {
		return err
	}
	var pub ed25519.PublicKey
	if key != nil {
		pub = key.Public().(ed25519.PublicKey)
	}
	rep, err := consumers.Verify(ctx, n.j, pub, bar.Update)
	bar.Finish()
	if err != nil {
		return err
	}
	if f.format == "json" {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQUENCE\tAGGREGATE\tKIND\tDETAIL")
		for _, x := range rep.Findings {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", x.Seq, x.Aggregate, x.Kind, x.Detail)
		}
		_ = tw.Flush()
		fmt.Fprintf(stdout, "%d messages, %d events, %d signed checkpoints, %d findings\n", rep.Messages, rep.Events, rep.Checkpoints, len(rep.Findings))
	}
	if len(rep.Findings) > 0 {
		return fmt.Errorf("%d findings", len(rep.Findings))
	}
	return nil
}

// historyCmd prints an aggregate's events up to --as-of and its state then,
// straight from the stream.
func historyCmd(ctx context.Context, cfg *config, f *auditFlags, ref events.AggregateRef, stdout, stderr io.Writer) error {
	if err := ref.Validate(); err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	asOf, err := parseTime("as-of", f.asOf)
	if err != nil {
		return err
	}
	n, l, err := openLedger(ctx, cfg, stderr, reads)
	if err != nil {
		return err
	}
	defer n.close()
	h, err := audit.ReadHistory(ctx, l, n.j, ref, audit.Query{AsOf: asOf, After: f.after, Limit: f.limit})
	if err != nil {
		return err
	}
	if f.format == "json" {
		return json.NewEncoder(stdout).Encode(map[string]any{"aggregate": ref, "as_of": f.asOf, "events": h.Events, "state": h.State})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tOCCURRED_AT\tTYPE\tINSTITUTION\tCHANNEL\tACTOR\tSTAFF\tPRINCIPAL\tPAYLOAD")
	for _, r := range h.Events {
		payload, _ := json.Marshal(r.Event.Payload)
		principal := "-"
		if p := r.Event.Principal; p != nil {
			principal = p.ID + " (" + string(p.Role) + ", " + string(p.Method) + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Event.OccurredAt.Format(time.RFC3339), r.Event.Type(),
			r.Event.Institution, r.Event.Channel, r.Event.Actor.Role, r.Event.Staff, principal, payload)
	}
	_ = tw.Flush()
	if h.State != nil {
		st, _ := json.Marshal(h.State)
		fmt.Fprintf(stdout, "state as of %s: %s\n", orNow(f.asOf), st)
	}
	return nil
}

func orNow(s string) string {
	if s == "" {
		return "now"
	}
	return s
}

// exportCmd writes every event that occurred in [--from, --to) with its
// envelope and chain hashes, streaming (constant memory).
func exportCmd(ctx context.Context, cfg *config, f *auditFlags, stdout, stderr io.Writer) error {
	var win audit.Window
	var err error
	if win.From, err = parseTime("from", f.from); err != nil {
		return err
	}
	if win.To, err = parseTime("to", f.to); err != nil {
		return err
	}
	format := audit.Format(f.format)
	if format != audit.JSONL && format != audit.CSV {
		return errors.New("--format: jsonl or csv")
	}
	w := stdout
	var file *os.File
	if f.out != "" {
		if file, err = securefile.Create(f.out); err != nil { // the events hold personal data: the owner's alone
			return err
		}
		defer file.Close()
		w = file
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), reads)
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "exporting")
	_, err = audit.Export(ctx, n.j, w, format, win, bar.Update)
	bar.Finish()
	if err != nil || file == nil {
		return err
	}
	return file.Sync()
}

// rebuildCmd rebuilds the PostgreSQL views from the stream and swaps them in.
func rebuildCmd(ctx context.Context, cfg *config, stderr io.Writer) error {
	if cfg.databaseURL == "" {
		return errors.New("rebuild: needs OTPLEDGER_DATABASE_URL (the embedded default rebuilds its memory views at every start)")
	}
	cfg.projector = false
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), reads)
	if err != nil {
		return err
	}
	defer n.close()
	if n.pool, err = projections.OpenPool(ctx, cfg.databaseURL); err != nil {
		return err
	}
	bar := progress.New(stderr, "rebuilding views")
	err = consumers.Rebuild(ctx, n.j, projections.NewPostgres(n.pool), bar.Update)
	bar.Finish()
	return err
}

// approvalsCmd lists the branch events awaiting approval.
func approvalsCmd(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	n, err := open(ctx, cfg, newLogger("warn", stderr), stderr, reads)
	if err != nil {
		return err
	}
	defer n.close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tEVENT\tAGGREGATE\tTYPE\tINSTITUTION\tSTAFF\tOCCURRED_AT")
	for p := (projections.Page{Limit: projections.MaxLimit}); ; {
		l, err := n.store.PendingApprovals(ctx, p)
		if err != nil {
			return err
		}
		for _, a := range l.Items {
			fmt.Fprintf(tw, "%d\t%s\t%s %s\t%s\t%s\t%s\t%s\n", a.Seq, a.EventID, a.AggregateKind, a.AggregateKey, a.Type, a.Institution, a.Staff, a.OccurredAt.Format(time.RFC3339))
		}
		if l.NextCursor == "" {
			return tw.Flush()
		}
		p.Cursor = l.NextCursor
	}
}

// importCmd appends an export's JSON lines to an empty journal (see
// [audit.Import]): a bad or truncated file appends nothing.
func importCmd(ctx context.Context, cfg *config, f *auditFlags, stderr io.Writer) error {
	file, err := os.Open(f.in)
	if err != nil {
		return err
	}
	defer file.Close()
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), writes)
	if err != nil {
		return err
	}
	defer n.close()
	return audit.Import(ctx, n.j, file)
}
