package consumers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

type env struct {
	j    *journal.Journal
	dial func() *nats.Conn
}

func newEnv(t testing.TB) env {
	t.Helper()
	nc := journaltest.Conn(t)
	j := journaltest.Open(t, nc, journal.Config{})
	url := nc.ConnectedUrl()
	return env{j: j, dial: func() *nats.Conn {
		c, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}}
}

// publish generates a stream and publishes it to e's journal.
func (e env) publish(t testing.TB, cfg streamgen.Config) *streamgen.Stream {
	t.Helper()
	gen := streamgen.Generate(cfg)
	if err := streamgen.Publish(context.Background(), e.j, gen.Commits); err != nil {
		t.Fatal(err)
	}
	return gen
}

// runProjector runs a projector over store until the test ends or stop is called.
func runProjector(t testing.TB, e env, store projections.Writer) (*Projector, func()) {
	t.Helper()
	pj := journaltest.Open(t, e.dial(), journal.Config{})
	p, err := NewProjector(ProjectorConfig{Journal: pj, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-p.Running():
	case err := <-done:
		t.Fatalf("projector did not start: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("projector: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return p, stop
}

// waitFor waits until store's checkpoint reaches seq.
func waitFor(t *testing.T, store projections.Writer, seq uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pos, err := store.Position(context.Background())
		if err == nil && pos >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projection at %d, want %d after %v (%v)", pos, seq, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var viewTables = []string{"checkpoint", "customers", "customer_devices", "customer_media", "device_institutions",
	"device_history", "device_errors", "mobile_otps", "pending_approvals", "quarantine"}

// dump renders every view table of the database, row by row in a total order.
func dump(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range viewTables {
		rows, err := pool.Query(context.Background(), fmt.Sprintf(`SELECT t::text FROM proj.%s t ORDER BY t::text COLLATE "C"`, table))
		if err != nil {
			t.Fatal(err)
		}
		out[table], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func compareDumps(t *testing.T, what string, a, b map[string][]string) {
	t.Helper()
	for _, table := range viewTables {
		if len(a[table]) != len(b[table]) {
			t.Errorf("%s: %s has %d rows against %d", what, table, len(a[table]), len(b[table]))
			continue
		}
		for i := range a[table] {
			if a[table][i] != b[table][i] {
				t.Errorf("%s: %s row %d differs:\n%s\n%s", what, table, i, a[table][i], b[table][i])
				break
			}
		}
	}
}

func lastSeq(t *testing.T, j *journal.Journal) uint64 {
	t.Helper()
	seq, err := j.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestLiveEqualsRebuildEqualsMemory projects a generated stream of 50k events
// live into PostgreSQL, rebuilds it in bulk into a second database and folds
// it into memory: the three give the same views.
func TestLiveEqualsRebuildEqualsMemory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	live := projections.NewPostgres(pgtest.Pool(t, pgtest.Database(t)))
	_, stop := runProjector(t, e, live)
	gen := e.publish(t, streamgen.Config{Events: 50_000, Devices: 3000, Customers: 1500, Seed: 1})
	last := lastSeq(t, e.j)
	waitFor(t, live, last, 5*time.Minute)
	stop()
	if lag, err := Lag(ctx, e.j, live); err != nil || lag != 0 {
		t.Fatalf("lag after catching up: %d %v", lag, err)
	}
	if lag, err := Lag(ctx, e.j, projections.NewMemory()); err != nil || lag != last {
		t.Fatalf("lag of an empty store: %d %v, want %d", lag, err, last)
	}

	rebuiltPool := pgtest.Pool(t, pgtest.Database(t))
	rebuilt := projections.NewPostgres(rebuiltPool)
	var reported uint64
	if err := Rebuild(ctx, e.j, rebuilt, func(done, total uint64) { reported = done }); err != nil {
		t.Fatal(err)
	}
	if reported != last {
		t.Errorf("progress reported %d of %d", reported, last)
	}
	livePool := live.Pool()
	compareDumps(t, "live vs rebuild", dump(t, livePool), dump(t, rebuiltPool))

	mem, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	compareReaders(t, gen, live, mem)
	t.Logf("%d events in %d messages over %d devices and %d customers", gen.Events, last, len(gen.Devices), len(gen.Customers))
}

// compareReaders asks both stores every question about every aggregate.
func compareReaders(t *testing.T, gen *streamgen.Stream, a, b projections.Reader) {
	t.Helper()
	ctx := context.Background()
	at := time.Now() // statuses that depend on the time are read at one instant by both
	same := func(what string, x, y any) {
		if fx, fy := fmt.Sprintf("%+v", x), fmt.Sprintf("%+v", y); fx != fy {
			t.Errorf("%s differs:\n%s\n%s", what, fx, fy)
		}
	}
	for serial := range gen.Devices {
		for _, q := range []func(projections.Reader) any{
			func(r projections.Reader) any {
				l, err := r.DeviceInstitutions(ctx, "OTP", serial)
				return fmt.Sprint(l, err)
			},
			func(r projections.Reader) any {
				x, f, s, err := r.DeviceErrors(ctx, "OTP", serial)
				return fmt.Sprint(x, f, s, err)
			},
			func(r projections.Reader) any {
				var all []string
				cursor := ""
				for {
					l, err := r.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: 7, Cursor: cursor})
					all = append(all, fmt.Sprint(len(l.Items), l.AsOfSequence, err))
					for _, h := range l.Items {
						all = append(all, fmt.Sprintf("%d/%d %s %s %s %s %+v %+v %q %+v %s", h.Seq, h.Idx, h.Type, h.OccurredAt, h.OriginChannel, h.Channel,
							h.Actor, h.Principal, h.Documents, h.Approval, h.Payload))
					}
					if l.NextCursor == "" {
						return strings.Join(all, "\n")
					}
					cursor = l.NextCursor
				}
			},
		} {
			same("device "+serial, q(a), q(b))
		}
	}
	for no := range gen.Customers {
		for _, q := range []func(projections.Reader) any{
			func(r projections.Reader) any {
				l, err := r.CustomerDevices(ctx, no, at)
				return fmt.Sprint(l, err)
			},
			func(r projections.Reader) any {
				x, f, s, err := r.MobileOTP(ctx, no, at)
				return fmt.Sprint(x, f, s, err)
			},
			func(r projections.Reader) any {
				var all []string
				for _, kind := range []string{"", projections.KindHardware, projections.KindMobile} {
					l, err := r.CustomerMedia(ctx, no, kind, projections.Page{Limit: 500})
					all = append(all, fmt.Sprint(l, err))
				}
				return strings.Join(all, "\n")
			},
		} {
			same("customer "+no, q(a), q(b))
		}
	}
	for _, inst := range []string{"IBKS", "KB001", "SH002"} {
		for _, st := range []projections.Status{projections.StatusAll, projections.StatusInAccident, projections.StatusLocked} {
			l1, e1 := a.InstitutionDevices(ctx, inst, st, projections.Page{Limit: 100})
			l2, e2 := b.InstitutionDevices(ctx, inst, st, projections.Page{Limit: 100})
			same("institution "+inst+" "+string(st), fmt.Sprint(l1, e1), fmt.Sprint(l2, e2))
		}
	}
	l1, e1 := a.PendingApprovals(ctx, projections.Page{Limit: 500})
	l2, e2 := b.PendingApprovals(ctx, projections.Page{Limit: 500})
	same("pending approvals", fmt.Sprint(l1, e1), fmt.Sprint(l2, e2))
}

// TestPoisonIsQuarantined publishes undecodable messages between good ones:
// each is quarantined with its sequence and error, and the rest projected,
// by the PostgreSQL store and by the memory store.
func TestPoisonIsQuarantined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 200, Devices: 20, Customers: 10, Seed: 4})
	stores := map[string]interface {
		projections.Writer
		projections.Reader
	}{"memory": projections.NewMemory(), "postgres": projections.NewPostgres(pgtest.Pool(t, pgtest.Database(t)))}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p, stop := runProjector(t, e, store)
			if err := streamgen.Publish(ctx, e.j, gen.Commits[:50]); err != nil {
				t.Fatal(err)
			}
			nc := e.dial()
			defer nc.Close()
			for subject, data := range map[string]string{"otpledger.device.OTP.POISON0001": `{"events":[{"id":`, "otpledger.nonsense": `{}`} {
				journaltest.Inject(t, nc, subject, []byte(data))
			}
			if err := streamgen.Publish(ctx, e.j, gen.Commits[50:]); err != nil {
				t.Fatal(err)
			}
			waitFor(t, store, lastSeq(t, e.j), time.Minute)
			stop()
			q, err := store.Quarantine(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(q) != 2 || q[0].Seq != 51 || q[1].Seq != 52 || q[0].Error == "" || q[1].Error == "" {
				t.Fatalf("quarantine: %+v", q)
			}
			if got := p.Quarantined(); got != 2 {
				t.Errorf("quarantined counter %d, want 2", got)
			}
			if h, _ := store.DeviceHistory(ctx, "OTP", "POISON0001", projections.Page{}); len(h.Items) != 0 {
				t.Errorf("a poison message reached the views: %+v", h)
			}
		})
	}
}

// TestRebuildWhileQuerying rebuilds the PostgreSQL views twice while eight
// readers query them: no query fails, and every answer is whole (the stream
// does not grow, so old and new views hold the same rows: a half-built view
// would show fewer).
func TestRebuildWhileQuerying(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	gen := e.publish(t, streamgen.Config{Events: 8_000, Devices: 300, Customers: 100, Seed: 5})
	store := projections.NewPostgres(pgtest.Pool(t, pgtest.Database(t)))
	if err := Rebuild(ctx, e.j, store, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for serial := range gen.Devices {
		h, err := store.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		want[serial] = len(h.Items)
	}
	serials := slices.Collect(maps.Keys(want))
	last := lastSeq(t, e.j)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var queries atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				serial := serials[i%len(serials)]
				h, err := store.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
				if err != nil {
					t.Errorf("query during rebuild: %v", err)
					return
				}
				if len(h.Items) != want[serial] || h.AsOfSequence != last {
					t.Errorf("device %s: %d events at position %d during rebuild, want %d", serial, len(h.Items), h.AsOfSequence, want[serial])
					return
				}
				queries.Add(1)
			}
		}()
	}
	for range 2 {
		if err := Rebuild(ctx, e.j, store, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if queries.Load() == 0 {
		t.Fatal("no query ran during the rebuilds")
	}
	t.Logf("%d queries answered during 2 rebuilds", queries.Load())
}

// TestRebuildResumes interrupts a rebuild at its swap (after the COPY): the
// old views keep answering, and the next rebuild resumes at the swap instead
// of folding again, ending with the clean views.
func TestRebuildResumes(t *testing.T) {
	t.Parallel()
	e, pool, store, before := rebuiltThenAppended(t, streamgen.Config{Events: 3000, Devices: 100, Customers: 40, Seed: 14})
	ctx := context.Background()
	built, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	interrupted := errors.New("interrupted")
	err = store.Replace(ctx, built, func(context.Context, uint64, func([]projections.Item) error) error { return interrupted })
	if !errors.Is(err, interrupted) {
		t.Fatalf("interrupted swap: %v", err)
	}
	if pos, err := store.Position(ctx); err != nil || pos != before {
		t.Fatalf("after the interruption the views are at %d (%v), want the old %d", pos, err, before)
	}
	resumed, err := store.Resume(ctx, catchUp(e.j))
	if err != nil || !resumed {
		t.Fatalf("resume: %v %v", resumed, err)
	}
	clean := pgtest.Pool(t, pgtest.Database(t))
	if err := Rebuild(ctx, e.j, projections.NewPostgres(clean), nil); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, "resumed vs clean rebuild", dump(t, pool), dump(t, clean))
	if again, err := store.Resume(ctx, catchUp(e.j)); err != nil || again {
		t.Fatalf("a second resume: %v %v", again, err)
	}
}

// TestRebuildCancelledInItsFold cancels a rebuild while the history is being
// COPYed: it returns the cancellation without hanging, the old views keep
// answering, and the next rebuild starts afresh and ends with the whole
// stream.
func TestRebuildCancelledInItsFold(t *testing.T) {
	t.Parallel()
	e, _, store, before := rebuiltThenAppended(t, streamgen.Config{Events: 20000, Devices: 300, Customers: 100, Seed: 15})
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	err := Rebuild(cctx, e.j, store, func(done, total uint64) {
		if done > total/2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rebuild: %v", err)
	}
	if pos, err := store.Position(ctx); err != nil || pos != before {
		t.Fatalf("after the cancellation the views are at %d (%v), want the old %d", pos, err, before)
	}
	if err := Rebuild(ctx, e.j, store, nil); err != nil {
		t.Fatal(err)
	}
	last, _ := e.j.LastSequence(ctx)
	if pos, err := store.Position(ctx); err != nil || pos != last {
		t.Fatalf("after the second rebuild the views are at %d (%v), want %d", pos, err, last)
	}
}

// rebuiltThenAppended publishes the first 1,000 commits of a generated
// stream, rebuilds PostgreSQL views of them, then publishes the rest: it
// returns the views and their position before the rest.
func rebuiltThenAppended(t *testing.T, cfg streamgen.Config) (env, *pgxpool.Pool, *projections.Postgres, uint64) {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	gen := streamgen.Generate(cfg)
	if err := streamgen.Publish(ctx, e.j, gen.Commits[:1000]); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.Pool(t, pgtest.Database(t))
	store := projections.NewPostgres(pool)
	if err := Rebuild(ctx, e.j, store, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := store.Position(ctx)
	if err := streamgen.Publish(ctx, e.j, gen.Commits[1000:]); err != nil {
		t.Fatal(err)
	}
	return e, pool, store, before
}
