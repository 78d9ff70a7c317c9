package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/progress"
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
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), reads)
	if err != nil {
		return err
	}
	defer n.close()
	type row struct {
		Seq   uint64       `json:"sequence"`
		Event events.Event `json:"event"`
	}
	var rows []row
	var all []events.Event
	for e, err := range n.j.Read(ctx, ref, 1) {
		if err != nil {
			return err
		}
		for _, ev := range e.Commit.Events {
			if !asOf.IsZero() && ev.OccurredAt.After(asOf) {
				continue
			}
			all = append(all, ev)
			if e.Sequence > f.after && (f.limit <= 0 || len(rows) < f.limit) {
				rows = append(rows, row{e.Sequence, ev})
			}
		}
	}
	var state any // the ledger's own records (keys, look-ups) have no domain state
	switch ref.Kind {
	case events.KindDevice:
		v, s, _ := ref.DeviceKey()
		state = aggregates.Fold(aggregates.NewDevice(v, s), all, time.Time{})
	case events.KindCustomer:
		state = aggregates.Fold(aggregates.NewCustomer(ref.Key), all, time.Time{})
	}
	if f.format == "json" {
		return json.NewEncoder(stdout).Encode(map[string]any{"aggregate": ref, "as_of": f.asOf, "events": rows, "state": state})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tOCCURRED_AT\tTYPE\tINSTITUTION\tCHANNEL\tACTOR\tSTAFF\tPRINCIPAL\tPAYLOAD")
	for _, r := range rows {
		payload, _ := json.Marshal(r.Event.Payload)
		principal := "-"
		if p := r.Event.Principal; p != nil {
			principal = p.ID + " (" + string(p.Role) + ", " + string(p.Method) + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Event.OccurredAt.Format(time.RFC3339), r.Event.Type(),
			r.Event.Institution, r.Event.Channel, r.Event.Actor.Role, r.Event.Staff, principal, payload)
	}
	_ = tw.Flush()
	if state != nil {
		st, _ := json.Marshal(state)
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
	from, err := parseTime("from", f.from)
	if err != nil {
		return err
	}
	to, err := parseTime("to", f.to)
	if err != nil {
		return err
	}
	if f.format != "jsonl" && f.format != "csv" {
		return errors.New("--format: jsonl or csv")
	}
	w := stdout
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return err
		}
		defer file.Close()
		w = file
	}
	buf := bufio.NewWriterSize(w, 1<<16)
	cw := csv.NewWriter(buf)
	if f.format == "csv" {
		_ = cw.Write([]string{"sequence", "id", "type", "occurred_at", "recorded_at", "aggregate_kind", "aggregate_key", "institution",
			"channel", "actor_role", "actor_id", "staff", "prev_hash", "hash", "payload"})
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), reads)
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "exporting")
	var count uint64
	err = consumers.ReadStream(ctx, n.j, 0, 0, func(items []projections.Item) error {
		for _, it := range items {
			if it.Err != nil {
				return fmt.Errorf("message %d cannot be exported: %w", it.Seq, it.Err)
			}
			for _, e := range it.Commit.Events {
				if (!from.IsZero() && e.OccurredAt.Before(from)) || (!to.IsZero() && !e.OccurredAt.Before(to)) {
					continue
				}
				data, err := json.Marshal(e)
				if err != nil {
					return err
				}
				count++
				if f.format == "jsonl" {
					fmt.Fprintf(buf, `{"sequence":%d,"event":%s}`+"\n", it.Seq, data)
					continue
				}
				payload, _ := json.Marshal(e.Payload)
				_ = cw.Write([]string{strconv.FormatUint(it.Seq, 10), e.ID.String(), string(e.Type()), e.OccurredAt.Format(time.RFC3339Nano),
					e.RecordedAt.Format(time.RFC3339Nano), string(e.Aggregate.Kind), e.Aggregate.Key, e.Institution, string(e.Channel),
					string(e.Actor.Role), e.Actor.ID, e.Staff, e.PrevHash, e.Hash, string(payload)})
			}
			bar.Update(it.Seq, 0)
		}
		cw.Flush()
		return cw.Error()
	})
	bar.Finish()
	if err != nil {
		return err
	}
	if f.format == "jsonl" {
		fmt.Fprintf(buf, `{"end":{"events":%d}}`+"\n", count)
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	if file, ok := w.(*os.File); ok && f.out != "" {
		return file.Sync()
	}
	return nil
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
		rows, next, _, err := n.store.PendingApprovals(ctx, p)
		if err != nil {
			return err
		}
		for _, a := range rows {
			fmt.Fprintf(tw, "%d\t%s\t%s %s\t%s\t%s\t%s\t%s\n", a.Seq, a.EventID, a.AggregateKind, a.AggregateKey, a.Type, a.Institution, a.Staff, a.OccurredAt.Format(time.RFC3339))
		}
		if next == "" {
			return tw.Flush()
		}
		p.Cursor = next
	}
}

// exportLine is one line of a JSON lines export: an event and the stream
// sequence of its message, or, last, the closing line that says how many
// event lines came before it (so that an import knows a file cut short).
type exportLine struct {
	Sequence uint64          `json:"sequence,omitempty"`
	Event    json.RawMessage `json:"event,omitempty"`
	End      *exportEnd      `json:"end,omitempty"`
}

type exportEnd struct {
	Events uint64 `json:"events"`
}

// importCmd appends an export's JSON lines, in order, to an empty journal:
// the events of one sequence form one message again, with the state header
// the ledger writes. Events keep their ids, times and chain hashes, so the
// copy verifies and projects the same. The whole file is checked first
// (decoding, hashes, chain links, order, duplicates, the closing line), so a
// bad or truncated file appends nothing.
func importCmd(ctx context.Context, cfg *config, f *auditFlags, stderr io.Writer) error {
	file, err := os.Open(f.in)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := readExport(file, nil); err != nil {
		return err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), writes)
	if err != nil {
		return err
	}
	defer n.close()
	if last, err := n.j.LastSequence(ctx); err != nil || last != 0 {
		return fmt.Errorf("the journal must be empty (last sequence %d, %v)", last, err)
	}
	b, err := n.j.Bulk(ctx)
	if err != nil {
		return err
	}
	devices, customers := map[events.AggregateRef]aggregates.Device{}, map[events.AggregateRef]aggregates.Customer{}
	err = readExport(file, func(c events.Commit) error {
		ref, last := c.Aggregate(), c.Events[len(c.Events)-1]
		var state []byte
		var err error
		if vendor, serial, ok := ref.DeviceKey(); ok {
			d, seen := devices[ref]
			if !seen {
				d = aggregates.NewDevice(vendor, serial)
			}
			devices[ref] = aggregates.Fold(d, c.Events, time.Time{})
			state, err = ledger.Snapshot(devices[ref], last.Hash)
		} else {
			cu, seen := customers[ref]
			if !seen {
				cu = aggregates.NewCustomer(ref.Key)
			}
			customers[ref] = aggregates.Fold(cu, c.Events, time.Time{})
			state, err = ledger.Snapshot(customers[ref], last.Hash)
		}
		if err != nil {
			return err
		}
		_, err = b.Add(ctx, journal.Record{Commit: c, State: state})
		return err
	})
	if err != nil {
		return err
	}
	return b.Flush(ctx)
}

// readExport reads a JSON lines export, checking every line, and calls
// commit (when not nil) with each message's events regrouped. It fails,
// naming the line, on anything an untouched export of one journal cannot
// contain: bad JSON, an event that does not decode or hash to its hash, a
// broken chain, sequences out of order, an event twice, a message holding
// two aggregates, or no closing line.
func readExport(r io.Reader, commit func(events.Commit) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	heads := map[events.AggregateRef]string{}
	seen := map[uuid.UUID]bool{}
	var pending []events.Event
	var pendingSeq, count uint64
	flush := func() error {
		if len(pending) == 0 || commit == nil {
			pending = pending[:0]
			return nil
		}
		err := commit(events.Commit{Events: pending})
		pending = nil
		return err
	}
	var end *exportEnd
	line := 0
	for sc.Scan() {
		line++
		if end != nil {
			return fmt.Errorf("line %d: data after the closing line", line)
		}
		var rec exportLine
		if err := events.UnmarshalStrict(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if rec.End != nil {
			if end = rec.End; end.Events != count {
				return fmt.Errorf("line %d: the closing line counts %d events, the file has %d", line, end.Events, count)
			}
			continue
		}
		e, err := events.DecodeEvent(rec.Event)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := checkImported(e, rec.Sequence, pendingSeq, pending, heads, seen); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if rec.Sequence != pendingSeq {
			if err := flush(); err != nil {
				return err
			}
			pendingSeq = rec.Sequence
		}
		pending = append(pending, e)
		heads[e.Aggregate], seen[e.ID] = e.Hash, true
		count++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	if end == nil {
		return fmt.Errorf("line %d: the file ends without the export's closing line (cut short?)", line)
	}
	if count == 0 {
		return errors.New("the file holds no events")
	}
	return flush()
}

// checkImported checks one event of an export against what came before it.
func checkImported(e events.Event, seq, pendingSeq uint64, pending []events.Event, heads map[events.AggregateRef]string, seen map[uuid.UUID]bool) error {
	h, err := events.HashOf(e)
	switch {
	case seq == 0 || seq < pendingSeq:
		return fmt.Errorf("sequence %d out of order (after %d)", seq, pendingSeq)
	case seq == pendingSeq && len(pending) > 0 && pending[0].Aggregate != e.Aggregate:
		return fmt.Errorf("sequence %d holds events of two aggregates", seq)
	case seen[e.ID]:
		return fmt.Errorf("event %s appears twice", e.ID)
	case err != nil || e.Hash == "" || h != e.Hash:
		return fmt.Errorf("event %s does not hash to its recorded hash (altered?)", e.ID)
	case e.PrevHash != heads[e.Aggregate]:
		return fmt.Errorf("event %s does not follow its aggregate's previous event (chain broken)", e.ID)
	}
	return nil
}
