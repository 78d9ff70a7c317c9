package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// errFound stops a scan at the event looked for.
var errFound = errors.New("found")

// FindEvent returns the device or customer that event id belongs to,
// looking in the stream's messages after sequence after (0: from the start)
// up to its last one. An approval names only its event: the views index the
// older ones, and this finds those the views have not reached yet (an
// approval right after the teller's command), from the journal itself. The
// aggregate, loaded by the command, then decides whether the event awaits
// approval. ok is false when no message in that range holds the event.
func (l *Ledger) FindEvent(ctx context.Context, id uuid.UUID, after uint64) (ref events.AggregateRef, ok bool, err error) {
	needle := []byte(id.String())
	err = l.j.Scan(ctx, after, 0, func(msgs []journal.Message) error {
		for _, m := range msgs {
			subject, isAggregate := events.ParseSubject(m.Subject)
			if !isAggregate || !bytes.Contains(m.Data, needle) {
				continue
			}
			c, err := events.DecodeCommit(m.Data)
			if err != nil {
				continue // a message the views quarantine holds nothing to approve
			}
			for _, e := range c.Events {
				if e.ID == id && e.Aggregate == subject && (e.Aggregate.Kind == events.KindDevice || e.Aggregate.Kind == events.KindCustomer) {
					ref, ok = e.Aggregate, true
					return errFound
				}
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return ref, true, nil
	}
	if err != nil {
		return events.AggregateRef{}, false, fmt.Errorf("find event %s: %w", id, err)
	}
	return events.AggregateRef{}, false, nil
}
