package projections_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/projections"
)

// TestWarrantyEndIsShownNotStatus (R-HW-VALIDITY): on 2376 a hardware device
// past its warranty stays ACTIVE with warranty_ended, from the first instant
// of the day after warranty_to in Korea (not in UTC), in the memory and the
// PostgreSQL views alike; EXPIRED stays a mobile OTP's status.
func TestWarrantyEndIsShownNotStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2024, 1, 2, 1, 0, 0, 0, time.UTC)
	ev := func(ref events.AggregateRef, p events.Payload) events.Event {
		return events.Event{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0, Aggregate: ref, Institution: "IBKS", Channel: events.ChannelHTS,
			Actor: events.Actor{Role: events.RoleSelf, ID: "WEB"}, Payload: p}
	}
	reg := events.Registered{Vendor: "OTP", Serial: "000111222333", CustomerNo: "C0001", WarrantyFrom: "2024-01-01", WarrantyTo: "2026-11-25"}
	issued := ev(events.CustomerRef("C0002"), events.MobileIssued{GeneratorNo: "MOTP0001", PhoneFingerprint: strings.Repeat("a1", 32),
		PhoneMasked: "*******5678", ValidUntil: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)})
	issued.Channel = events.ChannelMTS
	items := []projections.Item{
		{Seq: 1, Commit: events.Commit{Events: []events.Event{ev(events.DeviceRef("OTP", "000111222333"), reg)}}},
		{Seq: 2, Commit: events.Commit{Events: []events.Event{ev(events.CustomerRef("C0001"), reg)}}},
		{Seq: 3, Commit: events.Commit{Events: []events.Event{issued}}},
	}
	stores := map[string]interface {
		projections.Writer
		projections.Reader
	}{"memory": projections.NewMemory(), "postgres": projections.NewPostgres(pgtest.Pool(t, pgtest.Database(t)))}
	for name, s := range stores {
		if err := s.Apply(ctx, items); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, tc := range []struct {
			at               time.Time
			hardware, mobile string
			warrantyEnded    bool
		}{
			{time.Date(2026, 11, 25, 14, 59, 59, 0, time.UTC), projections.StatusActive, projections.StatusActive, false}, // 23:59:59 KST on warranty_to
			{time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), projections.StatusActive, projections.StatusExpired, true},   // 00:00 KST the day after, still the 25th in UTC
			{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), projections.StatusActive, projections.StatusExpired, true},
		} {
			hw, err := s.CustomerDevices(ctx, "C0001", tc.at)
			if err != nil || len(hw.Items) != 1 {
				t.Fatalf("%s: %+v %v", name, hw, err)
			}
			mob, err := s.CustomerDevices(ctx, "C0002", tc.at)
			if err != nil || len(mob.Items) != 1 {
				t.Fatalf("%s: %+v %v", name, mob, err)
			}
			h, m := hw.Items[0], mob.Items[0]
			if h.Status != tc.hardware || h.WarrantyEnded != tc.warrantyEnded || h.WarrantyTo != "2026-11-25" || m.Status != tc.mobile || m.WarrantyEnded {
				t.Errorf("%s at %s: hardware %s warranty_ended %v, mobile %s; want %s %v, %s", name, tc.at.Format(time.RFC3339),
					h.Status, h.WarrantyEnded, m.Status, tc.hardware, tc.warrantyEnded, tc.mobile)
			}
		}
	}
}
