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
	"net/url"
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
func Database(t testing.TB) string {
	t.Helper()
	dbURL := EmptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := projections.OpenPool(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := schema.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return dbURL
}

// EmptyDatabase creates a database for t without migrating it and returns
// its URL; the database is dropped in t.Cleanup.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable under CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set OTPLEDGER_TEST_DATABASE_URL): %v", err)
	}
	defer admin.Close(context.Background())
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "otpledger_test_" + hex.EncodeToString(suffix)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, URL())
		if err != nil {
			t.Errorf("drop test database: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := url.Parse(URL())
	if err != nil {
		t.Fatalf("OTPLEDGER_TEST_DATABASE_URL must be a postgres:// URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
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
