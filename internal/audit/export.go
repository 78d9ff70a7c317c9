// Package audit holds the auditors' tools over the stream: an aggregate's
// history as of an instant, the export of every event in a time window (JSON
// lines or CSV) and the import of such an export into an empty journal. The
// command line (cmd/otpledger) parses flags, opens the journal and prints;
// the formats and the checks live here.
package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/projections"
)

// Format is an export's file format.
type Format string

const (
	JSONL Format = "jsonl" // one event per line, then a closing line counting them; what Import reads
	CSV   Format = "csv"   // one event per row, the payload as JSON in the last column
)

// Window selects the events that occurred in [From, To); a zero bound is open.
type Window struct{ From, To time.Time }

func (w Window) holds(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.To.IsZero() || t.Before(w.To))
}

// csvHeader names the columns of a CSV export.
var csvHeader = []string{"sequence", "id", "type", "occurred_at", "recorded_at", "aggregate_kind", "aggregate_key", "institution",
	"channel", "actor_role", "actor_id", "staff", "prev_hash", "hash", "payload"}

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

// Export writes every event of j that occurred in win, with its envelope and
// chain hashes, to w in format f, streaming (constant memory). progress, when
// not nil, is called with each message's sequence and the last one. It
// returns how many events it wrote.
func Export(ctx context.Context, j *journal.Journal, w io.Writer, f Format, win Window, progress func(seq, last uint64)) (uint64, error) {
	if f != JSONL && f != CSV {
		return 0, fmt.Errorf("format %q: jsonl or csv", f)
	}
	buf := bufio.NewWriterSize(w, 1<<16)
	cw := csv.NewWriter(buf)
	if f == CSV {
		_ = cw.Write(csvHeader)
	}
	var count uint64
	err := consumers.ReadStream(ctx, j, 0, 0, func(items []projections.Item) error {
		for _, it := range items {
			if it.Err != nil {
				return fmt.Errorf("message %d cannot be exported: %w", it.Seq, it.Err)
			}
			for _, e := range it.Commit.Events {
				if !win.holds(e.OccurredAt) {
					continue
				}
				count++
				if err := writeEvent(buf, cw, f, it.Seq, e); err != nil {
					return err
				}
			}
			if progress != nil {
				progress(it.Seq, 0)
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return count, err
	}
	if f == JSONL {
		fmt.Fprintf(buf, `{"end":{"events":%d}}`+"\n", count)
	}
	return count, buf.Flush()
}

// writeEvent writes one event of message seq as a line of f.
func writeEvent(buf *bufio.Writer, cw *csv.Writer, f Format, seq uint64, e events.Event) error {
	if f == JSONL {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		fmt.Fprintf(buf, `{"sequence":%d,"event":%s}`+"\n", seq, data)
		return nil
	}
	payload, err := json.Marshal(e.Payload)
	if err != nil {
		return err
	}
	return cw.Write([]string{strconv.FormatUint(seq, 10), e.ID.String(), string(e.Type()), e.OccurredAt.Format(time.RFC3339Nano),
		e.RecordedAt.Format(time.RFC3339Nano), string(e.Aggregate.Kind), e.Aggregate.Key, e.Institution, string(e.Channel),
		string(e.Actor.Role), e.Actor.ID, e.Staff, e.PrevHash, e.Hash, string(payload)})
}
