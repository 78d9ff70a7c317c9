package projections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpledger/otpledger/events"
)

// copyTable is one view's rows ready for COPY.
type copyTable struct {
	name    string
	columns []string
	rows    [][]any
}

// export returns every table of the memory store as COPY rows.
func (t *tables) export() []copyTable {
	return []copyTable{
		{name: "checkpoint", columns: []string{"name", "last_seq"}, rows: [][]any{{checkpointName, t.seq}}},
		customersTable.copyRows(maps.Values(t.customers)),
		customerDevicesTable.copyRows(nested(t.custDevices)),
		mediaTable.copyRows(flat(t.media)),
		institutionsTable.copyRows(nested(t.insts)),
		historyTable.copyRows(t.historyRows()),
		errorsTable.copyRows(maps.Values(t.errors)),
		mobileTable.copyRows(maps.Values(t.mobile)),
		approvalsTable.copyRows(maps.Values(t.approvals)),
		quarantineTable.copyRows(slices.Values(t.quarantine)),
	}
}

// nested yields the rows of a map of maps.
func nested[K, K2 comparable, T any](m map[K]map[K2]T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, inner := range m {
			for _, r := range inner {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// historyRows yields every device's history rows, decoded.
func (t *tables) historyRows() iter.Seq[History] {
	return func(yield func(History) bool) {
		for _, l := range t.history {
			for _, r := range l.refs {
				if !yield(l.at(r)) {
					return
				}
			}
		}
	}
}

// flat yields the rows of a map of slices.
func flat[K comparable, T any](m map[K][]T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, rows := range m {
			for _, r := range rows {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// CatchUp applies, within the swap transaction, the stream's items after
// sequence from through apply; the rebuild passes the stream reader.
type CatchUp func(ctx context.Context, from uint64, apply func(items []Item) error) error

// Replace makes the content of built (a memory store folded from the stream)
// the PostgreSQL views: it COPYs every table into a shadow schema proj_build,
// indexes it, then in one transaction — holding the lock every projector
// transaction takes first — renames proj away and proj_build into its place
// and applies, through catchUp, whatever the live projector had applied
// beyond built's position. Queries see the old views or the new, never a
// mix; the old schema is dropped afterwards.
func (p *Postgres) Replace(ctx context.Context, built *Memory, catchUp CatchUp) error {
	if err := p.shadow(ctx); err != nil {
		return err
	}
	return p.complete(ctx, built, catchUp)
}

// shadow makes the empty shadow schema proj_build, its tables like proj's.
func (p *Postgres) shadow(ctx context.Context) error {
	if _, err := p.pool.Exec(ctx, `DROP SCHEMA IF EXISTS proj_build CASCADE; DROP SCHEMA IF EXISTS proj_old CASCADE; CREATE SCHEMA proj_build`); err != nil {
		return fmt.Errorf("rebuild: shadow schema: %w", err)
	}
	for _, t := range (&tables{}).export() {
		if _, err := p.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE proj_build.%s (LIKE proj.%[1]s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`, t.name)); err != nil {
			return fmt.Errorf("rebuild: create %s: %w", t.name, err)
		}
	}
	return nil
}

// complete COPYs built's tables into the shadow schema, indexes it, marks
// it complete and swaps it in.
func (p *Postgres) complete(ctx context.Context, built *Memory, catchUp CatchUp) error {
	built.mu.RLock()
	tabs, from := built.t.export(), built.t.seq
	built.mu.RUnlock()
	if err := copyTables(ctx, p.pool, "proj_build", tabs); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	for _, t := range tabs {
		if err := p.copyIndexes(ctx, t.name); err != nil {
			return err
		}
	}
	// The shadow views are whole: an interrupted rebuild resumes here.
	if _, err := p.pool.Exec(ctx, `COMMENT ON SCHEMA proj_build IS 'complete'`); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return p.swap(ctx, from, catchUp)
}

// Build is a rebuild of the PostgreSQL views that COPYs the history — one
// row per event, most of the views' rows — while the stream is folded,
// instead of after: [Build.Views] is the store to fold into, whose history
// rows go to the COPY as they are made, and [Build.Finish] COPYs the other
// tables, sets the approvals on the history, indexes and swaps the shadow
// views in as [Postgres.Replace] does. On two cores it overlaps the fold's
// CPU with PostgreSQL's, and the fold keeps no history in memory.
type Build struct {
	p        *Postgres
	views    *Memory
	batch    []History
	rows     chan []History
	copied   chan error            // the COPY's result, once
	exited   chan struct{}         // closed when the COPY has stopped
	held     map[uuid.UUID]History // branch events' rows, until approved or the end
	approved map[uuid.UUID]ApproveHistory
	stop     context.CancelFunc
	closing  sync.Once
}

const historyBatch = 1000

// Build makes the shadow schema and starts the history's COPY into it.
// The caller folds the stream into [Build.Views], then calls [Build.Finish];
// Close stops an unfinished build (the next one starts afresh).
func (p *Postgres) Build(ctx context.Context) (*Build, error) {
	if err := p.shadow(ctx); err != nil {
		return nil, err
	}
	copyCtx, stop := context.WithCancel(ctx)
	b := &Build{p: p, views: NewMemory(), rows: make(chan []History, 4), copied: make(chan error, 1), exited: make(chan struct{}),
		held: map[uuid.UUID]History{}, approved: map[uuid.UUID]ApproveHistory{}, stop: stop}
	b.views.t.sink = b
	go func() {
		defer close(b.exited)
		var cur []History
		_, err := p.pool.CopyFrom(copyCtx, pgx.Identifier{"proj_build", historyTable.name}, historyTable.columns,
			pgx.CopyFromFunc(func() ([]any, error) {
				for len(cur) == 0 {
					var ok bool
					if cur, ok = <-b.rows; !ok {
						return nil, nil
					}
				}
				r := historyTable.row(cur[0])
				cur = cur[1:]
				return r, nil
			}))
		b.copied <- err
	}()
	return b, nil
}

// Views is the store to fold the stream into.
func (b *Build) Views() *Memory { return b.views }

// add queues h for the COPY. A branch event's row waits for its approval
// (R-APPROVAL: branch events are approved later in their aggregate), so
// that it is written once, approved; the rows still waiting are written at
// the end.
func (b *Build) add(h History) {
	if h.Channel == string(events.ChannelBranch) {
		b.held[h.EventID] = h
		return
	}
	b.queue(h)
}

func (b *Build) queue(h History) {
	if b.batch = append(b.batch, h); len(b.batch) == historyBatch {
		b.flush()
	}
}

// approve sets the approval on its event's waiting row, or keeps it for an
// UPDATE after the COPY when the row went already.
func (b *Build) approve(a ApproveHistory) {
	if h, ok := b.held[a.EventID]; ok && h.Vendor == a.Vendor && h.Serial == a.Serial {
		delete(b.held, a.EventID)
		h.Approval = &a.Approval
		b.queue(h)
		return
	}
	b.approved[a.EventID] = a
}

// flush hands the batch to the COPY, unless the COPY has stopped (Finish
// then reports why).
func (b *Build) flush() {
	if len(b.batch) > 0 {
		select {
		case b.rows <- b.batch:
		case <-b.exited:
		}
	}
	b.batch = make([]History, 0, historyBatch)
}

// Finish completes the history's COPY, sets the approvals the fold met on
// the rows they approve, and completes the rebuild as [Postgres.Replace].
func (b *Build) Finish(ctx context.Context, catchUp CatchUp) error {
	b.views.mu.Lock()
	for _, h := range b.held {
		b.queue(h)
	}
	clear(b.held)
	b.flush()
	b.views.mu.Unlock()
	b.closeRows()
	if err := <-b.copied; err != nil {
		return fmt.Errorf("rebuild: copy %s: %w", historyTable.name, err)
	}
	if err := b.setApprovals(ctx); err != nil {
		return err
	}
	return b.p.complete(ctx, b.views, catchUp)
}

// setApprovals applies the approvals whose rows had gone to the COPY
// already (none in a stream the ledger wrote) in one statement: they are
// COPYed into a temporary table and joined to the history.
func (b *Build) setApprovals(ctx context.Context) error {
	if len(b.approved) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(b.approved))
	for _, a := range b.approved {
		rows = append(rows, []any{a.Vendor, a.Serial, a.EventID, a.Approval.Approver, a.Approval.ApprovedAt})
	}
	err := pgx.BeginFunc(ctx, b.p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE approved (vendor text, serial text, event_id uuid, approved_by text, approved_at timestamptz) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"approved"}, []string{"vendor", "serial", "event_id", "approved_by", "approved_at"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE proj_build.device_history h SET approved_by = a.approved_by, approved_at = a.approved_at
			FROM approved a WHERE h.vendor = a.vendor AND h.serial = a.serial AND h.event_id = a.event_id`)
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild: approvals: %w", err)
	}
	return nil
}

func (b *Build) closeRows() { b.closing.Do(func() { close(b.rows) }) }

// Close stops the build's COPY if it still runs; the shadow schema stays,
// incomplete, until the next rebuild drops it.
func (b *Build) Close() {
	b.stop()
	b.closeRows()
	<-b.exited
}

// Resume finishes a rebuild that was interrupted after its shadow views were
// complete: it swaps them in (catching up from their checkpoint) and reports
// true; it reports false when there is nothing to resume.
func (p *Postgres) Resume(ctx context.Context, catchUp CatchUp) (bool, error) {
	var note *string
	err := p.pool.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'proj_build'`).Scan(&note)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (note == nil || *note != "complete")) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rebuild: %w", err)
	}
	var from int64
	if err := p.pool.QueryRow(ctx, `SELECT last_seq FROM proj_build.checkpoint WHERE name = $1`, checkpointName).Scan(&from); err != nil {
		return false, fmt.Errorf("rebuild: shadow checkpoint: %w", err)
	}
	return true, p.swap(ctx, uint64(from), catchUp)
}

// swap renames proj away and proj_build into its place in one transaction,
// holding the lock every projector transaction takes first, applies what
// the stream holds after from, and drops the old views.
func (p *Postgres) swap(ctx context.Context, from uint64, catchUp CatchUp) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, swapLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ALTER SCHEMA proj RENAME TO proj_old; ALTER SCHEMA proj_build RENAME TO proj; COMMENT ON SCHEMA proj IS NULL`); err != nil {
			return err
		}
		return catchUp(ctx, from, func(items []Item) error { _, err := applyTx(ctx, tx, items); return err })
	})
	if err != nil {
		return fmt.Errorf("rebuild: swap: %w", err)
	}
	p.last.Store(0) // the live projector's next apply reads the new checkpoint
	if _, err := p.pool.Exec(ctx, `DROP SCHEMA proj_old CASCADE`); err != nil {
		return fmt.Errorf("rebuild: drop old views: %w", err)
	}
	return nil
}

// copyTables COPYs tabs into the tables of the same names in schema.
func copyTables(ctx context.Context, pool *pgxpool.Pool, schema string, tabs []copyTable) error {
	for _, t := range tabs {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{schema, t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
	}
	return nil
}

// CopyInto COPYs m's rows into the (empty) view tables of schema: the raw
// COPY that benchmarks measure rebuilds against.
func (m *Memory) CopyInto(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	m.mu.RLock()
	tabs := m.t.export()
	m.mu.RUnlock()
	return copyTables(ctx, pool, schema, tabs)
}

// copyIndexes recreates on proj_build.name the indexes and primary key of
// proj.name, after the COPY (faster than maintaining them row by row).
func (p *Postgres) copyIndexes(ctx context.Context, name string) error {
	rows, _ := p.pool.Query(ctx, `SELECT i.indexdef, coalesce(c.conname, '') FROM pg_indexes i
		LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype = 'p' AND c.connamespace = 'proj'::regnamespace
		WHERE i.schemaname = 'proj' AND i.tablename = $1`, name)
	type index struct{ def, pkey string }
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (i index, err error) { return i, r.Scan(&i.def, &i.pkey) })
	if err != nil {
		return fmt.Errorf("rebuild: read indexes of %s: %w", name, err)
	}
	for _, d := range defs {
		stmt := strings.Replace(d.def, " ON proj.", " ON proj_build.", 1)
		if _, err := p.pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("rebuild: index %s: %w", name, err)
		}
		if d.pkey != "" {
			if _, err := p.pool.Exec(ctx, fmt.Sprintf(`ALTER TABLE proj_build.%s ADD CONSTRAINT %s PRIMARY KEY USING INDEX %[2]s`, name, d.pkey)); err != nil {
				return fmt.Errorf("rebuild: primary key of %s: %w", name, err)
			}
		}
	}
	return nil
}
