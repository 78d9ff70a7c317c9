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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/aggregates"
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
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr))
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
	rep, err := consumers.Verify(ctx, n.j.JetStream(), n.j.Stream(), pub, bar.Update)
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
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr))
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
	var state any
	if ref.Kind == events.KindDevice {
		v, s, _ := ref.DeviceKey()
		state = aggregates.Fold(aggregates.NewDevice(v, s), all, time.Time{})
	} else {
		state = aggregates.Fold(aggregates.NewCustomer(ref.Key), all, time.Time{})
	}
	if f.format == "json" {
		return json.NewEncoder(stdout).Encode(map[string]any{"aggregate": ref, "as_of": f.asOf, "events": rows, "state": state})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tOCCURRED_AT\tTYPE\tINSTITUTION\tCHANNEL\tACTOR\tSTAFF\tPAYLOAD")
	for _, r := range rows {
		payload, _ := json.Marshal(r.Event.Payload)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Event.OccurredAt.Format(time.RFC3339), r.Event.Type(),
			r.Event.Institution, r.Event.Channel, r.Event.Actor.Role, r.Event.Staff, payload)
	}
	_ = tw.Flush()
	st, _ := json.Marshal(state)
	fmt.Fprintf(stdout, "state as of %s: %s\n", orNow(f.asOf), st)
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
	defer buf.Flush()
	cw := csv.NewWriter(buf)
	if f.format == "csv" {
		_ = cw.Write([]string{"sequence", "id", "type", "occurred_at", "recorded_at", "aggregate_kind", "aggregate_key", "institution",
			"channel", "actor_role", "actor_id", "staff", "prev_hash", "hash", "payload"})
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr))
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "exporting")
	err = consumers.ReadStream(ctx, n.j.JetStream(), n.j.Stream(), 0, 0, func(items []projections.Item) error {
		for _, it := range items {
			for _, e := range it.Commit.Events {
				if (!from.IsZero() && e.OccurredAt.Before(from)) || (!to.IsZero() && !e.OccurredAt.Before(to)) {
					continue
				}
				data, err := json.Marshal(e)
				if err != nil {
					return err
				}
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
	return err
}

// rebuildCmd rebuilds the PostgreSQL views from the stream and swaps them in.
func rebuildCmd(ctx context.Context, cfg *config, stderr io.Writer) error {
	if cfg.databaseURL == "" {
		return errors.New("rebuild: needs OTPLEDGER_DATABASE_URL (the embedded default rebuilds its memory views at every start)")
	}
	cfg.projector = false
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr))
	if err != nil {
		return err
	}
	defer n.close()
	if n.pool, err = projections.OpenPool(ctx, cfg.databaseURL); err != nil {
		return err
	}
	bar := progress.New(stderr, "rebuilding views")
	err = consumers.Rebuild(ctx, n.j.JetStream(), n.j.Stream(), projections.NewPostgres(n.pool), bar.Update)
	bar.Finish()
	return err
}

// approvalsCmd lists the branch events awaiting approval.
func approvalsCmd(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	n, err := open(ctx, cfg, newLogger("warn", stderr), stderr)
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

// importCmd appends an export's JSON lines, in order, to an empty journal:
// the events of one sequence form one message again. Events keep their ids,
// times and chain hashes, so the copy verifies and projects the same.
func importCmd(ctx context.Context, cfg *config, f *auditFlags, stdin io.Reader, stderr io.Writer) error {
	in := stdin
	if f.in != "" {
		file, err := os.Open(f.in)
		if err != nil {
			return err
		}
		defer file.Close()
		in = file
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr))
	if err != nil {
		return err
	}
	defer n.close()
	if last, err := n.j.LastSequence(ctx); err != nil || last != 0 {
		return fmt.Errorf("import: the journal must be empty (last sequence %d, %v)", last, err)
	}
	js := n.j.JetStream()
	var pending []events.Event
	var pendingSeq uint64
	var futures []jetstream.PubAckFuture
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		data, err := events.EncodeCommit(events.Commit{Events: pending})
		if err != nil {
			return fmt.Errorf("import sequence %d: %w", pendingSeq, err)
		}
		fut, err := js.PublishMsgAsync(&nats.Msg{Subject: events.Subject(pending[0].Aggregate), Data: data})
		if err != nil {
			return err
		}
		futures, pending = append(futures, fut), nil
		if len(futures) < 1024 {
			return nil
		}
		err = journal.WaitAcks(ctx, futures)
		futures = futures[:0]
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Sequence uint64          `json:"sequence"`
			Event    json.RawMessage `json:"event"`
		}
		if err := events.UnmarshalStrict(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("import line %d: %w", line, err)
		}
		e, err := events.DecodeEvent(rec.Event)
		if err != nil {
			return fmt.Errorf("import line %d: %w", line, err)
		}
		if rec.Sequence != pendingSeq {
			if err := flush(); err != nil {
				return err
			}
			pendingSeq = rec.Sequence
		}
		pending = append(pending, e)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	return journal.WaitAcks(ctx, futures)
}
