package consumers

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// BenchmarkProjection prints, for a generated stream (OTPLEDGER_BENCH_EVENTS,
// default 200,000 events), the live projection and rebuild rates beside the
// raw operations measured in the same run:
//
//	go test ./consumers -run '^$' -bench Projection -benchtime 1x
func BenchmarkProjection(b *testing.B) {
	n := 200_000
	if s := os.Getenv("OTPLEDGER_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	b.StopTimer()
	env := newEnv(b)
	gen := streamgen.Generate(streamgen.Config{Events: n, Devices: n / 20, Customers: n / 50, Seed: 9})
	if err := streamgen.Publish(ctx, env.j.JetStream(), gen.Commits); err != nil {
		b.Fatal(err)
	}
	events := float64(gen.Events)
	rate := func(start time.Time) float64 { return events / time.Since(start).Seconds() }

	// Raw ordered read of the stream (no decoding) against the memory fold.
	start := time.Now()
	if err := ReadStream(ctx, env.j.JetStream(), env.j.Stream(), 0, 0, func([]projections.Item) error { return nil }); err != nil {
		b.Fatal(err)
	}
	rawRead := rate(start)
	start = time.Now()
	mem, err := Fold(ctx, env.j.JetStream(), env.j.Stream(), nil)
	if err != nil {
		b.Fatal(err)
	}
	fold := rate(start)

	// Raw COPY of the same rows into the same indexed tables, against the rebuild.
	url := pgtest.Database(b)
	pool := pgtest.Pool(b, url)
	start = time.Now()
	if err := mem.CopyInto(ctx, pool, "proj"); err != nil {
		b.Fatal(err)
	}
	rawCopy := rate(start)
	store := projections.NewPostgres(pgtest.Pool(b, pgtest.Database(b)))
	start = time.Now()
	if err := Rebuild(ctx, env.j.JetStream(), env.j.Stream(), store, nil); err != nil {
		b.Fatal(err)
	}
	rebuild := rate(start)

	// Live projection from an empty database.
	live := projections.NewPostgres(pgtest.Pool(b, pgtest.Database(b)))
	p, err := NewProjector(ProjectorConfig{Conn: env.dial(), Store: live})
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	go func() { _ = p.Run(runCtx) }()
	last, _ := env.j.LastSequence(ctx)
	for {
		if pos, _ := live.Position(ctx); pos >= last {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	liveRate := rate(start)
	cancel()

	b.ReportMetric(rawRead, "raw-read-ev/s")
	b.ReportMetric(fold, "memory-rebuild-ev/s")
	b.ReportMetric(fold/rawRead, "memory-x-raw-read")
	b.ReportMetric(rawCopy, "raw-copy-ev/s")
	b.ReportMetric(rebuild, "pg-rebuild-ev/s")
	b.ReportMetric(rebuild/rawCopy, "pg-x-raw-copy")
	b.ReportMetric(liveRate, "live-ev/s")
	b.ReportMetric(liveRate/rawCopy, "live-x-raw-copy")
}
