package ledger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

// replicas returns two ledgers, each on a journal connection of its own to
// one JetStream server: two replicas of the service.
func replicas(t *testing.T) (a, b *Ledger, j *journal.Journal) {
	t.Helper()
	srv := journaltest.Run(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	j = journaltest.Open(t, srv.Conn, journal.Config{})
	return newLedger(t, j), newLedger(t, journaltest.Open(t, nc, journal.Config{})), j
}

// lockOn registers device serial at KB001 through l and increments its
// errors until it is locked: l caches it locked.
func lockOn(t *testing.T, l *Ledger, serial string) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.Device(ctx, "OTP", serial, aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	for range l.Policy().DeviceErrorLimit {
		if _, err := l.Device(ctx, "OTP", serial, aggregates.IncrementError{Meta: fixture.Auth("")}); err != nil {
			t.Fatal(err)
		}
	}
	if d, _, err := l.LoadDevice(ctx, "OTP", serial); err != nil || !d.Locked {
		t.Fatalf("device after %d errors: %+v %v, want locked", l.Policy().DeviceErrorLimit, d, err)
	}
}

// TestReplicaReflectsTheOtherReplicasWrites (api.md: the ledger is
// linearizable on every replica): after a reset acknowledged by replica B,
// replica A, which cached the device locked, accepts an increment rather
// than refusing it R-HW-LOCK; then each replica reads the device as the
// other left it.
func TestReplicaReflectsTheOtherReplicasWrites(t *testing.T) {
	t.Parallel()
	a, b, _ := replicas(t)
	ctx := context.Background()
	lockOn(t, a, "SERIAL0001")
	if _, _, err := b.LoadDevice(ctx, "OTP", "SERIAL0001"); err != nil { // B caches it too
		t.Fatal(err)
	}
	reset, err := b.Device(ctx, "OTP", "SERIAL0001", aggregates.ResetErrors{Meta: fixture.Center("KB001")})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := a.Device(ctx, "OTP", "SERIAL0001", aggregates.IncrementError{Meta: fixture.Auth("")})
	if err != nil || inc.Events[0].Version != reset.Events[0].Version+1 {
		t.Fatalf("increment on replica A after replica B's reset: %+v %v", inc, err)
	}
	if s := a.Stats(); s.Conflicts != 0 {
		t.Errorf("replica A appended on a stale cache: %d conflicts", s.Conflicts)
	}
	for name, l := range map[string]*Ledger{"A": a, "B": b} {
		d, seq, err := l.LoadDevice(ctx, "OTP", "SERIAL0001")
		if err != nil || d.ErrorCount != 1 || d.Locked || seq != inc.Events[0].Sequence || d.Version != inc.Events[0].Version {
			t.Errorf("replica %s reads version %d at %d (errors %d, locked %v, %v) after version %d was stored at %d",
				name, d.Version, seq, d.ErrorCount, d.Locked, err, inc.Events[0].Version, inc.Events[0].Sequence)
		}
	}
}

// TestRetryOnTheOtherReplicaGetsTheFirstAnswer: a command stored through
// replica B (whose answer was lost) retried under its key on replica A,
// whose cache predates it, gets B's answer, never a refusal, and nothing is
// appended.
func TestRetryOnTheOtherReplicaGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	a, b, j := replicas(t)
	ctx := context.Background()
	lockOn(t, a, "SERIAL0001")
	if _, err := b.Device(ctx, "OTP", "SERIAL0001", aggregates.ResetErrors{Meta: fixture.Center("KB001")}); err != nil {
		t.Fatal(err)
	}
	inc := aggregates.IncrementError{Meta: fixture.Auth("auth:inc-1")}
	first, err := b.Device(ctx, "OTP", "SERIAL0001", inc)
	if err != nil {
		t.Fatal(err)
	}
	msgs := streamMsgs(t, j)
	again, err := a.Device(ctx, "OTP", "SERIAL0001", inc)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("retry on replica A: %+v %v, replica B answered %+v", again, err, first)
	}
	if got := streamMsgs(t, j); got != msgs {
		t.Fatalf("the retry appended %d messages", got-msgs)
	}
}

// TestCacheNeverGoesBack: a value read before another was stored (an
// older stream position) never replaces it in the cache.
func TestCacheNeverGoesBack(t *testing.T) {
	c := newCache[struct{}](2)
	c.put(ref(1), loaded[struct{}]{seq: 116})
	c.put(ref(1), loaded[struct{}]{seq: 115})
	if l, _ := c.get(ref(1)); l.seq != 116 {
		t.Fatalf("the cache went back to %d after 116", l.seq)
	}
	c.put(ref(1), loaded[struct{}]{seq: 117})
	if l, _ := c.get(ref(1)); l.seq != 117 {
		t.Fatalf("the cache holds %d after 117", l.seq)
	}
}

// TestVersionsNeverGoBackUnderConcurrency: on one replica whose cache holds
// one aggregate (so that loads race the appends that store), writers on two
// devices and readers of both: every read reflects each append acknowledged
// before it began, and one reader's versions never go back.
func TestVersionsNeverGoBackUnderConcurrency(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l, err := New(j, Config{Policy: aggregates.DefaultPolicy(home), CacheSize: 1, Now: func() time.Time { return fixture.BusinessHours }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	serials := []string{"SERIAL0001", "SERIAL0002"}
	acked := make([]atomic.Uint64, len(serials)) // highest version acknowledged per device
	for _, s := range serials {
		if _, err := l.Device(ctx, "OTP", s, aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 { // writers: increments and resets, so that no lock stops them
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := g % len(serials)
			for n := range 40 {
				var cmd aggregates.DeviceCommand = aggregates.IncrementError{Meta: fixture.Auth("")}
				if n%3 == 2 {
					cmd = aggregates.ResetErrors{Meta: fixture.Center("KB001")}
				}
				a, err := l.Device(ctx, "OTP", serials[i], cmd)
				if err != nil {
					continue // a conflict that survived the retries or a refusal: nothing acknowledged
				}
				for v := acked[i].Load(); v < a.Events[0].Version && !acked[i].CompareAndSwap(v, a.Events[0].Version); v = acked[i].Load() {
				}
			}
		}()
	}
	for g := range 4 { // readers
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := make([]uint64, len(serials))
			for n := range 200 {
				i := (g + n) % len(serials)
				floor := acked[i].Load()
				d, _, err := l.LoadDevice(ctx, "OTP", serials[i])
				if err != nil {
					t.Error(err)
					return
				}
				if d.Version < floor || d.Version < last[i] {
					t.Errorf("%s read at version %d after %d was acknowledged and %d read", serials[i], d.Version, floor, last[i])
					return
				}
				last[i] = d.Version
			}
		}()
	}
	wg.Wait()
}

// TestKeyIsScopedToTheAggregate (api.md: a key reused on another device is
// another command): the same key on two devices appends both commands, each
// with its own answer, and each device answers its own again.
func TestKeyIsScopedToTheAggregate(t *testing.T) {
	t.Parallel()
	j := journaltest.Journal(t)
	l := newLedger(t, j)
	ctx := context.Background()
	var first []Answer
	for _, s := range []string{"SERIAL0001", "SERIAL0002"} {
		m := fixture.Center("KB001")
		m.IdempotencyKey = "feed:1"
		a, err := l.Device(ctx, "OTP", s, aggregates.Register{Meta: m})
		if err != nil {
			t.Fatalf("%s under a key used on another device: %v", s, err)
		}
		first = append(first, a)
	}
	if first[0].Events[0].ID == first[1].Events[0].ID || first[0].Events[0].Sequence == first[1].Events[0].Sequence {
		t.Fatalf("two devices share an answer: %+v %+v", first[0], first[1])
	}
	msgs := streamMsgs(t, j)
	for i, s := range []string{"SERIAL0001", "SERIAL0002"} {
		m := fixture.Center("KB001")
		m.IdempotencyKey = "feed:1"
		if again, err := newLedger(t, j).Device(ctx, "OTP", s, aggregates.Register{Meta: m}); err != nil || fmt.Sprint(again) != fmt.Sprint(first[i]) {
			t.Fatalf("retry on %s: %+v %v, first %+v", s, again, err, first[i])
		}
	}
	if got := streamMsgs(t, j); got != msgs {
		t.Fatalf("retries appended %d messages", got-msgs)
	}
}
