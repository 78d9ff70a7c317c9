package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestReaderDoorsShut: the reader credentials of reader.json read the
// journal (scan, message get, an aggregate's messages) and every door of
// issue 25 is shut: a reply to a stream subject stores nothing, the
// projector's durable consumer cannot be updated, _INBOX.> cannot be
// subscribed to. The ledger's own user cannot delete the stream nor set its
// max_age.
func TestReaderDoorsShut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Run(Config{DataDir: dir, Durability: journal.Interval})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	j := journaltest.Open(t, e.Conn, journal.Config{})
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
	nc, err := DialReader(dir, "test-reader")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, door := range journaltest.ReaderDoors(t, e.Conn, nc, "OTPLEDGER", "otpledger-projector") {
		t.Errorf("the reader: %s", door)
	}
	r := journaltest.Open(t, nc, journal.Config{ReadOnly: true})
	read := 0
	if err := r.Scan(ctx, 1, 0, func(m []journal.Message) error { read += len(m); return nil }); err != nil || read != 2 {
		t.Fatalf("the reader scanned %d messages from 2: %v", read, err)
	}
	if m, err := r.Get(ctx, 3); err != nil || m.Seq != 3 {
		t.Fatalf("the reader gets message 3: %+v %v", m, err)
	}
	if seq, _, ok, err := r.Last(ctx, journaltest.ErrorCommit("SERIAL0001", 1).Aggregate()); err != nil || !ok || seq != 3 {
		t.Fatalf("the reader's last of the aggregate: %d %v %v", seq, ok, err)
	}
	if problems := journaltest.LedgerLoosens(t, e.Conn, "OTPLEDGER", 2*time.Second); len(problems) > 0 {
		t.Errorf("the ledger's user: %v", problems)
	}
}
