package ledger

import (
	"context"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
)

// decideCustomer decides cmd on the loaded customer c and returns each
// aggregate's part of the append: the customer's and, for a mobile issuance
// that replaces the customer's hardware OTP at home (R-ONE-OTP), the
// device's, so that the cancellation and the issuance are stored together or
// not at all. done when the device's remembered answer under the command's
// idempotency key settles it (the command was stored before).
func (l *Ledger) decideCustomer(ctx context.Context, c loaded[aggregates.Customer], cmd aggregates.CustomerCommand, command string, now time.Time) (parts []part, a Answer, done bool, err error) {
	var dev *loaded[aggregates.Device]
	if vendor, serial, ok := aggregates.ReplacedDevice(c.snap.State, cmd); ok {
		d, err := l.devices.load(ctx, events.DeviceRef(vendor, serial))
		if err != nil {
			return nil, Answer{}, false, err
		}
		if a, done, err := d.recall(cmd.Metadata().IdempotencyKey, command); done || err != nil {
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
	custEvs, devEvs := split(c.snap.State.Ref, evs)
	cw, err := l.customers.writing(c, custEvs)
	switch {
	case err != nil:
		return nil, Answer{}, false, err
	case len(devEvs) == 0:
		return []part{cw}, Answer{}, false, nil
	case dev == nil:
		return nil, Answer{}, false, aggregates.ErrDeviceState
	}
	dw, err := l.devices.writing(*dev, devEvs)
	if err != nil {
		return nil, Answer{}, false, err
	}
	return []part{cw, dw}, Answer{}, false, nil
}
