package consumers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // TZ=Asia/Seoul whether or not the machine has the zone files

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// The test binary doubles as the projector process that
// TestKilledAtChosenPositions kills: with childEnv set, TestMain runs
// runChild instead of the tests.
const (
	testZone     = "Asia/Seoul"
	childEnv     = "OTPLEDGER_KILL_CHILD" // "nats-url|database-url|point|sequence"
	childAppName = "otpledger-kill-child" // the child's application_name in pg_stat_activity
)

func TestMain(m *testing.M) {
	// The stores must answer times in UTC whatever the process's zone: under
	// Seoul's, a PostgreSQL time left in the local zone differs from the
	// memory store's in TestLiveEqualsRebuildEqualsMemory. The zone comes from
	// TZ, set by running the binary again: assigning time.Local races with
	// the goroutines that packages start at init (nats-server's).
	if os.Getenv("TZ") != testZone {
		env := append(os.Environ(), "TZ="+testZone)
		if err := syscall.Exec(os.Args[0], os.Args, env); err != nil {
			fmt.Fprintln(os.Stderr, "run the tests again under TZ="+testZone+":", err)
			os.Exit(2)
		}
	}
	if _, offset := time.Now().Zone(); offset != 9*60*60 {
		fmt.Fprintf(os.Stderr, "TZ=%s gave an offset of %d s, not Seoul's\n", testZone, offset)
		os.Exit(2)
	}
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// Kill points. Before and after are announced by the child, which then
// stops where it is; inside is made by the parent, which holds a lock on the
// history row of the chosen event so that the child's transaction waits on
// it with the rows before it written and nothing committed.
const (
	killBefore = "before" // a group covering the position decoded, its transaction not begun
	// The run's first group (statements sent one by one): its transaction
	// open and blocked at the position's row, its COMMIT not sent.
	killInside = "inside"
	// A later group (one pipeline, BEGIN to COMMIT): blocked at the
	// position's row with the COMMIT already sent, which the server may
	// still carry out after the client died.
	killInsidePipelined = "inside-pipelined"
	killAfter           = "after"   // the group committed with its checkpoint, not acked
	killDropped         = "dropped" // not a kill: the database ends the connection inside the transaction
)

// runChild runs a projector from the store's checkpoint and pauses for
// good at its kill point, printing "<point> <first> <last>" for the group
// it holds. It prints "running" once it consumes, and "ended: <error>" if
// the run ends, which the parent counts as a failure.
func runChild(spec string) int {
	var natsURL, dbURL, point string
	var at uint64
	if _, err := fmt.Sscanf(spec, "%s %s %s %d", &natsURL, &dbURL, &point, &at); err != nil {
		fmt.Println("ended: bad child spec:", err)
		return 2
	}
	ctx := context.Background()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		fmt.Println("ended:", err)
		return 1
	}
	j, err := journal.Open(ctx, nc, journal.Config{})
	if err != nil {
		fmt.Println("ended:", err)
		return 1
	}
	pool, err := projections.OpenPool(ctx, dbURL)
	if err != nil {
		fmt.Println("ended:", err)
		return 1
	}
	p, err := NewProjector(ProjectorConfig{Journal: j, Store: &pausing{Postgres: projections.NewPostgres(pool), point: point, at: at}})
	if err != nil {
		fmt.Println("ended:", err)
		return 1
	}
	go func() { <-p.Running(); fmt.Println("running") }()
	fmt.Printf("ended: %v\n", p.Run(ctx))
	return 1
}

// pausing is the child's store: it stops for good before or after
// applying the group that covers sequence at.
type pausing struct {
	*projections.Postgres
	point string
	at    uint64
}

func (s *pausing) Apply(ctx context.Context, items []projections.Item) error {
	covers := len(items) > 0 && items[0].Seq <= s.at && s.at <= items[len(items)-1].Seq
	if covers && s.point == killBefore {
		s.pause(items)
	}
	if err := s.Postgres.Apply(ctx, items); err != nil {
		return err
	}
	if covers && s.point == killAfter {
		s.pause(items)
	}
	return nil
}

func (s *pausing) pause(items []projections.Item) {
	fmt.Printf("%s %d %d\n", s.point, items[0].Seq, items[len(items)-1].Seq)
	select {} // until the parent's SIGKILL
}

// child is a running projector process.
type child struct {
	cmd   *exec.Cmd
	lines chan string // its output, closed when it exits
}

func startChild(t *testing.T, natsURL, dbURL, point string, at uint64) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d", childEnv, natsURL, dbURL, point, at))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line := c.next(t, 2*time.Minute); line != "running" {
		t.Fatalf("the projector process did not start: %q", line)
	}
	return c
}

// next returns the child's next line; the child ending or staying silent
// fails the test.
func (c *child) next(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("the projector process exited: %v", c.cmd.Wait())
		}
		if len(line) > 6 && line[:6] == "ended:" {
			t.Fatalf("the projector process's run ended on its own: %s", line)
		}
		return line
	case <-time.After(within):
		t.Fatalf("the projector process said nothing for %v", within)
	}
	return ""
}

// kill sends SIGKILL and asserts that the signal, nothing else, ended it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the projector process ended by %v, not by the kill", err)
	}
	for line := range c.lines {
		if len(line) > 6 && line[:6] == "ended:" {
			t.Fatalf("the projector process's run had ended before the kill: %s", line)
		}
	}
}

// historyAt returns the first history row of an event at or after sequence
// from: the row whose lock makes an "inside" kill land there.
func historyAt(t *testing.T, j *journal.Journal, from uint64) projections.History {
	t.Helper()
	errFound := errors.New("found")
	var row projections.History
	err := ReadStream(context.Background(), j, from-1, 0, func(items []projections.Item) error {
		for _, it := range items {
			for _, c := range it.Changes() {
				if h, ok := c.(projections.AddHistory); ok {
					row = h.Row
					return errFound
				}
			}
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		t.Fatalf("no history row at or after %d: %v", from, err)
	}
	return row
}

// lockRow inserts, in a transaction left open, a history row with the key of
// r: the child's insert of r waits for it. It returns the rollback, which
// the test's end also runs.
func lockRow(t *testing.T, pool *pgxpool.Pool, r projections.History) func() {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO proj.device_history (vendor, serial, seq, idx, event_id, type, occurred_at,
		recorded_at, institution, channel, actor_role, payload) VALUES ($1, $2, $3, $4, $5, 'lock', now(), now(), '', '', '', '{}')`,
		r.Vendor, r.Serial, int64(r.Seq), r.Idx, uuid.New()); err != nil {
		t.Fatal(err)
	}
	rollback := func() {
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Error(err)
		}
	}
	t.Cleanup(rollback) // a failed test must not leave the pool a connection it waits for
	return rollback
}

// waitingBackend waits until the child's connection waits on a lock and
// returns its backend's pid.
func waitingBackend(t *testing.T, pool *pgxpool.Pool, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var pid int
		err := pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`, childAppName).Scan(&pid)
		if err == nil {
			return pid
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the projector process's transaction did not reach the locked row within %v", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone waits until the child has no connection left to the database (a
// killed client's backend may still run what it had sent).
func gone(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, childAppName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed projector still has %d connections", n)
		}
	}
}

// TestKilledAtChosenPositions kills a projector process with SIGKILL at
// chosen stream positions, each before a group's transaction, inside it
// (rows written, nothing committed) and after its commit before the ack,
// three times over; once more the database ends the projector's connection
// inside the transaction and the projector must carry on. Each kill is
// checked to have landed where it claims, mid-stream, or the test fails.
// The views after the last run equal a clean rebuild: nothing applied
// twice, nothing lost.
func TestKilledAtChosenPositions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.publish(t, streamgen.Config{Events: 6_000, Devices: 500, Customers: 200, Seed: 2})
	last := lastSeq(t, e.j)
	dbURL := pgtest.Database(t)
	pool := pgtest.Pool(t, dbURL)
	store := projections.NewPostgres(pool)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", childAppName)
	u.RawQuery = q.Encode()
	childDB := u.String()
	natsURL := e.dial().ConnectedUrl()
	watcher := e.dial()
	position := func() uint64 {
		pos, err := store.Position(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}

	points := []string{killBefore, killInside, killAfter, killBefore, killInsidePipelined, killAfter, killBefore, killInsidePipelined, killAfter, killDropped}
	for i, point := range points {
		start := position()
		row := historyAt(t, e.j, last*uint64(i+1)/uint64(len(points)+1))
		if point == killInside {
			row = historyAt(t, e.j, start+1) // in the run's first group
		} else if row.Seq <= start+maxGroup {
			t.Fatalf("kill %d: position %d is within a group of the checkpoint %d; use a longer stream", i, row.Seq, start)
		}
		at := row.Seq
		switch point {
		case killBefore, killAfter:
			c := startChild(t, natsURL, childDB, point, at)
			var first, end uint64
			if _, err := fmt.Sscanf(c.next(t, 3*time.Minute), point+" %d %d", &first, &end); err != nil {
				t.Fatalf("kill %d: %v", i, err)
			}
			pos := position()
			acked := journaltest.AckFloor(t, watcher, e.j.Stream(), "otpledger-projector")
			landed := pos < last && acked < first
			if point == killBefore {
				landed = landed && pos == first-1
			} else {
				landed = landed && pos == end
			}
			if !landed {
				t.Fatalf("kill %d (%s) did not land where it claims: group %d–%d, checkpoint %d of %d, acked to %d",
					i, point, first, end, pos, last, acked)
			}
			c.kill(t)
			t.Logf("kill %d (%s %d) landed mid-stream: group %d–%d held, checkpoint %d of %d, acked to %d", i, point, at, first, end, pos, last, acked)
			if after := position(); after != pos {
				t.Fatalf("kill %d: the checkpoint moved from %d to %d after the kill", i, pos, after)
			}
		default: // inside a transaction
			rollback := lockRow(t, pool, row)
			c := startChild(t, natsURL, childDB, point, at)
			pid := waitingBackend(t, pool, 3*time.Minute)
			pos := position()
			if pos >= at || pos == 0 || (point == killInside) != (pos == start) {
				t.Fatalf("kill %d (%s) did not land where it claims: checkpoint %d (%d at the start), position %d of %d", i, point, pos, start, at, last)
			}
			if point == killDropped {
				if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
					t.Fatal(err)
				}
				rollback()
				waitFor(t, store, at, 3*time.Minute)
				c.kill(t) // still running: it retried on a new connection
				t.Logf("connection %d ended inside the transaction at %d (checkpoint %d): the projector carried on to %d", pid, at, pos, position())
				continue
			}
			c.kill(t)
			rollback()
			gone(t, pool)
			// A pipelined transaction whose COMMIT the client had already
			// sent may still commit after it died: rows and checkpoint
			// together, which the next run skips. One whose COMMIT was
			// never sent is rolled back.
			if after := position(); after != pos && (point == killInside || after < at) {
				t.Fatalf("kill %d (%s): the checkpoint went from %d to %d after the kill", i, point, pos, after)
			}
			t.Logf("kill %d (%s %d) landed mid-stream: transaction open at the row of %d, checkpoint %d of %d; after the kill %d",
				i, point, at, at, pos, last, position())
		}
	}
	runProjector(t, e, store)
	waitFor(t, store, last, 3*time.Minute)
	clean := pgtest.Pool(t, pgtest.Database(t))
	if err := Rebuild(ctx, e.j, projections.NewPostgres(clean), nil); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, "killed and resumed vs clean rebuild", dump(t, pool), dump(t, clean))
}
