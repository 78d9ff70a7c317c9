package schema_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/schema"
)

// TestConcurrentMigrations: four replicas migrating one empty database at
// once apply each migration exactly once between them (goose's session
// lock); none fails.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyDatabase(t)
	const replicas = 4
	applied := make([][]int64, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		pool := pgtest.Pool(t, url)
		wg.Go(func() { applied[i], errs[i] = schema.Migrate(context.Background(), pool) })
	}
	wg.Wait()
	var all []int64
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	if want := []int64{1, 2, 3, 4}; !slices.Equal(all, want) {
		t.Fatalf("the replicas applied %v between them, want %v once each", all, want)
	}
	again, err := schema.Migrate(context.Background(), pgtest.Pool(t, url))
	if err != nil || len(again) != 0 {
		t.Fatalf("a later start applied %v (%v)", again, err)
	}
}
