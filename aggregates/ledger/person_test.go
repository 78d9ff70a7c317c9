package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

// realNameFP is a fingerprint of its own for each customer number of the
// tests: one person per customer number (R-ONE-PERSON).
func realNameFP(no string) string {
	sum := sha256.Sum256([]byte("person of " + no))
	return hex.EncodeToString(sum[:])
}

func profileAs(no, fp string) aggregates.SetProfile {
	return aggregates.SetProfile{Meta: branch(""), Type: events.Individual, Nationality: events.Korean,
		RealNameFP: fp, RealNameMasked: "900101-1******"}
}

// TestOnePersonClaimIsAtomic: a customer's first profile and the claim of
// its real-name number are one atomic batch of two messages; a second
// customer number with the same real-name number is refused R-ONE-PERSON
// naming the first, also by a ledger with a cold cache, and appends
// nothing; the first customer profiled again appends no second claim.
// Eight customer numbers racing for one real-name number (two ledgers on
// one journal): exactly one is accepted, and the person's stream holds one
// claim.
func TestOnePersonClaimIsAtomic(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	fp := realNameFP("P1")
	a, err := l.Customer(ctx, "C0001", profileAs("C0001", fp))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Events) != 2 || a.Events[0].Type != events.TypeCustomerProfiled || a.Events[1].Aggregate != events.PersonRef(fp) ||
		a.Events[1].Sequence != a.Events[0].Sequence+1 || a.Events[1].Version != 1 {
		t.Fatalf("answer %+v", a)
	}
	msgs := streamMsgs(t, j)
	for _, ledger := range []*Ledger{l, newLedger(t, j)} {
		_, err := ledger.Customer(ctx, "C0002", profileAs("C0002", fp))
		var re *aggregates.RuleError
		if !errors.As(err, &re) || re.Rule != aggregates.RuleOnePerson || !containsAll(re.Message, "C0001") {
			t.Fatalf("second customer number: %v", err)
		}
	}
	if got := streamMsgs(t, j); got != msgs {
		t.Fatalf("a refused profile appended %d messages", got-msgs)
	}
	again, err := newLedger(t, j).Customer(ctx, "C0001", profileAs("C0001", fp))
	if err != nil || len(again.Events) != 1 || again.Events[0].Type != events.TypeCustomerProfiled {
		t.Fatalf("the holder profiled again: %+v %v", again, err)
	}

	race := realNameFP("P2")
	ledgers := []*Ledger{newLedger(t, j), newLedger(t, j)}
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			no := "R000" + string(rune('1'+i))
			_, results[i] = ledgers[i%2].Customer(ctx, no, profileAs(no, race))
		})
	}
	wg.Wait()
	accepted := 0
	for i, err := range results {
		switch {
		case err == nil:
			accepted++
		case aggregates.RuleOf(err) != aggregates.RuleOnePerson && !errors.Is(err, ErrConflict):
			t.Errorf("racer %d: %v", i, err)
		}
	}
	claims := 0
	for e, err := range j.Read(ctx, events.PersonRef(race), 1) {
		if err != nil {
			t.Fatal(err)
		}
		claims += len(e.Commit.Events)
	}
	if accepted != 1 || claims != 1 {
		t.Fatalf("%d racers accepted, %d claims on the person: one person, one customer number", accepted, claims)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// legacyProfile appends customer no's profile as the code before
// R-ONE-PERSON did: without a claim of its real-name number.
func legacyProfile(t *testing.T, j *journal.Journal, no, fp string) {
	t.Helper()
	m := branch("")
	m.EventID = uuid.NewSHA1(uuid.NameSpaceOID, []byte("legacy "+no))
	e := events.Event{ID: m.EventID, OccurredAt: fixture.BusinessHours, RecordedAt: fixture.BusinessHours, Aggregate: events.CustomerRef(no),
		Institution: home, Channel: events.ChannelBranch, Actor: events.Actor{Role: events.RoleSelf}, Staff: "S1",
		Payload: events.CustomerProfiled{CustomerType: events.Individual, Nationality: events.Korean, RealNameFingerprint: fp, RealNameMasked: "900101-1******"}}
	chained, _, err := events.Chain("", []events.Event{e})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(context.Background(), journal.Record{Commit: events.Commit{Events: chained}}); err != nil {
		t.Fatal(err)
	}
}

// TestLateClaim: customers profiled before R-ONE-PERSON hold no claim; the
// customer master's late claim (ClaimRealName) appends it alone, once; a
// second customer number profiled with the same real-name number before the
// rule is then refused R-ONE-PERSON naming the first, and so is any new
// profile with it.
func TestLateClaim(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	ctx := context.Background()
	fp := realNameFP("legacy person")
	legacyProfile(t, j, "L0001", fp)
	legacyProfile(t, j, "L0002", fp)
	l := newLedger(t, j)
	core := aggregates.Meta{Institution: home, Channel: events.ChannelCore, Actor: events.Actor{Role: events.RoleSystem, ID: "CORE"}}
	a, err := l.Customer(ctx, "L0001", aggregates.ClaimRealName{Meta: core})
	if err != nil || len(a.Events) != 1 || a.Events[0].Aggregate != events.PersonRef(fp) || a.Events[0].Version != 1 {
		t.Fatalf("late claim: %+v %v", a, err)
	}
	if _, err := newLedger(t, j).Customer(ctx, "L0001", aggregates.ClaimRealName{Meta: core}); !errors.Is(err, aggregates.ErrClaimed) {
		t.Fatalf("claimed again: %v", err)
	}
	for _, tc := range []struct {
		no  string
		cmd aggregates.CustomerCommand
	}{{"L0002", aggregates.ClaimRealName{Meta: core}}, {"N0003", profileAs("N0003", fp)}} {
		_, err := l.Customer(ctx, tc.no, tc.cmd)
		var re *aggregates.RuleError
		if !errors.As(err, &re) || re.Rule != aggregates.RuleOnePerson || !strings.Contains(re.Message, "L0001") {
			t.Errorf("%s: %v", tc.no, err)
		}
	}
	if _, err := l.Customer(ctx, "N0004", aggregates.ClaimRealName{Meta: core}); !errors.Is(err, aggregates.ErrNoProfile) {
		t.Errorf("a customer without a profile: %v", err)
	}
}
