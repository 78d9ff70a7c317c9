package ledger

import (
	"context"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
)

// decideCustomer decides cmd on the loaded customer c (ref) and returns each
// aggregate's part of the append, stored in one atomic batch, each part with
// its own compare-and-set:
//   - a profile also loads the claim of its real-name number and appends the
//     claim when it makes one: of two customer numbers racing for one
//     real-name number, one batch fails whole and its retry sees the other's
//     claim (R-ONE-PERSON);
//   - a mobile issuance that replaces the customer's hardware OTP at home
//     also loads that device and appends its cancellation (R-ONE-OTP).
//
// done when the device's remembered answer under key (the command's scoped
// idempotency key) settles it (the command was stored before).
func (l *Ledger) decideCustomer(ctx context.Context, ref events.AggregateRef, c loaded[aggregates.Customer], cmd aggregates.CustomerCommand, key, command string, now time.Time) (parts []part, a Answer, done bool, err error) {
	var person loaded[aggregates.Person]
	claim := func(fp string) (*aggregates.Person, error) {
		pref := events.PersonRef(fp)
		if pref.Validate() != nil { // the command's own checks refuse it
			return nil, nil
		}
		var err error
		person, err = l.persons.load(ctx, pref)
		return &person.snap.State, err
	}
	switch x := cmd.(type) {
	case aggregates.SetProfile:
		x.Person, err = claim(x.RealNameFP)
		cmd = x
	case aggregates.ClaimRealName:
		x.Person, err = claim(c.snap.State.Profile.RealNameFP)
		cmd = x
	}
	if err != nil {
		return nil, Answer{}, false, err
	}
	var dev *loaded[aggregates.Device]
	if vendor, serial, ok := aggregates.ReplacedDevice(c.snap.State, cmd); ok {
		d, err := l.devices.load(ctx, events.DeviceRef(vendor, serial))
		if err != nil {
			return nil, Answer{}, false, err
		}
		if a, done, err := d.recall(key, command); done || err != nil {
			return nil, a, done, err
		}
		issue := cmd.(aggregates.IssueMobile)
		issue.Device = &d.snap.State
		cmd, dev = issue, &d
	}
	evs, err := c.snap.State.Decide(cmd, now, &l.cfg.Policy)
	if err != nil {
		return nil, Answer{}, false, err
	}
	mine, others := split(ref, evs)
	if len(mine) > 0 {
		cw, err := l.customers.writing(c, mine)
		if err != nil {
			return nil, Answer{}, false, err
		}
		parts = append(parts, cw)
	}
	var claimEvs, devEvs []events.Event
	for _, e := range others {
		if e.Aggregate.Kind == events.KindPerson {
			claimEvs = append(claimEvs, e)
		} else {
			devEvs = append(devEvs, e)
		}
	}
	if len(claimEvs) > 0 {
		pw, err := l.persons.writing(person, claimEvs)
		if err != nil {
			return nil, Answer{}, false, err
		}
		parts = append(parts, pw)
	}
	if len(devEvs) > 0 {
		if dev == nil {
			return nil, Answer{}, false, aggregates.ErrDeviceState
		}
		dw, err := l.devices.writing(*dev, devEvs)
		if err != nil {
			return nil, Answer{}, false, err
		}
		parts = append(parts, dw)
	}
	return parts, Answer{}, false, nil
}
