package consumers

import (
	"context"
	"fmt"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// TestOneProjectorAtATime: three replicas with their own pools on one
// database run their projectors under the lease; exactly one holds it at
// any poll, the views reach the stream's end, and when the holder's
// connections are dropped (as when its process dies) another takes over
// within 10 s and projects what was published since. The views then equal
// a clean rebuild.
func TestOneProjectorAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	gen := streamgen.Generate(streamgen.Config{Events: 4000, Devices: 200, Customers: 80, Seed: 21})
	half := len(gen.Commits) / 2
	if err := streamgen.Publish(ctx, e.j, gen.Commits[:half]); err != nil {
		t.Fatal(err)
	}
	url := pgtest.Database(t)
	type replica struct {
		lease  *Lease
		cancel context.CancelFunc
		done   chan error
	}
	replicas := make([]replica, 3)
	for i := range replicas {
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", fmt.Sprintf("otpledger-replica-%d", i))
		u.RawQuery = q.Encode()
		pool := pgtest.Pool(t, u.String())
		store := projections.NewPostgres(pool)
		rctx, cancel := context.WithCancel(ctx)
		r := replica{lease: &Lease{Pool: pool, Interval: 100 * time.Millisecond}, cancel: cancel, done: make(chan error, 1)}
		go func() {
			r.done <- r.lease.Run(rctx, func(ctx context.Context) error {
				pj, err := journal.Open(ctx, e.dial(), journal.Config{})
				if err != nil {
					return err
				}
				p, err := NewProjector(ProjectorConfig{Journal: pj, Store: store})
				if err != nil {
					return err
				}
				return p.Run(ctx)
			})
		}()
		replicas[i] = r
		t.Cleanup(func() { cancel(); <-r.done })
	}
	holders := func() []int {
		var out []int
		for i, r := range replicas {
			if r.lease.Held() {
				out = append(out, i)
			}
		}
		return out
	}
	// Exactly one holder at every poll while it projects the first half.
	store := projections.NewPostgres(pgtest.Pool(t, url))
	last := lastSeq(t, e.j)
	var seen []int
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		h := holders()
		if len(h) > 1 || len(h) == 0 && len(seen) > 0 {
			t.Fatalf("holders %v, want exactly one", h)
		}
		seen = append(seen, h...)
		if pos, err := store.Position(ctx); err == nil && pos >= last && len(seen) > 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the views did not reach %d in 3 minutes under the lease (holders seen %d times)", last, len(seen))
		}
	}
	leader := seen[0]
	// The leader's sessions end as when its process dies: the server drops
	// them, and the lock with them.
	died := time.Now()
	if _, err := store.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
		fmt.Sprintf("otpledger-replica-%d", leader)); err != nil {
		t.Fatal(err)
	}
	for {
		h := holders()
		if len(h) == 1 && h[0] != leader {
			t.Logf("replica %d took over from %d after %v", h[0], leader, time.Since(died).Round(time.Millisecond))
			break
		}
		if time.Since(died) > 10*time.Second {
			t.Fatalf("no replica took over within 10 s (holders %v)", h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-replicas[leader].done:
		if err == nil || !strings.Contains(err.Error(), "lease lost") {
			t.Fatalf("the old leader's run ended with %v, want the lease lost", err)
		}
		replicas[leader].done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("the old leader did not notice it lost the lease")
	}
	if err := streamgen.Publish(ctx, e.j, gen.Commits[half:]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, store, lastSeq(t, e.j), 3*time.Minute)
	clean := pgtest.Pool(t, pgtest.Database(t))
	if err := Rebuild(ctx, e.j, projections.NewPostgres(clean), nil); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, "leased projectors vs clean rebuild", dump(t, store.Pool()), dump(t, clean))
}
