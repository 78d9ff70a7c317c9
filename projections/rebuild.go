package projections

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	built.mu.RLock()
	tabs, from := built.t.export(), built.t.seq
	built.mu.RUnlock()
	if _, err := p.pool.Exec(ctx, `DROP SCHEMA IF EXISTS proj_build CASCADE; DROP SCHEMA IF EXISTS proj_old CASCADE; CREATE SCHEMA proj_build`); err != nil {
		return fmt.Errorf("rebuild: shadow schema: %w", err)
	}
	for _, t := range tabs {
		if _, err := p.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE proj_build.%s (LIKE proj.%[1]s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`, t.name)); err != nil {
			return fmt.Errorf("rebuild: create %s: %w", t.name, err)
		}
	}
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
