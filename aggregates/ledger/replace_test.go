package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

func issueMobile(key, gen string) aggregates.IssueMobile {
	return aggregates.IssueMobile{Meta: aggregates.Meta{Institution: home, Channel: events.ChannelMTS, Actor: events.Actor{Role: events.RoleSelf, ID: "WEB"}, IdempotencyKey: key},
		GeneratorNo: gen, PhoneFP: strings.Repeat("a1", 32), PhoneMasked: "*******5678",
		Verification: events.Verification{HomeAccount: true, PhoneIdentity: true, OTPOrSecurityCard: true}}
}

// TestMobileReplacesHardwareInOneBatch (R-ONE-OTP): a mobile issuance to a
// customer with hardware at home ends that registration on the customer and
// the device in the same atomic batch as the issuance (the device stays
// registered elsewhere), a retry answers the same, and a home registration
// then revokes the mobile OTP the same way.
func TestMobileReplacesHardwareInOneBatch(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	profile(t, l, "C0001")
	if _, err := l.Device(ctx, "OTP", "SERIAL0001", aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Device(ctx, "OTP", "SERIAL0001", aggregates.Register{Meta: branch(""), CustomerNo: "C0001"}); err != nil {
		t.Fatal(err)
	}
	first, err := l.Customer(ctx, "C0001", issueMobile("mts-1", "MOTP0001"))
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, e := range first.Events {
		got += fmt.Sprintf("%s/%s@%d ", e.Aggregate.Kind, e.Type, e.Sequence-first.Events[0].Sequence)
	}
	if want := "customer/cancelled@0 customer/mobile_issued@0 device/cancelled@1 "; got != want {
		t.Fatalf("answer %s, want %s", got, want)
	}
	msgs := streamMsgs(t, j)
	for _, ledger := range []*Ledger{l, newLedger(t, j)} { // warm and cold caches
		again, err := ledger.Customer(ctx, "C0001", issueMobile("mts-1", "MOTP0001"))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("retry answered %+v %v, first %+v", again, err, first)
		}
		d, _, _ := ledger.LoadDevice(ctx, "OTP", "SERIAL0001")
		c, _, _ := ledger.LoadCustomer(ctx, "C0001")
		if _, atHome := d.Registrations[home]; atHome || len(d.Registrations) != 1 || c.Hardware.Active || !c.Mobile.Active {
			t.Fatalf("after the replacement: device at %v, customer %+v", d.Registrations, c)
		}
	}
	if n := streamMsgs(t, j); n != msgs {
		t.Fatalf("retries appended %d messages", n-msgs)
	}
	back, err := l.Device(ctx, "OTP", "SERIAL0002", aggregates.Register{Meta: branch(""), CustomerNo: "C0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Events) != 3 || back.Events[1].Type != events.TypeMobileRevoked || back.Events[1].Aggregate != events.CustomerRef("C0001") {
		t.Fatalf("hardware replacing the mobile OTP answered %+v", back)
	}
	c, _, _ := newLedger(t, j).LoadCustomer(ctx, "C0001")
	if c.Mobile.Active || c.Hardware.Serial != "SERIAL0002" {
		t.Fatalf("customer after the hardware came back: %+v", c)
	}
}

// TestMobileReplacementRacesLossReport races a mobile issuance that would
// replace the home hardware against a loss report of that device, through
// two ledgers: whichever wins, the customer's hardware and the device's home
// registration agree (the two aggregates are appended together or not at
// all), and a device in accident is never replaced (R-HW-LOST-BLOCKS).
func TestMobileReplacementRacesLossReport(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	ledgers := []*Ledger{newLedger(t, j), newLedger(t, j)}
	ctx := context.Background()
	replaced, blocked := 0, 0
	for round := range 12 {
		no, serial := fmt.Sprintf("C%04d", round), fmt.Sprintf("SERIAL%04d", round)
		profile(t, ledgers[0], no)
		if _, err := ledgers[1].Device(ctx, "OTP", serial, aggregates.Register{Meta: branch(""), CustomerNo: no}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var issueErr, lossErr error
		wg.Go(func() { _, issueErr = ledgers[round%2].Customer(ctx, no, issueMobile("", "MOTP0001")) })
		wg.Go(func() {
			_, lossErr = ledgers[(round+1)%2].Device(ctx, "OTP", serial, aggregates.ReportLoss{Meta: fixture.Center("KB001"), Reason: events.LossLost})
		})
		wg.Wait()
		d, _, err := newLedger(t, j).DeviceAsOf(ctx, "OTP", serial, 0, fixture.BusinessHours.AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		c, _, _ := newLedger(t, j).CustomerAsOf(ctx, no, 0, fixture.BusinessHours.AddDate(1, 0, 0))
		_, atHome := d.Registrations[home]
		switch {
		case atHome != c.Hardware.Active || c.Hardware.Active == c.Mobile.Active:
			t.Fatalf("round %d: device at home %v, customer %+v (issue: %v, loss: %v)", round, atHome, c, issueErr, lossErr)
		case issueErr == nil:
			replaced++
			if lossErr == nil && d.InAccident() {
				t.Fatalf("round %d: the loss report came after the replacement yet names home: %+v", round, d.Accident)
			}
		case aggregates.RuleOf(issueErr) == aggregates.RuleHWLostBlocks:
			blocked++
		default:
			t.Fatalf("round %d: issue %v, loss %v", round, issueErr, lossErr)
		}
	}
	t.Logf("%d replacements first, %d blocked by the accident", replaced, blocked)
}
