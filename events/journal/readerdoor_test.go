package journal_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// documentedServer starts a server from deploy/nats/otpledger.conf and
// returns connections of its ledger user and its auditor (whose inbox is
// the reader's prefix).
func documentedServer(t *testing.T) (ledger, auditor *nats.Conn) {
	t.Helper()
	t.Setenv("OTPLEDGER_NATS_PASSWORD", "ledger-test-password")
	t.Setenv("OTPLEDGER_AUDITOR_PASSWORD", "auditor-test-password")
	opts, err := server.ProcessConfigFile("../../deploy/nats/otpledger.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, t.TempDir(), true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	connect := func(user, password string, opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect(s.ClientURL(), append(opts, nats.UserInfo(user, password), nats.NoReconnect(),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	return connect("otpledger", "ledger-test-password"), connect("auditor", "auditor-test-password", nats.CustomInboxPrefix(journal.ReaderInbox))
}

// TestDocumentedAuditorReadsOnly: the auditor of deploy/nats reads the
// journal (stream info, scans, an aggregate's messages, the last checkpoint)
// and every door of issue 25 is shut: a reply to a stream subject stores
// nothing, the projector's consumer cannot be updated, _INBOX.> cannot be
// subscribed to.
func TestDocumentedAuditorReadsOnly(t *testing.T) {
	ledger, auditor := documentedServer(t)
	ctx := context.Background()
	j := journaltest.Open(t, ledger, journal.Config{})
	last := uint64(0)
	for i := range 3 {
		seqs, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", i+1), Expect: last})
		if err != nil {
			t.Fatal(err)
		}
		last = seqs[0]
	}
	if _, err := j.DurableConsumer(ctx, "otpledger-projector", 1, 10); err != nil {
		t.Fatal(err)
	}
	for _, door := range journaltest.ReaderDoors(t, ledger, auditor, "OTPLEDGER", "otpledger-projector") {
		t.Errorf("the auditor: %s", door)
	}
	ja, err := journal.Open(ctx, auditor, journal.Config{ReadOnly: true})
	if err != nil {
		t.Fatalf("the auditor opens the journal: %v", err)
	}
	read := 0
	if err := ja.Scan(ctx, 0, 0, func(ms []journal.Message) error { read += len(ms); return nil }); err != nil || read != 3 {
		t.Fatalf("the auditor scans: %d messages, %v", read, err)
	}
	if m, err := ja.Get(ctx, 2); err != nil || m.Seq != 2 {
		t.Fatalf("the auditor gets message 2: %+v %v", m, err)
	}
}

// TestDocumentedLedgerUserCannotLoosenTheStream: the ledger's own user
// cannot delete the stream, set its max_age or lift deny_delete/deny_purge
// (by an update, or by a create over the existing stream), purge it or
// delete a message.
func TestDocumentedLedgerUserCannotLoosenTheStream(t *testing.T) {
	ledger, _ := documentedServer(t)
	j := journaltest.Open(t, ledger, journal.Config{})
	if _, err := j.Append(context.Background(), journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	for _, problem := range journaltest.LedgerLoosens(t, ledger, "OTPLEDGER", 2*time.Second) {
		t.Errorf("the ledger's user: %s", problem)
	}
}
