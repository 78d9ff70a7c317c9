package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

// plant stores data with state (nil: no state header) under ref's subject,
// as a writer holding the ledger's credential but not the ledger would,
// and returns its sequence.
func plant(t *testing.T, nc *nats.Conn, ref events.AggregateRef, data, state []byte) uint64 {
	t.Helper()
	return journaltest.InjectState(t, nc, events.Subject(ref), data, state)
}

// last returns ref's last stored message that decodes.
func last(t *testing.T, j *journal.Journal, ref events.AggregateRef) journal.Entry {
	t.Helper()
	var out journal.Entry
	for e, err := range j.Read(context.Background(), ref, 1) {
		if errors.Is(err, journal.ErrUndecodable) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = e
	}
	return out
}

// TestForgedStateHeaderIgnored: a state header turning an individual
// customer corporate, carried by junk (a commit of no event) and by a
// well-formed commit of another customer, both with the real chain head as
// last_hash, is not loaded: the customer is still individual, and the next
// command is decided on that and appended after the junk.
func TestForgedStateHeaderIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	l := newLedger(t, j)
	profile(t, l, "C0001")
	profile(t, l, "C0002")
	ref := events.CustomerRef("C0001")
	real, _, err := l.LoadCustomer(ctx, "C0001")
	if err != nil || real.Profile.Type != events.Individual {
		t.Fatalf("before: %+v %v", real.Profile, err)
	}
	forged := real
	forged.Profile.Type = events.Corporate
	head := last(t, j, ref).Commit.Events[0].Hash
	state, err := Snapshot(forged, head)
	if err != nil {
		t.Fatal(err)
	}
	other, err := events.EncodeCommit(last(t, j, events.CustomerRef("C0002")).Commit)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"junk": []byte(`{"events":[]}`), "another customer's commit": other} {
		seq := plant(t, srv.Conn, ref, data, state)
		for _, ld := range []*Ledger{l, newLedger(t, j)} { // warm (cached, now stale) and cold
			c, at, err := ld.LoadCustomer(ctx, "C0001")
			if err != nil || c.Profile.Type != events.Individual || c.Version != real.Version || at != seq {
				t.Fatalf("%s with a forged header: %+v version %d at %d, want individual version %d at %d (%v)",
					name, c.Profile, c.Version, at, real.Version, seq, err)
			}
		}
	}
	// Decided on the individual customer, chained to its real head.
	if _, err := l.Customer(ctx, "C0001", aggregates.SetProfile{Meta: branch(""), Type: events.Individual, Nationality: events.Korean,
		RealNameFP: realNameFP("C0001"), RealNameMasked: "900101-1******", Accounts: []string{"12345678"}}); err != nil {
		t.Fatalf("a command after the forgeries: %v", err)
	}
	after := last(t, j, ref)
	if got := after.Commit.Events[0]; got.Aggregate != ref || got.PrevHash != head {
		t.Fatalf("the next event chains to %q, want the customer's own last %q", got.PrevHash, head)
	}
	c, _, err := newLedger(t, j).LoadCustomer(ctx, "C0001")
	if err != nil || c.Profile.Type != events.Individual || c.Version != real.Version+1 {
		t.Fatalf("after the next command: %+v version %d (%v)", c.Profile, c.Version, err)
	}
}

// TestReplayedCommitUnderAnotherSubjectIgnored: device A's last message
// (its commit and its state header) replayed under device B's subject does
// not become B's state, cold, warm or as of the end; B's next command is
// decided on B's real state and chained to B's own last event, appended
// after the replayed message.
func TestReplayedCommitUnderAnotherSubjectIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	l := newLedger(t, j)
	for _, s := range []string{"SERIALA001", "SERIALB001"} {
		if _, err := l.Device(ctx, "OTP", s, aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := l.Device(ctx, "OTP", "SERIALA001", aggregates.IncrementError{Meta: fixture.Auth("")}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := events.DeviceRef("OTP", "SERIALA001"), events.DeviceRef("OTP", "SERIALB001")
	headB := last(t, j, b).Commit.Events[0].Hash
	fromA := last(t, j, a)
	data, err := events.EncodeCommit(fromA.Commit)
	if err != nil {
		t.Fatal(err)
	}
	seq := plant(t, srv.Conn, b, data, fromA.State)
	plant(t, srv.Conn, b, data, nil) // once more, without the header: replayed, not folded
	seq++
	for name, ld := range map[string]*Ledger{"warm": l, "cold": newLedger(t, j)} {
		d, at, err := ld.LoadDevice(ctx, "OTP", "SERIALB001")
		if err != nil || d.Ref != b || d.ErrorCount != 0 || d.Version != 1 || at != seq {
			t.Fatalf("%s load of B: %+v at %d (%v), want B registered, no error, at %d", name, d, at, err, seq)
		}
		d, _, err = ld.DeviceAsOf(ctx, "OTP", "SERIALB001", 0, time.Time{})
		if err != nil || d.Ref != b || d.ErrorCount != 0 || d.Version != 1 {
			t.Fatalf("%s B as of the end: %+v (%v)", name, d, err)
		}
	}
	ans, err := newLedger(t, j).Device(ctx, "OTP", "SERIALB001", aggregates.IncrementError{Meta: fixture.Auth("")})
	if err != nil || len(ans.Events) != 1 || ans.Events[0].Sequence != seq+1 {
		t.Fatalf("B's next command: %+v (%v), want one event at %d", ans, err, seq+1)
	}
	if e := last(t, j, b).Commit.Events[0]; e.PrevHash != headB {
		t.Errorf("B's next event chains to %q, want B's own last %q", e.PrevHash, headB)
	}
	d, _, err := newLedger(t, j).LoadDevice(ctx, "OTP", "SERIALB001")
	if err != nil || d.ErrorCount != 1 || d.Version != 2 {
		t.Fatalf("B after its next command: %+v (%v)", d, err)
	}
}

// TestUndecodableMessageIsNotTheCallers: a message no decoder reads on a
// device's subject neither fails a load nor a command (it is no caller's
// input): the device loads, warm and cold and as of, with its real state,
// the next command is accepted after it, and the ledger counts it.
func TestUndecodableMessageIsNotTheCallers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	l := newLedger(t, j)
	if _, err := l.Device(ctx, "OTP", "SERIAL0001", aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	ref := events.DeviceRef("OTP", "SERIAL0001")
	seq := plant(t, srv.Conn, ref, []byte(`{"events":[`), nil)
	cold := newLedger(t, j)
	for name, ld := range map[string]*Ledger{"warm": l, "cold": cold} {
		d, at, err := ld.LoadDevice(ctx, "OTP", "SERIAL0001")
		if err != nil || d.Version != 1 || at != seq {
			t.Fatalf("%s load: %+v at %d (%v)", name, d, at, err)
		}
		if d, _, err := ld.DeviceAsOf(ctx, "OTP", "SERIAL0001", 0, time.Time{}); err != nil || d.Version != 1 {
			t.Fatalf("%s as of: %+v (%v)", name, d, err)
		}
	}
	if _, err := cold.Device(ctx, "OTP", "SERIAL0001", aggregates.IncrementError{Meta: fixture.Auth("")}); err != nil {
		t.Fatalf("a command after an undecodable message: %v", err)
	}
	if d, _, err := newLedger(t, j).LoadDevice(ctx, "OTP", "SERIAL0001"); err != nil || d.ErrorCount != 1 || d.Version != 2 {
		t.Fatalf("after the command: %+v (%v)", d, err)
	}
	if n := cold.Stats().Findings; n == 0 {
		t.Error("the undecodable message is not counted")
	}
}
