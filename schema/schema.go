// Package schema holds the PostgreSQL migrations of the projections, embedded
// in the binary and applied at start-up by goose ([Migrate]).
package schema

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to the database behind pool, under
// a PostgreSQL session advisory lock (goose's), and returns the versions
// applied: replicas starting at once apply each migration once, the others
// waiting and then finding nothing pending.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int64, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrate(ctx, db)
}

func migrate(ctx context.Context, db *sql.DB) ([]int64, error) {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// Retried every second for up to five minutes (goose's default probes
	// every five seconds).
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var versions []int64
	for _, r := range results {
		versions = append(versions, r.Source.Version)
	}
	return versions, nil
}

// CreateDatabase creates the database name on the server of adminURL (a
// connection with the right to create databases), migrated when migrate is
// set, and returns its URL and a function that drops it (whoever is still
// connected). For the tests and the benchmark, which each work in a
// database of their own.
func CreateDatabase(ctx context.Context, adminURL, name string, migrate bool) (string, func(context.Context) error, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("database URL: %w", err)
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return fmt.Errorf("drop database: %w", err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database: %w", err)
		}
		return nil
	}
	u.Path = "/" + name
	if migrate {
		pool, err := pgxpool.New(ctx, u.String())
		if err == nil {
			_, err = Migrate(ctx, pool)
			pool.Close()
		}
		if err != nil {
			return "", nil, errors.Join(err, drop(ctx))
		}
	}
	return u.String(), drop, nil
}
