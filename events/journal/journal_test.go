package journal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

func openJournal(t testing.TB, nc *nats.Conn) *Journal {
	t.Helper()
	j, err := Open(context.Background(), nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

// errorCommit is a device commit of one error_incremented event.
func errorCommit(serial string, n int) events.Commit {
	return events.Commit{Events: []events.Event{{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0,
		Aggregate: events.DeviceRef("OTP", serial), Institution: "IBKS", Channel: events.ChannelAuth,
		Actor: events.Actor{Role: events.RoleSystem}, Payload: events.ErrorIncremented{CountAfter: n}}}}
}

func customerCommit(no string) events.Commit {
	return events.Commit{Events: []events.Event{{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0,
		Aggregate: events.CustomerRef(no), Institution: "IBKS", Channel: events.ChannelBranch, Staff: "S1",
		Actor: events.Actor{Role: events.RoleSelf}, Payload: events.Registered{Vendor: "OTP", Serial: "SERIAL0001", CustomerNo: no}}}}
}

func msgCount(t *testing.T, j *Journal) uint64 {
	t.Helper()
	info, err := j.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestOpenIsIdempotentAndRefusesConflicts(t *testing.T) {
	t.Parallel()
	nc := journaltest.Conn(t)
	openJournal(t, nc)
	openJournal(t, nc) // second start: same stream, no error
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LOOSE", Subjects: []string{"loose.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), nc, Config{Stream: "LOOSE"})
	for _, want := range []string{"deny_delete", "deny_purge", "allow_atomic", "subjects"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("conflicting stream: want %s named, got %v", want, err)
		}
	}
	if _, err := Open(context.Background(), nc, Config{MaxAge: 24 * time.Hour}); err == nil {
		t.Error("a max age under 10 years was accepted")
	}
}

func TestVersionCheck(t *testing.T) {
	t.Parallel()
	for have, ok := range map[string]bool{"2.9.25": false, "2.11.9": false, "2.12.0": true, "2.15.2": true, "3.0.0-beta": true} {
		if versionAtLeast(have, MinServerVersion) != ok {
			t.Errorf("versionAtLeast(%s) != %v", have, ok)
		}
	}
}

func TestPurgeAndDeleteRefusedByServer(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journaltest.Conn(t))
	if _, err := j.Append(context.Background(), Record{Commit: errorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := j.stream.Purge(ctx); err == nil {
		t.Error("purge accepted")
	}
	if err := j.stream.DeleteMsg(ctx, 1); err == nil {
		t.Error("delete accepted")
	}
	if err := j.stream.SecureDeleteMsg(ctx, 1); err == nil {
		t.Error("secure delete accepted")
	}
	if n := msgCount(t, j); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestCompareAndSet(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journaltest.Conn(t))
	ctx := context.Background()
	seqs, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 1), State: []byte(`{"v":1}`)})
	if err != nil || seqs[0] != 1 {
		t.Fatalf("first append: %v %v", seqs, err)
	}
	if _, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 2)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("expecting new on an existing aggregate: %v", err)
	}
	if _, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 2), Expect: 7}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale expectation: %v", err)
	}
	if _, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 2), Expect: 1}); err != nil {
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
	j := openJournal(t, journaltest.Conn(t))
	ctx := context.Background()
	rec := Record{Commit: errorCommit("SERIAL0001", 1), MsgID: "key-1"}
	if _, err := j.Append(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Expect = 1 // even when the expectation holds, the id is a duplicate
	if _, err := j.Append(ctx, rec); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second append with the same id: %v", err)
	}
	if n := msgCount(t, j); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestAtomicBatch(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journaltest.Conn(t))
	ctx := context.Background()
	if _, err := j.Append(ctx, Record{Commit: customerCommit("C0001")}); err != nil {
		t.Fatal(err)
	}
	before := msgCount(t, j)
	// The second message's expectation (customer is new) fails: nothing is stored.
	_, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 1)}, Record{Commit: customerCommit("C0001"), Expect: 0})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("failing batch: %v", err)
	}
	if after := msgCount(t, j); after != before {
		t.Fatalf("a failed batch stored %d messages", after-before)
	}
	seqs, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 1)}, Record{Commit: customerCommit("C0001"), Expect: 1})
	if err != nil || fmt.Sprint(seqs) != "[2 3]" {
		t.Fatalf("good batch: %v %v", seqs, err)
	}
}

// TestCrashKeepsAcknowledgedAppends runs the embedded server in a child
// process, appends N events through its loopback listener, kills the process
// with SIGKILL, restarts it on the same directory and finds all N in order.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	t.Parallel()
	for _, mode := range []Durability{Fsync, Interval} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const n = 300
			child, url := startChild(t, dir, mode)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			j := openJournal(t, nc)
			var last uint64
			for i := range n {
				seqs, err := j.Append(context.Background(), Record{Commit: errorCommit("SERIAL0001", i+1), Expect: last})
				if err != nil {
					t.Fatal(err)
				}
				last = seqs[0]
			}
			nc.Close()
			_ = child.Process.Signal(syscall.SIGKILL)
			_ = child.Wait()

			_, url = startChild(t, dir, mode)
			nc, err = nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			j = openJournal(t, nc)
			i := 0
			for e, err := range j.Read(context.Background(), events.DeviceRef("OTP", "SERIAL0001"), 1) {
				if err != nil {
					t.Fatal(err)
				}
				i++
				if got := e.Commit.Events[0].Payload.(events.ErrorIncremented).CountAfter; got != i || e.Sequence != uint64(i) {
					t.Fatalf("message %d: count %d at sequence %d", i, got, e.Sequence)
				}
			}
			if i != n {
				t.Fatalf("after the crash %d of %d acknowledged appends remain", i, n)
			}
		})
	}
}

const childEnv = "OTPLEDGER_JOURNAL_TEST_CHILD"

// startChild re-executes the test binary as an embedded server process.
func startChild(t *testing.T, dir string, mode Durability) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildServer$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir+"|"+string(mode))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, url
		}
	}
	t.Fatal("child server printed no URL")
	return nil, ""
}

// TestChildServer is the child process of TestCrashKeepsAcknowledgedAppends;
// it does nothing in a normal run.
func TestChildServer(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	dir, mode, _ := strings.Cut(spec, "|")
	e, err := RunEmbedded(EmbeddedConfig{DataDir: dir, Listen: "127.0.0.1:0", Durability: Durability(mode)})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("URL " + strings.Replace(e.ClientURL(), "nats://", "nats://"+ledgerUser+":"+e.password+"@", 1))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	select {
	case <-sig:
	case <-time.After(5 * time.Minute):
	}
	e.Close()
	os.Exit(0)
}

// TestDataDirectoryIsLocked: a second embedded server on the same directory
// is refused, naming the holder; the read-only credentials the first leaves
// read the stream but can neither publish to it nor delete or purge it.
func TestDataDirectoryIsLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	e, err := RunEmbedded(EmbeddedConfig{DataDir: dir, Durability: Interval})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	j := openJournal(t, e.Conn)
	if _, err := j.Append(ctx, Record{Commit: errorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	_, err = RunEmbedded(EmbeddedConfig{DataDir: dir, Durability: Interval})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second server on a held directory: %v", err)
	}
	if _, err := nats.Connect(e.ClientURL()); err == nil {
		t.Fatal("the listener accepted a connection without credentials")
	}
	nc, err := DialReader(dir, "test-reader")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r, err := Open(ctx, nc, Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var read int
	if err := r.Scan(ctx, 0, 0, func(m []Message) error { read += len(m); return nil }); err != nil || read != 1 {
		t.Fatalf("reader scanned %d messages: %v", read, err)
	}
	if _, err := r.Append(ctx, Record{Commit: errorCommit("SERIAL0002", 1)}); err == nil {
		t.Error("the reader appended")
	}
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(ctx, "OTPLEDGER"); err == nil {
		t.Error("the reader deleted the stream")
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err == nil {
		t.Error("the reader created a stream")
	}
	if last, err := j.LastSequence(ctx); err != nil || last != 1 {
		t.Fatalf("after the reader's attempts: last %d, %v", last, err)
	}
	e.Close()
	if _, err := os.Stat(filepath.Join(dir, ReaderFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reader credentials left behind after Close: %v", err)
	}
	again, err := RunEmbedded(EmbeddedConfig{DataDir: dir, Durability: Interval})
	if err != nil {
		t.Fatalf("after Close the directory is still locked: %v", err)
	}
	defer again.Close()
	if _, err := Open(ctx, again.Conn, Config{ReadOnly: true, Stream: "NONE"}); !errors.Is(err, ErrNoJournal) {
		t.Fatalf("read-only open of a missing stream: %v", err)
	}
}

// TestUnreadableCommitIsNeverStored: a commit whose encoding would not
// decode back (a time before year 0) is refused before it reaches the server.
func TestUnreadableCommitIsNeverStored(t *testing.T) {
	t.Parallel()
	j := openJournal(t, journaltest.Conn(t))
	c := errorCommit("SERIAL0001", 1)
	c.Events[0].OccurredAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)).UTC() // year -1
	if _, err := j.Append(context.Background(), Record{Commit: c}); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("year -1 commit: %v", err)
	}
	if n := msgCount(t, j); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

// TestServerErrorCodes: the codes the journal names itself are the
// server's, and an unavailable server's error reads on one line.
func TestServerErrorCodes(t *testing.T) {
	for code, id := range map[jetstream.ErrorCode]server.ErrorIdentifier{
		codeBatchDuplicate:     server.JSAtomicPublishContainsDuplicateMessageErr,
		codeDuplicateInProcess: server.JSStreamDuplicateMessageConflict,
	} {
		if want := jetstream.ErrorCode(server.ApiErrors[id].ErrCode); code != want {
			t.Errorf("code %d, the server's is %d", code, want)
		}
	}
	err := classify(errors.New("connection closed"))
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "\n") {
		t.Errorf("classify: %q", err)
	}
}
