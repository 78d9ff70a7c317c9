package audit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

// TestHistoryAsOfIsWhatWasRecorded: 'history --as-of T' lists the events the
// ledger had recorded at T (recorded_at, in append order) and the state
// then; a centre event that occurred before T but arrived after it is in
// neither.
func TestHistoryAsOfIsWhatWasRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j := journaltest.Journal(t)
	var clock atomic.Int64
	clock.Store(fixture.BusinessHours.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	l, err := ledger.New(j, ledger.Config{Policy: aggregates.DefaultPolicy(fixture.Home), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	run := func(cmd aggregates.DeviceCommand) {
		t.Helper()
		if _, err := l.Device(ctx, "OTP", "SERIAL0001", cmd); err != nil {
			t.Fatal(err)
		}
		clock.Add(int64(time.Minute))
	}
	run(aggregates.Register{Meta: fixture.Center("KB001")})
	local := now()
	run(aggregates.IncrementError{Meta: fixture.Auth("")})
	late := fixture.Center("KB001")
	late.OriginChannel, late.OccurredAt = events.OriginBranch, local.Add(-300*time.Microsecond)
	run(aggregates.ResetErrors{Meta: late})
	ref := events.DeviceRef("OTP", "SERIAL0001")
	for _, tc := range []struct {
		asOf   time.Time
		events int
		count  int
	}{
		{local.Add(30 * time.Second), 2, 1}, // the reset had occurred, but the ledger had not recorded it yet
		{local.Add(2 * time.Minute), 3, 0},
		{time.Time{}, 3, 0},
	} {
		h, err := ReadHistory(ctx, l, j, ref, Query{AsOf: tc.asOf})
		if err != nil {
			t.Fatal(err)
		}
		if d := h.State.(aggregates.Device); len(h.Events) != tc.events || d.ErrorCount != tc.count || d.Version != uint64(tc.events) {
			t.Errorf("as of %s: %d events, state %+v; want %d events, count %d", tc.asOf.Format(time.RFC3339Nano), len(h.Events), d, tc.events, tc.count)
		}
	}
}
