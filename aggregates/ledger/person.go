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
	load := func(fp string) (*aggregates.Person, error) {
		pref := events.PersonRef(fp)
		if pref.Validate() != nil { // the command's own checks refuse it
			return nil, nil
		}
		var err error
		person, err = l.persons.load(ctx, pref)
		return &person.snap.State, err
	}
	var err error
	switch cmd := cmd.(type) {
	case aggregates.SetProfile:
		if cmd.Person, err = load(cmd.RealNameFP); err != nil {
			return nil, err
		}
		return l.customerParts(ctx, ref, c, cmd, now, person)
	case aggregates.ClaimRealName:
		if cmd.Person, err = load(c.snap.State.Profile.RealNameFP); err != nil {
			return nil, err
		}
		return l.customerParts(ctx, ref, c, cmd, now, person)
	}
	return l.customerParts(ctx, ref, c, cmd, now, person)
}

// customerParts decides cmd and returns the parts of the customer and, for
// a claim, of the person.
func (l *Ledger) customerParts(_ context.Context, ref events.AggregateRef, c loaded[aggregates.Customer], cmd aggregates.CustomerCommand, now time.Time, person loaded[aggregates.Person]) ([]part, error) {
	evs, err := c.snap.State.Decide(cmd, now, &l.cfg.Policy)
	if err != nil {
		return nil, err
	}
	mine, claim := split(ref, evs)
	var parts []part
	if len(mine) > 0 {
		cw, err := l.customers.writing(c, mine)
		if err != nil {
			return nil, err
		}
		parts = append(parts, cw)
	}
	if len(claim) > 0 {
		pw, err := l.persons.writing(person, claim)
		if err != nil {
			return nil, err
		}
		parts = append(parts, pw)
	}
	return parts, nil
}
