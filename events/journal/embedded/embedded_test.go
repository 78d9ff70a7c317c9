package embedded

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestCrashKeepsAcknowledgedAppends runs the embedded server in a child
// process, appends N events through its loopback listener, kills the process
// with SIGKILL, restarts it on the same directory and finds all N in order.
func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	t.Parallel()
	for _, mode := range []journal.Durability{journal.Fsync, journal.Interval} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const n = 300
			child, url := startChild(t, dir, mode)
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			j := journaltest.Open(t, nc, journal.Config{})
			var last uint64
			for i := range n {
				seqs, err := j.Append(context.Background(), journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", i+1), Expect: last})
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
			j = journaltest.Open(t, nc, journal.Config{})
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
func startChild(t *testing.T, dir string, mode journal.Durability) (*exec.Cmd, string) {
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
	e, err := Run(Config{DataDir: dir, Listen: "127.0.0.1:0", Durability: journal.Durability(mode)})
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
	e, err := Run(Config{DataDir: dir, Durability: journal.Interval})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	j := journaltest.Open(t, e.Conn, journal.Config{})
	if _, err := j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	_, err = Run(Config{DataDir: dir, Durability: journal.Interval})
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
	r := journaltest.Open(t, nc, journal.Config{ReadOnly: true})
	var read int
	if err := r.Scan(ctx, 0, 0, func(m []journal.Message) error { read += len(m); return nil }); err != nil || read != 1 {
		t.Fatalf("reader scanned %d messages: %v", read, err)
	}
	if _, err := r.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0002", 1)}); err == nil {
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
	again, err := Run(Config{DataDir: dir, Durability: journal.Interval})
	if err != nil {
		t.Fatalf("after Close the directory is still locked: %v", err)
	}
	defer again.Close()
	if _, err := journal.Open(ctx, again.Conn, journal.Config{ReadOnly: true, Stream: "NONE"}); !errors.Is(err, journal.ErrNoJournal) {
		t.Fatalf("read-only open of a missing stream: %v", err)
	}
}
