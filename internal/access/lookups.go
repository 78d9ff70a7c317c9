package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// LookupLimited is a personal-data look-up over its principal's rate: try
// again after RetryAfter (API: 429).
type LookupLimited struct{ RetryAfter time.Duration }

func (e *LookupLimited) Error() string {
	return fmt.Sprintf("too many personal-data look-ups by this principal; try again in %v", e.RetryAfter.Round(time.Second))
}

// LookupRate is a principal's personal-data look-up rate: PerMinute on
// average, at most a sixth of it (at least 1) at once.
type LookupRate struct{ PerMinute int }

func (r LookupRate) interval() time.Duration { return time.Minute / time.Duration(max(1, r.PerMinute)) }
func (r LookupRate) burst() int              { return max(1, r.PerMinute/6) }

// wait is how long a look-up at now must wait, given tat, the rate's
// theoretical arrival time after the principal's last look-up (GCRA: a
// token bucket kept as one instant); 0: it may go now.
func (r LookupRate) wait(tat, now time.Time) time.Duration {
	allowedAt := tat.Add(-time.Duration(r.burst()-1) * r.interval())
	return max(0, allowedAt.Sub(now))
}

// next is the theoretical arrival time after a look-up at now.
func (r LookupRate) next(tat, now time.Time) time.Time {
	if tat.Before(now) {
		tat = now
	}
	return tat.Add(r.interval())
}

// lookupRef is the aggregate of by's look-up log.
func lookupRef(by events.Principal) events.AggregateRef {
	if !events.ValidKeyID(by.ID) { // an OIDC subject with dots: its log is kept under a subject-safe id
		sum := sha256.Sum256([]byte(by.ID))
		return events.LookupRef("sub-" + hex.EncodeToString(sum[:8]))
	}
	return events.LookupRef(by.ID)
}

// lookupState is the state a look-up log's last message carries: the chain
// head and the rate's theoretical arrival time (unix nanoseconds; absent
// before the rate was kept there).
func lookupState(state []byte) (head string, tat time.Time) {
	head, t, _ := strings.Cut(string(state), " ")
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		tat = time.Unix(0, n)
	}
	return head, tat
}

// LookupWait is how long by must wait before its next personal-data
// look-up at rate (0: it may look up now). The rate is kept in the
// journal, in by's look-up log, so that every server sharing the journal
// holds one limit: N replicas do not allow N times the rate.
func (k *Keys) LookupWait(ctx context.Context, by events.Principal, rate LookupRate) (time.Duration, error) {
	_, state, _, err := k.j.Last(ctx, lookupRef(by))
	if err != nil {
		return 0, err
	}
	_, tat := lookupState(state)
	return rate.wait(tat, k.now()), nil
}

// RecordLookup appends to by's look-up log that by looked up customers by
// query (real_name_number or account_no) and found customers; the value
// looked up is never recorded. The look-up is answered only once this is
// stored, so no answer leaves unlogged. A look-up over rate is refused
// ([*LookupLimited]) and not recorded: the check and the record are one
// compare-and-set on the log, so servers sharing the journal share the
// limit exactly.
func (k *Keys) RecordLookup(ctx context.Context, by events.Principal, query string, customers []string, rate LookupRate) error {
	ref := lookupRef(by)
	if customers == nil {
		customers = []string{}
	}
	for attempt := 0; ; attempt++ {
		seq, state, _, err := k.j.Last(ctx, ref)
		if err != nil {
			return err
		}
		now := k.now().UTC()
		prev, tat := lookupState(state)
		if d := rate.wait(tat, now); d > 0 {
			return &LookupLimited{RetryAfter: d}
		}
		e := events.Event{ID: uuid.New(), OccurredAt: now, RecordedAt: now, Aggregate: ref, Institution: k.home,
			Channel: events.ChannelAdmin, Actor: events.Actor{Role: events.RoleStaff, ID: by.ID}, Principal: &by,
			Payload: events.LookedUp{Query: query, Customers: customers}}
		evs, head, err := events.Chain(prev, []events.Event{e})
		if err != nil {
			return err
		}
		next := head + " " + strconv.FormatInt(rate.next(tat, now).UnixNano(), 10)
		_, err = k.j.Append(ctx, journal.Record{Commit: events.Commit{Events: evs}, Expect: seq, MsgID: e.ID.String(), State: []byte(next)})
		if !errors.Is(err, journal.ErrConflict) || attempt == 4 {
			return err
		}
	}
}
