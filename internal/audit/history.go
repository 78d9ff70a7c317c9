package audit

import (
	"context"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// Query selects the part of an aggregate's history to list.
type Query struct {
	AsOf  time.Time // the events the ledger had recorded by then (recorded_at, append order), and the state then; zero: now
	After uint64    // list only messages after this stream sequence
	Limit int       // list at most this many events; 0: all
}

// Entry is one event of a history and the sequence of its message.
type Entry struct {
	Seq   uint64       `json:"sequence"`
	Event events.Event `json:"event"`
}

// History is an aggregate's events as of an instant and its state then, as
// the ledger folds it (nil for the ledger's own records: keys, look-ups).
type History struct {
	Events []Entry `json:"events"`
	State  any     `json:"state"`
}

// ReadHistory reads ref's events from the stream (j), straight from its
// subject, and asks l for its state as of q.AsOf.
func ReadHistory(ctx context.Context, l *ledger.Ledger, j *journal.Journal, ref events.AggregateRef, q Query) (History, error) {
	var h History
read:
	for e, err := range j.Read(ctx, ref, 1) {
		if err != nil {
			return h, err
		}
		for _, ev := range e.Commit.Events {
			if !aggregates.Recorded(ev, q.AsOf) {
				break read // as of T: what the ledger had recorded then, in append order
			}
			if e.Sequence > q.After && (q.Limit <= 0 || len(h.Events) < q.Limit) {
				h.Events = append(h.Events, Entry{e.Sequence, ev})
			}
		}
	}
	var err error
	switch ref.Kind {
	case events.KindDevice:
		v, s, _ := ref.DeviceKey()
		h.State, _, err = l.DeviceAsOf(ctx, v, s, 0, q.AsOf)
	case events.KindCustomer:
		h.State, _, err = l.CustomerAsOf(ctx, ref.Key, 0, q.AsOf)
	}
	return h, err
}
