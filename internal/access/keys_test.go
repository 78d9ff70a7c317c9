package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestKeyEventsChain: a key's events chain like an aggregate's — created,
// revoked, created again — each linked to the one before from the chain
// head this server holds (no replay), and a server that knows an older
// state loses the compare-and-set instead of forking the chain.
func TestKeyEventsChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j := journaltest.Journal(t)
	admin := events.Principal{ID: "ADM1", Role: events.RoleAdmin, Method: events.MethodAPIKey}
	a, err := OpenKeys(ctx, j, "IBKS", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(ctx, admin, NewKey{ID: "S100", Role: events.RoleTeller}); err != nil {
		t.Fatal(err)
	}
	stale, _ := a.Get("S100") // what a second server knew before the revocation
	if _, err := a.Revoke(ctx, admin, "S100"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(ctx, admin, NewKey{ID: "S100", Role: events.RoleTeller}); err != nil {
		t.Fatal(err)
	}
	prev, n := "", 0
	for entry, err := range j.Read(ctx, events.KeyRef("S100"), 0) {
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entry.Commit.Events {
			if e.PrevHash != prev || e.Hash == "" {
				t.Fatalf("event %d of the key links to %q, want %q", n, e.PrevHash, prev)
			}
			prev, n = e.Hash, n+1
		}
	}
	if n != 3 {
		t.Fatalf("the key has %d events, want 3", n)
	}
	if err := a.append(ctx, admin, "S100", stale, events.KeyRevoked{}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("an append from a stale state: %v", err)
	}
}
