package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// table is one view's rows ready for COPY.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

// export returns every table of the memory store as COPY rows.
func (t *tables) export() []table {
	i64 := func(u uint64) int64 { return int64(u) }
	out := []table{{name: "checkpoint", columns: []string{"name", "last_seq"}, rows: [][]any{{checkpointName, i64(t.seq)}}}}
	add := func(name string, columns string, rows [][]any) {
		cols := strings.Split(columns, ",")
		for i, c := range cols {
			cols[i] = strings.TrimSpace(c)
		}
		out = append(out, table{name: name, columns: cols, rows: rows})
	}
	var rows [][]any
	for _, r := range t.customers {
		rows = append(rows, []any{r.CustomerNo, r.Type, r.Residency, r.RealNameFP, r.RealNameMasked, r.Accounts, i64(r.UpdatedSeq)})
	}
	add("customers", "customer_no, customer_type, residency, real_name_fp, real_name_masked, accounts, updated_seq", rows)
	rows = nil
	for _, m := range t.custDevices {
		for _, r := range m {
			rows = append(rows, []any{r.CustomerNo, r.Kind, r.MediumID, r.Status, r.Since, r.EndedAt, i64(r.UpdatedSeq)})
		}
	}
	add("customer_devices", "customer_no, kind, medium_id, status, since, ended_at, updated_seq", rows)
	rows = nil
	for _, ms := range t.media {
		for _, r := range ms {
			rows = append(rows, []any{r.CustomerNo, i64(r.Seq), r.Idx, r.Kind, r.MediumID, r.GeneratorNumber, r.IssueStatus, r.Institution, r.Channel,
				r.IssuedAt, r.EndedAt, r.EndReason})
		}
	}
	add("customer_media", "customer_no, seq, idx, kind, medium_id, generator_number, issue_status, institution, channel, issued_at, ended_at, end_reason", rows)
	rows = nil
	for _, m := range t.insts {
		for _, r := range m {
			rows = append(rows, institutionRow(r))
		}
	}
	add("device_institutions", institutionColumns, rows)
	rows = nil
	for _, hs := range t.history {
		for _, r := range hs {
			rows = append(rows, historyRow(r))
		}
	}
	add("device_history", historyColumns, rows)
	rows = nil
	for _, r := range t.errors {
		rows = append(rows, []any{r.Vendor, r.Serial, r.Count, r.Locked, r.LastErrorAt, r.LastResetAt, r.BranchRecovered, i64(r.UpdatedSeq)})
	}
	add("device_errors", "vendor, serial, count, locked, last_error_at, last_reset_at, branch_recovered, updated_seq", rows)
	rows = nil
	for _, r := range t.mobile {
		rows = append(rows, []any{r.CustomerNo, r.GeneratorNo, r.PhoneMasked, r.IssuedAt, r.ValidUntil, r.Errors, r.Locked, r.LastErrorAt, r.LastResetAt, i64(r.UpdatedSeq)})
	}
	add("mobile_otps", "customer_no, generator_no, phone_masked, issued_at, valid_until, errors, locked, last_error_at, last_reset_at, updated_seq", rows)
	rows = nil
	for _, r := range t.approvals {
		rows = append(rows, []any{r.EventID, i64(r.Seq), r.Idx, r.AggregateKind, r.AggregateKey, r.Type, r.Institution, r.Staff, r.OccurredAt})
	}
	add("pending_approvals", "event_id, seq, idx, aggregate_kind, aggregate_key, type, institution, staff, occurred_at", rows)
	rows = nil
	for _, r := range t.quarantine {
		rows = append(rows, []any{i64(r.Seq), r.Subject, r.Error})
	}
	add("quarantine", "seq, subject, error", rows)
	return out
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
func copyTables(ctx context.Context, pool *pgxpool.Pool, schema string, tabs []table) error {
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
