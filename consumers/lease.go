package consumers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// leaseKey is the PostgreSQL advisory lock of the projector's lease.
const leaseKey int64 = 0x6f74706c6564676c // "otpledgl"

// Lease lets one projector at a time write a PostgreSQL database's views:
// of several serve replicas sharing the database, the one whose session
// holds an advisory lock projects; the others stand by, trying every
// Interval, and one takes over once the holder's session ends — it shut
// down, or its process died and the server dropped its connection.
type Lease struct {
	Pool     *pgxpool.Pool
	Interval time.Duration // how often a standby tries, and the holder checks its connection; default 1 s
	held     atomic.Bool
}

// Held reports whether this process holds the lease now.
func (l *Lease) Held() bool { return l.held.Load() }

// Run waits for the lease, then runs fn while holding it. fn's context ends
// when ctx does or when the lease's connection fails (the lease may have
// passed to another process). Run returns nil when ctx ends, else fn's
// error, the lease released either way.
func (l *Lease) Run(ctx context.Context, fn func(context.Context) error) error {
	interval := l.Interval
	if interval == 0 {
		interval = time.Second
	}
	for {
		conn, err := l.Pool.Acquire(ctx)
		if err == nil {
			var got bool
			if err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaseKey).Scan(&got); err == nil && got {
				return l.hold(ctx, conn, interval, fn)
			}
			conn.Release()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// hold runs fn on the held lease, watching its connection, then releases it.
func (l *Lease) hold(ctx context.Context, conn *pgxpool.Conn, interval time.Duration, fn func(context.Context) error) error {
	l.held.Store(true)
	defer l.held.Store(false)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost error
	var watch sync.WaitGroup
	watch.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(runCtx); err != nil && runCtx.Err() == nil {
					lost = err
					cancel()
					return
				}
			}
		}
	})
	err := fn(runCtx)
	cancel()
	watch.Wait()
	unlock, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if _, uerr := conn.Exec(unlock, `SELECT pg_advisory_unlock($1)`, leaseKey); uerr != nil {
		_ = conn.Hijack().Close(unlock) // the session's end releases what it held
	} else {
		conn.Release()
	}
	switch {
	case lost != nil:
		return fmt.Errorf("projector lease lost: %w", lost)
	case ctx.Err() != nil:
		return nil
	}
	return err
}
