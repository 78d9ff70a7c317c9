package journal_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

var t0 = fixture.BusinessHours

func customerCommit(no string) events.Commit {
	return events.Commit{Events: []events.Event{{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0,
		Aggregate: events.CustomerRef(no), Institution: "IBKS", Channel: events.ChannelBranch, Staff: "S1",
		Actor: events.Actor{Role: events.RoleSelf}, Payload: events.Registered{Vendor: "OTP", Serial: "SERIAL0001", CustomerNo: no}}}}
}

func msgCount(t *testing.T, j *journal.Journal) uint64 {
	t.Helper()
	info, err := journal.StreamOf(j).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestOpenIsIdempotentAndRefusesConflicts(t *testing.T) {
	t.Parallel()
	nc := journaltest.Conn(t)
	journaltest.Open(t, nc, journal.Config{})
	journaltest.Open(t, nc, journal.Config{}) // second start: same stream, no error
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LOOSE", Subjects: []string{"loose.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err := journal.Open(context.Background(), nc, journal.Config{Stream: "LOOSE"})
	for _, want := range []string{"deny_delete", "deny_purge", "allow_atomic", "subjects"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("conflicting stream: want %s named, got %v", want, err)
		}
	}
	if _, err := journal.Open(context.Background(), nc, journal.Config{MaxAge: 24 * time.Hour}); err == nil {
		t.Error("a max age under 10 years was accepted")
	}
}

// TestOpenSetsTheDuplicateWindow: a stream made with another duplicate
// window (24 h before 2026-11-27) is given the configured one, its messages
// kept; a read-only open changes nothing.
func TestOpenSetsTheDuplicateWindow(t *testing.T) {
	t.Parallel()
	nc := journaltest.Conn(t)
	ctx := context.Background()
	old := journaltest.Open(t, nc, journal.Config{Stream: "OLD", DuplicateWindow: 24 * time.Hour})
	if _, err := old.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	window := func(j *journal.Journal) time.Duration {
		info, err := journal.StreamOf(j).Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.Config.Duplicates
	}
	if ro := journaltest.Open(t, nc, journal.Config{Stream: "OLD", ReadOnly: true}); window(ro) != 24*time.Hour {
		t.Errorf("a read-only open changed the window to %v", window(ro))
	}
	j := journaltest.Open(t, nc, journal.Config{Stream: "OLD"})
	if got := window(j); got != journal.DefaultDuplicateWindow {
		t.Errorf("duplicate window %v, want %v", got, journal.DefaultDuplicateWindow)
	}
	if n := msgCount(t, j); n != 1 {
		t.Errorf("stream holds %d messages after the change, want 1", n)
	}
}

func TestPurgeAndDeleteRefusedByServer(t *testing.T) {
	t.Parallel()
	j := journaltest.Open(t, journaltest.Conn(t), journal.Config{})
	if _, err := j.Append(context.Background(), journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := journal.StreamOf(j).Purge(ctx); err == nil {
		t.Error("purge accepted")
	}
	if err := journal.StreamOf(j).DeleteMsg(ctx, 1); err == nil {
		t.Error("delete accepted")
	}
	if err := journal.StreamOf(j).SecureDeleteMsg(ctx, 1); err == nil {
		t.Error("secure delete accepted")
	}
	if n := msgCount(t, j); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestCompareAndSet(t *testing.T) {
	t.Parallel()
	j := journaltest.Open(t, journaltest.Conn(t), journal.Config{})
	ctx := context.Background()
	seqs, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1), State: []byte(`{"v":1}`)})
	if err != nil || seqs[0] != 1 {
		t.Fatalf("first append: %v %v", seqs, err)
	}
	if _, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 2)}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("expecting new on an existing aggregate: %v", err)
	}
	if _, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 2), Expect: 7}); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("stale expectation: %v", err)
	}
	if _, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 2), Expect: 1}); err != nil {
		t.Fatal(err)
	}
	seq, state, ok, err := j.Last(ctx, events.DeviceRef("OTP", "SERIAL0001"))
	if err != nil || !ok || seq != 2 || state != nil {
		t.Fatalf("last: %d %q %v %v", seq, state, ok, err)
	}
	if _, _, ok, _ := j.Last(ctx, events.DeviceRef("OTP", "SERIAL0009")); ok {
		t.Fatal("unknown aggregate found")
	}
	var read []string
	for e, err := range j.Read(ctx, events.DeviceRef("OTP", "SERIAL0001"), 1) {
		if err != nil {
			t.Fatal(err)
		}
		read = append(read, fmt.Sprintf("%d:%d:%s", e.Sequence, e.Commit.Events[0].Payload.(events.ErrorIncremented).CountAfter, e.State))
	}
	if fmt.Sprint(read) != `[1:1:{"v":1} 2:2:]` {
		t.Fatalf("read %v", read)
	}
}

func TestDuplicateMsgIDStoresOnce(t *testing.T) {
	t.Parallel()
	j := journaltest.Open(t, journaltest.Conn(t), journal.Config{})
	ctx := context.Background()
	rec := journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1), MsgID: "key-1"}
	if _, err := j.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Expect = 1 // even when the expectation holds, the id is a duplicate
	if _, err := j.Append(ctx, rec); !errors.Is(err, journal.ErrDuplicate) {
		t.Fatalf("second append with the same id: %v", err)
	}
	if n := msgCount(t, j); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestAtomicBatch(t *testing.T) {
	t.Parallel()
	j := journaltest.Open(t, journaltest.Conn(t), journal.Config{})
	ctx := context.Background()
	if _, err := j.Append(ctx, journal.Record{Commit: customerCommit("C0001")}); err != nil {
		t.Fatal(err)
	}
	before := msgCount(t, j)
	// The second message's expectation (customer is new) fails: nothing is stored.
	_, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}, journal.Record{Commit: customerCommit("C0001"), Expect: 0})
	if !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("failing batch: %v", err)
	}
	if after := msgCount(t, j); after != before {
		t.Fatalf("a failed batch stored %d messages", after-before)
	}
	seqs, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}, journal.Record{Commit: customerCommit("C0001"), Expect: 1})
	if err != nil || fmt.Sprint(seqs) != "[2 3]" {
		t.Fatalf("good batch: %v %v", seqs, err)
	}
}

// TestUnreadableCommitIsNeverStored: a commit whose encoding would not
// decode back (a time before year 0) is refused before it reaches the server.
func TestUnreadableCommitIsNeverStored(t *testing.T) {
	t.Parallel()
	j := journaltest.Open(t, journaltest.Conn(t), journal.Config{})
	c := journaltest.ErrorCommit("SERIAL0001", 1)
	c.Events[0].OccurredAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)).UTC() // year -1
	if _, err := j.Append(context.Background(), journal.Record{Commit: c}); !errors.Is(err, journal.ErrUnreadable) {
		t.Fatalf("year -1 commit: %v", err)
	}
	if n := msgCount(t, j); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

// TestLastAsksTheLeader: an aggregate's last message (what loads confirm a
// cache against) is asked with STREAM.MSG.GET, which only the stream's
// leader answers, never with a direct get, which a lagging follower of a
// replicated stream may answer.
func TestLastAsksTheLeader(t *testing.T) {
	t.Parallel()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	ctx := context.Background()
	c := customerCommit("C0001")
	seqs, err := j.Append(ctx, journal.Record{Commit: c, MsgID: c.Events[0].ID.String(), State: []byte(`{"v":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	spy, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	direct, err := spy.SubscribeSync("$JS.API.DIRECT.GET.>")
	if err != nil {
		t.Fatal(err)
	}
	leader, err := spy.SubscribeSync("$JS.API.STREAM.MSG.GET." + j.Stream())
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	ref := c.Aggregate()
	seq, state, ok, err := j.Last(ctx, ref)
	if err != nil || !ok || seq != seqs[0] || string(state) != `{"v":1}` {
		t.Fatalf("Last: %d %q %v %v, want %d", seq, state, ok, err, seqs[0])
	}
	if seq, err := j.LastSeq(ctx, ref); err != nil || seq != seqs[0] {
		t.Fatalf("LastSeq: %d %v, want %d", seq, err, seqs[0])
	}
	if seq, err := j.LastSeq(ctx, events.CustomerRef("C0002")); err != nil || seq != 0 {
		t.Fatalf("LastSeq of an aggregate without messages: %d %v", seq, err)
	}
	if _, _, ok, err := j.Last(ctx, events.CustomerRef("C0002")); err != nil || ok {
		t.Fatalf("Last of an aggregate without messages: %v %v", ok, err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := direct.Pending(); n != 0 {
		t.Errorf("%d direct gets: a follower may answer them", n)
	}
	if n, _, _ := leader.Pending(); n != 4 {
		t.Errorf("%d requests to the leader, want 4", n)
	}
}

// TestUndecodableMessageIsAFinding: a message no decoder reads, stored on
// an aggregate's subject past the journal, is yielded by Read with its
// sequence as [journal.ErrUndecodable] — not as a decoding refusal, which
// the HTTP edge would blame on the caller — and Read goes on past it to
// the next message; Tail returns the last message's data as stored.
func TestUndecodableMessageIsAFinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	ref := events.DeviceRef("OTP", "SERIAL0001")
	junk := journaltest.Inject(t, srv.Conn, events.Subject(ref), []byte(`{"events":[`))
	good, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1), Expect: junk})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for e, err := range j.Read(ctx, ref, 1) {
		var fe *events.FieldError
		switch {
		case e.Sequence == junk && (!errors.Is(err, journal.ErrUndecodable) || errors.As(err, &fe)):
			t.Errorf("the undecodable message: %v", err)
		case e.Sequence != junk && err != nil:
			t.Fatalf("message %d: %v", e.Sequence, err)
		}
		seqs = append(seqs, e.Sequence)
	}
	if len(seqs) != 2 || seqs[0] != junk || seqs[1] != good[0] {
		t.Fatalf("read %v, want %d and %d", seqs, junk, good[0])
	}
	m, ok, err := j.Tail(ctx, ref)
	if c, derr := events.DecodeCommit(m.Data); err != nil || !ok || m.Seq != good[0] || derr != nil || len(c.Events) != 1 {
		t.Fatalf("tail: %+v %v %v %v", m, ok, err, derr)
	}
}
