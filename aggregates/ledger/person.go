package ledger

import (
	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// newPersons returns the store of real-name claims (R-ONE-PERSON).
func newPersons(j *journal.Journal, size int) *store[aggregates.Person] {
	return &store[aggregates.Person]{j: j, cache: newCache[aggregates.Person](size),
		zero: func(r events.AggregateRef) aggregates.Person { return aggregates.NewPerson(r.Key) }}
}
