package aggregates

import (
	"time"

	"github.com/otpledger/otpledger/events"
)

// State is an aggregate state that folds events: [Device] or [Customer].
type State[S any] interface {
	Evolve(events.Event) S
	AggregateVersion() uint64
}

// Fold returns s after the events of evs, in append order, that the ledger
// had recorded at asOf: it stops at the first event recorded after asOf
// (recorded_at), so the state is always that of a prefix of the log; a zero
// asOf folds them all. "As of T" is what the ledger knew at T: a centre event
// that occurred before T but arrived after it is not in it.
func Fold[S State[S]](s S, evs []events.Event, asOf time.Time) S {
	for _, e := range evs {
		if Recorded(e, asOf) {
			s = s.Evolve(e)
		} else {
			break
		}
	}
	return s
}

// Recorded reports whether the ledger had recorded e at asOf (zero: now).
func Recorded(e events.Event, asOf time.Time) bool {
	return asOf.IsZero() || !e.RecordedAt.After(asOf)
}
