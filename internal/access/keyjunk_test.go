package access

import (
	"context"
	"testing"
	"time"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestKeyRevocableAfterForeignMessages stores, with the ledger's own
// connection past the journal's checks, junk (an empty commit) and a replay
// of the key's own key_created on an active key's subject, and junk on the
// subject of a key that does not exist yet. Each is a finding, never the
// key's state — and never a lock: the key is still revoked (its token then
// refused, here and by a server starting later), the other key still
// created, each new event chained from the last applied one, and verify
// names exactly the planted messages.
func TestKeyRevocableAfterForeignMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := keyOf(t, "M1")
	srv, j, a, admin, token, created := k.srv, k.j, k.keys, k.admin, k.token, k.created
	junk := []byte(`{"events":[]}`)
	planted := map[uint64]consumers.FindingKind{
		journaltest.Inject(t, srv.Conn, "otpledger.key.M1", junk):    consumers.FindingUndecodable,
		journaltest.Inject(t, srv.Conn, "otpledger.key.M1", created): consumers.FindingReplayed,
		journaltest.Inject(t, srv.Conn, "otpledger.key.N1", junk):    consumers.FindingUndecodable,
	}
	waitFindings(t, a, len(planted))
	if _, err := a.Revoke(ctx, admin, "M1"); err != nil {
		t.Fatalf("revoke after foreign messages on the key's subject: %v", err)
	}
	if _, _, err := a.Create(ctx, admin, NewKey{ID: "N1", Role: events.RoleTeller}); err != nil {
		t.Fatalf("create after a foreign message on the key's subject: %v", err)
	}
	b, err := OpenKeys(ctx, j, "IBKS", time.Now) // a server starting after it all
	if err != nil {
		t.Fatal(err)
	}
	waitFindings(t, b, len(planted))
	for name, k := range map[string]*Keys{"this server": a, "a later server": b} {
		if key, ok := k.Get("M1"); !ok || key.RevokedAt == nil {
			t.Errorf("%s: M1 is not revoked: %+v", name, key)
		}
		if _, err := k.Token(token); err == nil {
			t.Errorf("%s: the revoked key's token authenticates", name)
		}
		if key, ok := k.Get("N1"); !ok || key.RevokedAt != nil {
			t.Errorf("%s: N1 is not active: %+v", name, key)
		}
		if n, found := k.Findings(); n != uint64(len(planted)) {
			t.Errorf("%s: %d findings, want %d: %+v", name, n, len(planted), found)
		}
	}
	rep, err := consumers.Verify(ctx, j, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != len(planted) {
		t.Errorf("verify: %d findings, want the %d planted: %+v", len(rep.Findings), len(planted), rep.Findings)
	}
	for _, f := range rep.Findings {
		if kind, ok := planted[f.Seq]; !ok || kind != f.Kind {
			t.Errorf("verify found %+v; planted %v", f, planted)
		}
	}
}

func waitFindings(t *testing.T, k *Keys, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if n, _ := k.Findings(); n >= uint64(want) {
			return
		}
		if time.Now().After(deadline) {
			n, found := k.Findings()
			t.Fatalf("%d findings after 10 s, want %d: %+v", n, want, found)
		}
	}
}
