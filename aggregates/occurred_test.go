package aggregates

import (
	"errors"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
)

// TestOccurredAtBounds: a centre feed's own occurred_at is accepted within
// the policy's skew ahead of the ledger's clock and after its horizon, even
// before the aggregate's previous event (the feed is asynchronous: a late
// event is recorded, never refused); otherwise it is a field error.
func TestOccurredAtBounds(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy(home)
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	last := now.Add(-time.Hour)
	dev := NewDevice("OTP", "SERIAL0001").Evolve(events.Event{ID: cmdID, OccurredAt: last, Institution: "KB001",
		Channel: events.ChannelCenter, Payload: events.Registered{Vendor: "OTP", Serial: "SERIAL0001"}})
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"the ledger's clock (zero)", time.Time{}, true},
		{"now", now, true},
		{"4 minutes ahead", now.Add(4 * time.Minute), true},
		{"6 minutes ahead", now.Add(6 * time.Minute), false},
		{"equal to the previous event", last, true},
		{"a few hundred microseconds before the previous event", last.Add(-300 * time.Microsecond), true},
		{"a day before the previous event", last.Add(-24 * time.Hour), true},
		{"before the horizon", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{"year -1", time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)).UTC(), false},
	} {
		m := center("KB002", events.OriginBranch)
		m.OccurredAt = tc.at
		_, err := dev.Decide(Register{Meta: m}, now, &p)
		var fe *events.FieldError
		if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &fe) || fe.Field != "occurred_at")) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := ParsePolicy([]byte(`{"occurred_at":{"max_skew":"1h","horizon":"2020-01-01"}}`), home); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"occurred_at":{"max_skew":"soon","horizon":"2020-01-01"}}`, `{"occurred_at":{"max_skew":"5m","horizon":"2020"}}`} {
		if _, err := ParsePolicy([]byte(bad), home); err == nil {
			t.Errorf("policy %s accepted", bad)
		}
	}
}
