package consumers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// TestMisplacedEventIsQuarantined stores, as any writer to the stream would,
// a stored commit again under another device's subject (a replay under a
// fresh subject): the projector quarantines it, by the PostgreSQL store and
// by the memory store, and neither device's views change.
func TestMisplacedEventIsQuarantined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 100, Devices: 10, Customers: 5, Seed: 6})
	stores := map[string]interface {
		projections.Writer
		projections.Reader
	}{"memory": projections.NewMemory(), "postgres": projections.NewPostgres(pgtest.Pool(t, pgtest.Database(t)))}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			p, stop := runProjector(t, e, store)
			if err := streamgen.Publish(ctx, e.j, gen.Commits); err != nil {
				t.Fatal(err)
			}
			var replayed events.Commit
			for _, c := range gen.Commits {
				if c.Aggregate().Kind == events.KindDevice {
					replayed = c
					break
				}
			}
			data, err := events.EncodeCommit(replayed)
			if err != nil {
				t.Fatal(err)
			}
			nc := e.dial()
			defer nc.Close()
			seq := journaltest.Inject(t, nc, "otpledger.device.OTP.FORGED0001", data)
			waitFor(t, store, lastSeq(t, e.j), time.Minute)
			stop()
			q, err := store.Quarantine(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(q) != 1 || q[0].Seq != seq || !strings.Contains(q[0].Error, events.ErrMisplaced.Error()) {
				t.Fatalf("quarantine: %+v", q)
			}
			if got := p.Quarantined(); got != 1 {
				t.Errorf("quarantined counter %d, want 1", got)
			}
			if h, _ := store.DeviceHistory(ctx, "OTP", "FORGED0001", projections.Page{}); len(h.Items) != 0 {
				t.Errorf("the replayed commit reached the forged subject's views: %+v", h)
			}
			vendor, serial, _ := strings.Cut(replayed.Aggregate().Key, ".")
			h, err := store.DeviceHistory(ctx, vendor, serial, projections.Page{Limit: projections.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, it := range h.Items {
				if it.EventID == replayed.Events[0].ID {
					seen++
				}
			}
			if seen > 1 {
				t.Errorf("the replayed event is in %s's history %d times", replayed.Aggregate(), seen)
			}
		})
	}
}
