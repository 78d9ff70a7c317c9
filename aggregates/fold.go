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

// Fold returns s after the events of evs that occurred at or before asOf, in
// order; a zero asOf folds them all. Folding to asOf gives the state the
// aggregate had at that instant, whatever came after.
func Fold[S State[S]](s S, evs []events.Event, asOf time.Time) S {
	for _, e := range evs {
		if asOf.IsZero() || !e.OccurredAt.After(asOf) {
			s = s.Evolve(e)
		}
	}
	return s
}
