package ledger

import (
	"context"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// newPersons returns the store of real-name claims (R-ONE-PERSON).
func newPersons(j *journal.Journal, size int) *store[aggregates.Person] {
	return &store[aggregates.Person]{j: j, cache: newLRU[loaded[aggregates.Person]](size),
		zero: func(r events.AggregateRef) aggregates.Person { return aggregates.NewPerson(r.Key) }}
}

// decideCustomer decides cmd on the loaded customer c and returns each
// aggregate's part of the append. A profile also loads the claim of its
// real-name number and, when the profile claims it, appends the claim in
// the same atomic batch, each part with its own compare-and-set: of two
// customer numbers racing for one real-name number, one batch fails
// whole and its retry sees the other's claim (R-ONE-PERSON).
func (l *Ledger) decideCustomer(ctx context.Context, ref events.AggregateRef, c loaded[aggregates.Customer], cmd aggregates.CustomerCommand, now time.Time) ([]part, error) {
	var person loaded[aggregates.Person]
	if sp, ok := cmd.(aggregates.SetProfile); ok {
		if pref := events.PersonRef(sp.RealNameFP); pref.Validate() == nil { // else the profile's own check refuses it
			var err error
			if person, err = l.persons.load(ctx, pref); err != nil {
				return nil, err
			}
			sp.Person = &person.snap.State
			cmd = sp
		}
	}
	evs, err := c.snap.State.Decide(cmd, now, &l.cfg.Policy)
	if err != nil {
		return nil, err
	}
	mine, claim := split(ref, evs)
	cw, err := l.customers.writing(c, mine)
	if err != nil {
		return nil, err
	}
	if len(claim) == 0 {
		return []part{cw}, nil
	}
	pw, err := l.persons.writing(person, claim)
	if err != nil {
		return nil, err
	}
	return []part{cw, pw}, nil
}
