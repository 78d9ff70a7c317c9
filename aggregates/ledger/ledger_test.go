package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

const home = fixture.Home

func newLedger(t testing.TB, j *journal.Journal) *Ledger {
	t.Helper()
	l, err := New(j, Config{Policy: aggregates.DefaultPolicy(home), Now: func() time.Time { return fixture.BusinessHours }})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func branch(key string) aggregates.Meta { return fixture.Branch("S1", key) }

func profile(t testing.TB, l *Ledger, no string) {
	t.Helper()
	_, err := l.Customer(context.Background(), no, aggregates.SetProfile{Meta: branch(""), Type: events.Individual, Nationality: events.Korean,
		RealNameFP: realNameFP(no), RealNameMasked: "900101-1******"})
	if err != nil {
		t.Fatal(err)
	}
}

func streamMsgs(t *testing.T, j *journal.Journal) uint64 {
	t.Helper()
	n, err := j.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHomeRegistrationIsOneBatchAndIdempotent(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	profile(t, l, "C0001")
	reg := aggregates.Register{Meta: branch("producer-1:reg-1"), CustomerNo: "C0001"}
	first, err := l.Device(ctx, "OTP", "SERIAL0001", reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Events) != 2 || first.Events[0].Aggregate.Kind != events.KindDevice || first.Events[1].Aggregate.Kind != events.KindCustomer ||
		first.Events[1].Sequence != first.Events[0].Sequence+1 || first.Events[0].Version != 1 || first.Events[1].Version != 2 {
		t.Fatalf("answer %+v", first)
	}
	msgs := streamMsgs(t, j)
	for _, ledger := range []*Ledger{l, newLedger(t, j)} { // the same process, and another with a cold cache
		again, err := ledger.Device(ctx, "OTP", "SERIAL0001", reg)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("retry answered %+v, first %+v", again, first)
		}
	}
	if got := streamMsgs(t, j); got != msgs {
		t.Fatalf("retries appended %d messages", got-msgs)
	}
	// A second registration for the same customer is refused by R-ONE-OTP.
	_, err = l.Device(ctx, "OTP", "SERIAL0002", aggregates.Register{Meta: branch(""), CustomerNo: "C0001"})
	if aggregates.RuleOf(err) != aggregates.RuleOneOTP {
		t.Fatalf("second OTP: %v", err)
	}
}

func TestColdLoadUsesSnapshot(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	if _, err := l.Device(ctx, "OTP", "SERIAL0001", aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if _, err := l.Device(ctx, "OTP", "SERIAL0001", aggregates.IncrementError{Meta: fixture.Auth("")}); err != nil {
			t.Fatal(err)
		}
	}
	cold := newLedger(t, j)
	d, seq, err := cold.LoadDevice(ctx, "OTP", "SERIAL0001")
	if err != nil || d.ErrorCount != 7 || d.Version != 8 || seq != 8 {
		t.Fatalf("cold load: %+v seq %d %v", d, seq, err)
	}
	replayed, _, err := cold.DeviceAsOf(ctx, "OTP", "SERIAL0001", 0, time.Time{})
	if err != nil || replayed.ErrorCount != d.ErrorCount || replayed.Version != d.Version {
		t.Fatalf("snapshot %+v differs from replay %+v (%v)", d, replayed, err)
	}
	old, seq, err := cold.DeviceAsOf(ctx, "OTP", "SERIAL0001", 4, time.Time{})
	if err != nil || old.ErrorCount != 3 || seq != 4 {
		t.Fatalf("as of sequence 4: %+v %d %v", old, seq, err)
	}
}

// TestConcurrentConflictingCommands races 16 goroutines, through two ledgers
// (two processes' caches), on one customer and a few devices, then checks the
// invariants on the final stream and that every accepted command is in it.
func TestConcurrentConflictingCommands(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	ledgers := []*Ledger{newLedger(t, j), newLedger(t, j)}
	ctx := context.Background()
	profile(t, ledgers[0], "C0001")
	for _, s := range []string{"SERIAL0100", "SERIAL0200"} {
		if _, err := ledgers[0].Device(ctx, "OTP", s, aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu       sync.Mutex
		accepted []Event
		conflict atomic.Int64
		wg       sync.WaitGroup
	)
	record := func(a Answer, err error) {
		switch {
		case err == nil:
			mu.Lock()
			accepted = append(accepted, a.Events...)
			mu.Unlock()
		case errors.Is(err, ErrConflict):
			conflict.Add(1)
		case aggregates.RuleOf(err) == "":
			t.Errorf("unexpected error: %v", err)
		}
	}
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ledgers[g%2]
			for i := range 12 {
				switch g % 4 {
				case 0: // registrations for one customer on different devices: R-ONE-OTP lets one win
					record(l.Device(ctx, "OTP", fmt.Sprintf("SERIAL%02d%02d", g, i), aggregates.Register{Meta: branch(""), CustomerNo: "C0001"}))
				case 1: // error increments racing resets
					record(l.Device(ctx, "OTP", "SERIAL0100", aggregates.IncrementError{Meta: fixture.Auth("")}))
				case 2:
					record(l.Device(ctx, "OTP", "SERIAL0100", aggregates.ResetErrors{Meta: fixture.Center("KB001")}))
				case 3: // a loss report racing registrations
					if i%3 == 0 {
						record(l.Device(ctx, "OTP", "SERIAL0200", aggregates.ReportLoss{Meta: fixture.Center("KB001"), Reason: events.LossLost}))
					} else {
						record(l.Device(ctx, "OTP", "SERIAL0200", aggregates.Register{Meta: fixture.Center(fmt.Sprintf("IN%02d%02d", g, i))}))
					}
				}
			}
		}()
	}
	wg.Wait()

	// Fold the whole stream per aggregate and check the invariants.
	var commits []events.Commit
	err := j.Scan(ctx, 0, 0, func(msgs []journal.Message) error {
		for _, m := range msgs {
			c, err := events.DecodeCommit(m.Data)
			if err != nil {
				return err
			}
			commits = append(commits, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	devices, customers, seen := map[string]aggregates.Device{}, map[string]aggregates.Customer{}, map[string]bool{}
	for _, c := range commits {
		for _, e := range c.Events {
			seen[e.ID.String()] = true
			switch e.Aggregate.Kind {
			case events.KindDevice:
				d, ok := devices[e.Aggregate.Key]
				if !ok {
					v, s, _ := e.Aggregate.DeviceKey()
					d = aggregates.NewDevice(v, s)
				}
				devices[e.Aggregate.Key] = d.Evolve(e)
			case events.KindCustomer:
				cu, ok := customers[e.Aggregate.Key]
				if !ok {
					cu = aggregates.NewCustomer(e.Aggregate.Key)
				}
				customers[e.Aggregate.Key] = cu.Evolve(e)
			}
		}
	}
	homeRegs := 0
	for key, d := range devices {
		if d.ErrorCount < 0 || d.ErrorCount > 10 || d.Locked != (d.ErrorCount == 10) {
			t.Errorf("device %s: count %d locked %v", key, d.ErrorCount, d.Locked)
		}
		if _, ok := d.HomeCustomer(ledgers[0].Policy()); ok {
			homeRegs++
		}
		if d.InAccident() && len(d.Accident) != len(d.Registrations) {
			t.Errorf("device %s: accident at %d of %d registrations", key, len(d.Accident), len(d.Registrations))
		}
	}
	if c := customers["C0001"]; homeRegs != 1 || !c.Hardware.Active {
		t.Errorf("R-ONE-OTP: %d home registrations, customer %+v", homeRegs, c.Hardware)
	}
	for _, e := range accepted {
		if !seen[e.ID.String()] {
			t.Errorf("accepted event %s (%s) is not in the stream", e.ID, e.Type)
		}
	}
	retried := ledgers[0].Stats().Conflicts + ledgers[1].Stats().Conflicts
	if retried == 0 {
		t.Error("no append conflicted: the race did not race")
	}
	t.Logf("%d accepted events, %d conflicts retried, %d commands gave up, %d messages", len(accepted), retried, conflict.Load(), len(commits))
}

// TestLoadWithoutSnapshotReplays covers messages written without a usable
// snapshot (another writer, or an older snapshot format): loading folds the
// aggregate's events instead.
func TestLoadWithoutSnapshotReplays(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	ctx := context.Background()
	p := aggregates.DefaultPolicy(home)
	d := aggregates.NewDevice("OTP", "SERIAL0001")
	var seq uint64
	head := ""
	for i, cmd := range []aggregates.DeviceCommand{aggregates.Register{Meta: fixture.Center("KB001")}, aggregates.IncrementError{Meta: fixture.Auth("")}} {
		m := cmd.Metadata()
		m.EventID = uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)})
		evs, err := d.Decide(aggregates.WithMeta(cmd, m, nil), fixture.BusinessHours, &p)
		if err != nil {
			t.Fatal(err)
		}
		if evs, head, err = events.Chain(head, evs); err != nil { // as the ledger writes them
			t.Fatal(err)
		}
		state := []byte(`{"v":0}`) // a snapshot format this code does not read
		seqs, err := j.Append(ctx, journal.Record{Commit: events.Commit{Events: evs}, Expect: seq, State: state})
		if err != nil {
			t.Fatal(err)
		}
		d, seq = aggregates.Fold(d, evs, time.Time{}), seqs[0]
	}
	got, gotSeq, err := newLedger(t, j).LoadDevice(ctx, "OTP", "SERIAL0001")
	if err != nil || got.Version != 2 || got.ErrorCount != 1 || gotSeq != seq {
		t.Fatalf("replayed load: %+v at %d (%v)", got, gotSeq, err)
	}
}

// TestConfigBoundaries: a cache of one aggregate and a single attempt are
// valid settings; below that is refused.
func TestConfigBoundaries(t *testing.T) {
	t.Parallel()
	p := aggregates.DefaultPolicy(home)
	if err := (Config{Policy: p, CacheSize: 1, MaxAttempts: 1}).Validate(); err != nil {
		t.Errorf("cache 1, attempts 1: %v", err)
	}
	for _, c := range []Config{{Policy: p, CacheSize: 0, MaxAttempts: 1}, {Policy: p, CacheSize: 1, MaxAttempts: 0}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestStaleCacheRetries: a command on a cached aggregate that another
// process changed loses its compare-and-set, waits one backoff, reloads
// and succeeds.
func TestStaleCacheRetries(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	ctx := context.Background()
	var waits atomic.Int32
	a, err := New(j, Config{Policy: aggregates.DefaultPolicy(home), Now: func() time.Time { return fixture.BusinessHours },
		Backoff: func(int) time.Duration { waits.Add(1); return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	b := newLedger(t, j)
	if _, err := a.Device(ctx, "OTP", "SERIAL0001", aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Device(ctx, "OTP", "SERIAL0001", aggregates.IncrementError{Meta: fixture.Auth("")}); err != nil {
		t.Fatal(err)
	}
	answer, err := a.Device(ctx, "OTP", "SERIAL0001", aggregates.IncrementError{Meta: fixture.Auth("")})
	if err != nil || waits.Load() != 1 || answer.Events[0].Version != 3 {
		t.Fatalf("stale cache: %+v %v after %d waits, want version 3 after 1", answer, err, waits.Load())
	}
}

// TestEvictedAnswerFoundInHistory: an idempotent retry whose answer the
// aggregate's recent answers dropped (more than 64 keyed commands since) is
// found in its history: the same answer, nothing appended.
func TestEvictedAnswerFoundInHistory(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	register := func(i int) aggregates.Register {
		m := fixture.Center(fmt.Sprintf("I%04d", i))
		m.IdempotencyKey = fmt.Sprintf("feed:%d", i)
		return aggregates.Register{Meta: m}
	}
	var answers []Answer
	for i := 0; i <= recentMax+1; i++ {
		a, err := l.Device(ctx, "OTP", "SERIAL0001", register(i))
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, a)
	}
	msgs := streamMsgs(t, j)
	for _, ledger := range []*Ledger{l, newLedger(t, j)} {
		for i := range 2 { // both evicted; the second's answer is in the second message, not the first
			again, err := ledger.Device(ctx, "OTP", "SERIAL0001", register(i))
			if err != nil || fmt.Sprint(again) != fmt.Sprint(answers[i]) {
				t.Fatalf("retry %d of an evicted answer: %+v %v, first %+v", i, again, err, answers[i])
			}
		}
	}
	if got := streamMsgs(t, j); got != msgs {
		t.Fatalf("retries appended %d messages", got-msgs)
	}
}
