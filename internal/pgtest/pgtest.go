// Package pgtest gives each test a fresh PostgreSQL database, migrated, and
// drops it when the test ends. The server comes from
// OTPLEDGER_TEST_DATABASE_URL (default: the loopback server of the
// development machines). When it cannot be reached the test is skipped —
// except under CI=true, where that fails the run: a missing database must
// never pass for a green suite.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otpledger/otpledger/projections"
	"github.com/otpledger/otpledger/schema"
)

// DefaultURL is the server tests use when OTPLEDGER_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL returns the test server's URL.
func URL() string {
	if u := os.Getenv("OTPLEDGER_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Database creates a database for t, applies the migrations, and returns its
// URL; the database is dropped in t.Cleanup.
func Database(t testing.TB) string { return create(t, true) }

// EmptyDatabase creates a database for t without migrating it and returns
// its URL; the database is dropped in t.Cleanup.
func EmptyDatabase(t testing.TB) string { return create(t, false) }

func create(t testing.TB, migrate bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, URL()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable under CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set OTPLEDGER_TEST_DATABASE_URL): %v", err)
	} else {
		_ = c.Close(ctx)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	dbURL, drop, err := schema.CreateDatabase(ctx, URL(), "otpledger_test_"+hex.EncodeToString(suffix), migrate)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Error(err)
		}
	})
	return dbURL
}

// Pool opens a pool on url configured as the projections need, closed in t.Cleanup.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := projections.OpenPool(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
