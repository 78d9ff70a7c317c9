package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// ErrNotEmpty is returned by [Import] into a journal that holds messages.
var ErrNotEmpty = errors.New("the journal must be empty")

// Check reads a JSON lines export and reports the first thing an untouched
// export of one journal cannot contain, naming its line: bad JSON, an event
// that does not decode or hash to its hash, a broken chain, sequences out of
// order, an event twice, a message holding two aggregates, or no closing
// line.
func Check(r io.Reader) error { return readExport(r, nil) }

// Import appends a JSON lines export, in order, to the empty journal j: the
// events of one sequence form one message again, with the state header the
// ledger writes. Events keep their ids, times and chain hashes, so the copy
// verifies and projects the same. The whole file is checked first ([Check]),
// so a bad or truncated file appends nothing.
func Import(ctx context.Context, j *journal.Journal, r io.ReadSeeker) error {
	if err := Check(r); err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if last, err := j.LastSequence(ctx); err != nil {
		return err
	} else if last != 0 {
		return fmt.Errorf("%w (last sequence %d)", ErrNotEmpty, last)
	}
	b, err := j.Bulk(ctx)
	if err != nil {
		return err
	}
	var st states
	err = readExport(r, func(c events.Commit) error {
		state, err := st.after(c)
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

// states folds the imported aggregates, to write each message's state
// header as the ledger would have.
type states struct {
	devices   map[events.AggregateRef]aggregates.Device
	customers map[events.AggregateRef]aggregates.Customer
}

// after folds c into its aggregate and returns the aggregate's snapshot.
func (st *states) after(c events.Commit) ([]byte, error) {
	ref, last := c.Aggregate(), c.Events[len(c.Events)-1]
	if st.devices == nil {
		st.devices, st.customers = map[events.AggregateRef]aggregates.Device{}, map[events.AggregateRef]aggregates.Customer{}
	}
	if vendor, serial, ok := ref.DeviceKey(); ok {
		d, seen := st.devices[ref]
		if !seen {
			d = aggregates.NewDevice(vendor, serial)
		}
		st.devices[ref] = aggregates.Fold(d, c.Events, time.Time{})
		return ledger.Snapshot(st.devices[ref], last.Hash)
	}
	cu, seen := st.customers[ref]
	if !seen {
		cu = aggregates.NewCustomer(ref.Key)
	}
	st.customers[ref] = aggregates.Fold(cu, c.Events, time.Time{})
	return ledger.Snapshot(st.customers[ref], last.Hash)
}

// reader walks an export line by line, checking each against what came
// before it, and hands each message's regrouped events to commit.
type reader struct {
	commit  func(events.Commit) error // nil: check only
	heads   map[events.AggregateRef]string
	seen    map[uuid.UUID]bool
	pending []events.Event
	seq     uint64 // the sequence of pending
	count   uint64
	end     *exportEnd
}

// readExport reads a JSON lines export, checking every line (see [Check]),
// and calls commit (when not nil) with each message's events regrouped.
func readExport(r io.Reader, commit func(events.Commit) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	rd := reader{commit: commit, heads: map[events.AggregateRef]string{}, seen: map[uuid.UUID]bool{}}
	line := 0
	for sc.Scan() {
		line++
		if err := rd.line(sc.Bytes()); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	if rd.end == nil {
		return fmt.Errorf("line %d: the file ends without the export's closing line (cut short?)", line)
	}
	if rd.count == 0 {
		return errors.New("the file holds no events")
	}
	return rd.flush()
}

// line takes one line of the file.
func (rd *reader) line(data []byte) error {
	if rd.end != nil {
		return errors.New("data after the closing line")
	}
	var rec exportLine
	if err := events.UnmarshalStrict(data, &rec); err != nil {
		return err
	}
	if rec.End != nil {
		if rd.end = rec.End; rd.end.Events != rd.count {
			return fmt.Errorf("the closing line counts %d events, the file has %d", rd.end.Events, rd.count)
		}
		return nil
	}
	e, err := events.DecodeEvent(rec.Event)
	if err != nil {
		return err
	}
	if err := rd.check(e, rec.Sequence); err != nil {
		return err
	}
	if rec.Sequence != rd.seq {
		if err := rd.flush(); err != nil {
			return err
		}
		rd.seq = rec.Sequence
	}
	rd.pending = append(rd.pending, e)
	rd.heads[e.Aggregate], rd.seen[e.ID] = e.Hash, true
	rd.count++
	return nil
}

// flush hands the pending message's events to commit.
func (rd *reader) flush() error {
	if len(rd.pending) == 0 || rd.commit == nil {
		rd.pending = rd.pending[:0]
		return nil
	}
	err := rd.commit(events.Commit{Events: rd.pending})
	rd.pending = nil
	return err
}

// check checks event e of message seq against what came before it.
func (rd *reader) check(e events.Event, seq uint64) error {
	h, err := events.HashOf(e)
	switch {
	case seq == 0 || seq < rd.seq:
		return fmt.Errorf("sequence %d out of order (after %d)", seq, rd.seq)
	case seq == rd.seq && len(rd.pending) > 0 && rd.pending[0].Aggregate != e.Aggregate:
		return fmt.Errorf("sequence %d holds events of two aggregates", seq)
	case rd.seen[e.ID]:
		return fmt.Errorf("event %s appears twice", e.ID)
	case err != nil || e.Hash == "" || h != e.Hash:
		return fmt.Errorf("event %s does not hash to its recorded hash (altered?)", e.ID)
	case e.PrevHash != rd.heads[e.Aggregate]:
		return fmt.Errorf("event %s does not follow its aggregate's previous event (chain broken)", e.ID)
	}
	return nil
}
