package access

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestKeyFollowerActsOnAgreeingMessagesOnly stores, as any writer to the
// stream would (the ledger's own connection, past the journal's checks),
// key messages whose subject, chain and payload disagree: a revoked key's
// key_created replayed under a fresh key subject, the same replayed under
// its own subject, a well-chained key_created for one key stored under
// another key's subject, and an event of another kind on a key subject. A
// second server following the journal, and the first, keep the key revoked
// and grant no new key; each message is a finding.
func TestKeyFollowerActsOnAgreeingMessagesOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k := keyOf(t, "T100")
	srv, j, a, admin, token := k.srv, k.j, k.keys, k.admin, k.token
	if _, err := a.Revoke(ctx, admin, "T100"); err != nil {
		t.Fatal(err)
	}
	created := k.created
	// A key_created for EVIL, well chained, stored under OTHER's subject.
	now := time.Now().UTC()
	evil := events.Event{ID: uuid.New(), OccurredAt: now, RecordedAt: now, Aggregate: events.KeyRef("EVIL"), Institution: "IBKS",
		Channel: events.ChannelAdmin, Actor: events.Actor{Role: events.RoleSystem, ID: "ADM1"}, Principal: &admin,
		Payload: events.KeyCreated{Role: events.RoleAdmin, TokenHash: HashToken("otpl_evil")}}
	evs, _, err := events.Chain("", []events.Event{evil})
	if err != nil {
		t.Fatal(err)
	}
	misplaced, _ := events.EncodeCommit(events.Commit{Events: evs})
	// An error increment of a device, stored under a key's subject.
	wrongKind, _ := events.EncodeCommit(journaltest.ErrorCommit("SERIAL0001", 1))
	forged := map[string][]byte{
		"otpledger.key.revived": created, "otpledger.key.T100": created, "otpledger.key.OTHER": misplaced,
		"otpledger.key.DEVICE": wrongKind,
	}
	for subject, data := range forged {
		journaltest.Inject(t, srv.Conn, subject, data)
	}
	b, err := OpenKeys(ctx, j, "IBKS", time.Now) // a server starting after the forgeries
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Keys{a, b} {
		waitFindings(t, k, len(forged))
		if key, ok := k.Get("T100"); !ok || key.RevokedAt == nil {
			t.Errorf("the revoked key T100 is active again: %+v", key)
		}
		if _, err := k.Token(token); err == nil {
			t.Error("the revoked key's token authenticates")
		}
		for _, id := range []string{"revived", "OTHER", "EVIL", "DEVICE"} {
			if _, ok := k.Get(id); ok {
				t.Errorf("a forged message made key %s", id)
			}
		}
		if _, err := k.Token("otpl_evil"); err == nil {
			t.Error("the misplaced key_created's token authenticates")
		}
		n, found := k.Findings()
		t.Logf("%d findings: %+v", n, found)
	}
}

// keyFixture is a journal whose keys follower holds one key, created by an
// admin: what the follower tests plant foreign messages beside.
type keyFixture struct {
	srv     journaltest.Server
	j       *journal.Journal
	keys    *Keys
	admin   events.Principal
	token   string
	created []byte // the key's key_created commit as stored
}

// keyOf opens the keys on a fresh journal and creates key id (a teller's).
func keyOf(t *testing.T, id string) keyFixture {
	t.Helper()
	ctx := context.Background()
	f := keyFixture{srv: journaltest.Run(t), admin: events.Principal{ID: "ADM1", Role: events.RoleAdmin, Method: events.MethodAPIKey}}
	f.j = journaltest.Open(t, f.srv.Conn, journal.Config{})
	var err error
	if f.keys, err = OpenKeys(ctx, f.j, "IBKS", time.Now); err != nil {
		t.Fatal(err)
	}
	if f.token, _, err = f.keys.Create(ctx, f.admin, NewKey{ID: id, Role: events.RoleTeller}); err != nil {
		t.Fatal(err)
	}
	for entry, err := range f.j.Read(ctx, events.KeyRef(id), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if f.created, err = events.EncodeCommit(entry.Commit); err != nil {
			t.Fatal(err)
		}
		break
	}
	return f
}
