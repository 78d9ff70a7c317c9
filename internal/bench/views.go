package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/embedded"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// messages is the stream's last sequence: what a rebuild reads.
func (e *env) messages(ctx context.Context) (uint64, error) { return e.j.LastSequence(ctx) }

// rawRead reads the whole stream in order through the journal's bulk read,
// as the rebuilds do, without decoding anything.
func (e *env) rawRead(ctx context.Context, last uint64) error {
	return e.j.Scan(ctx, 0, last, func([]journal.Message) error { return nil })
}

// timed runs fn and returns its rate over n items.
func timed(n uint64, fn func() error) (sample, error) {
	start := time.Now()
	if err := fn(); err != nil {
		return sample{}, err
	}
	return sample{value: float64(n) / time.Since(start).Seconds()}, nil
}

// rebuildMemory: the fold of the whole stream into a memory store, against
// the raw ordered read of the stream.
func (e *env) rebuildMemory(ctx context.Context) ([]Row, error) {
	last, err := e.messages(ctx)
	if err != nil {
		return nil, err
	}
	f, err := e.pair(ctx, "msg/s",
		func(ctx context.Context) (sample, error) {
			return timed(last, func() (err error) {
				e.memory, err = consumers.Fold(ctx, e.j, nil)
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return timed(last, func() error { return e.rawRead(ctx, last) })
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("projection rebuild to memory", f, []string{"raw ordered read of the stream"}, 0.6, 0)
	row.Note = fmt.Sprintf("%s messages: read, decode, fold into every view; the raw read decodes nothing", count(float64(last)))
	return []Row{row}, nil
}

// rebuildPostgres: the rebuild into PostgreSQL (fold, COPY into a shadow
// schema, index, swap), against the raw COPY of the same rows into the same
// indexed tables of an empty database.
func (e *env) rebuildPostgres(ctx context.Context) ([]Row, error) {
	last, err := e.messages(ctx)
	if err != nil {
		return nil, err
	}
	if e.memory == nil { // the memory row did not run (--rows): the baseline's rows come from a fold
		if e.memory, err = consumers.Fold(ctx, e.j, nil); err != nil {
			return nil, err
		}
	}
	f, err := e.pair(ctx, "msg/s",
		func(ctx context.Context) (sample, error) {
			bar := e.bar("rebuilding the PostgreSQL views")
			defer bar.Finish()
			return timed(last, func() error { return consumers.Rebuild(ctx, e.j, e.store, bar.Update) })
		},
		func(ctx context.Context) (sample, error) {
			u, err := e.database(ctx, "copy")
			if err != nil {
				return sample{}, err
			}
			pool, err := projections.OpenPool(ctx, u)
			if err != nil {
				return sample{}, err
			}
			defer pool.Close()
			return timed(last, func() error { return e.memory.CopyInto(ctx, pool, "proj") })
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("projection rebuild to PostgreSQL", f, []string{"raw COPY of the same rows into the same indexed tables"}, 0.8, 0)
	row.Note = "the rebuild reads and folds the stream, COPYs into a shadow schema, indexes it and swaps it in; the raw COPY starts from the folded rows"
	return []Row{row}, nil
}

// liveLag: the live projector into PostgreSQL under two loads — the
// ledger appending 5,000 events/s in process, and error increments over
// HTTP as fast as 64 clients send them (the write path's whole rate). Lag
// is, per command, from its append's acknowledgement to the first poll
// (every 2 ms) that finds the views past its sequence.
func (e *env) liveLag(ctx context.Context) ([]Row, error) {
	const rate = 5000
	nc, err := e.nats.Connect("otpledger-bench-projector")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	pj, err := journal.Open(ctx, nc, journal.Config{Durability: journal.Interval})
	if err != nil {
		return nil, err
	}
	p, err := consumers.NewProjector(consumers.ProjectorConfig{Journal: pj, Store: e.store})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() { stop(); <-done }()
	last, err := e.messages(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.waitPosition(ctx, last); err != nil {
		return nil, err
	}
	n := int(float64(rate) * e.sz.live.Seconds())
	paced, err := e.pair(ctx, "ev/s", e.lagUnder(n, func(ctx context.Context, acked func(i int, seq uint64)) (sample, error) {
		start := time.Now()
		return measure(ctx, 2*producers, n, func(ctx context.Context, w, i int) error {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
			seq, err := increment(ctx, e.l, ownDevice("B", e.sz.pool, 2*producers, w, i))
			if err == nil {
				acked(i, seq)
			}
			return err
		})
	}))
	if err != nil {
		return nil, err
	}
	paced[0].Name = "offered load"
	api, err := e.startAPI(ctx, false)
	if err != nil {
		return nil, err
	}
	defer api.stop()
	full, err := e.pair(ctx, "req/s", e.lagUnder(e.sz.http, func(ctx context.Context, acked func(i int, seq uint64)) (sample, error) {
		return httpIncrements(api, "B", e.sz.pool, httpClients, e.sz.http, acked)(ctx)
	}))
	if err != nil {
		return nil, err
	}
	full[0].Name = "write rate"
	const target = 200 * time.Millisecond
	return []Row{
		{Workload: "live projection under a 5,000 events/s load", Ledger: paced[0], Target: "lag p99 ≤ 200 ms", Met: paced[0].P99 <= target,
			Note: fmt.Sprintf("%s of error increments through the ledger (16 producers, paced), projected into PostgreSQL; lag from each append's acknowledgement to the views' checkpoint passing it (2 ms polls)", e.sz.live)},
		{Workload: "live projection under the full HTTP write rate, 64 clients", Ledger: full[0], Target: "lag p99 ≤ 200 ms", Met: full[0].P99 <= target,
			Note: fmt.Sprintf("%d error increments over HTTP as fast as 64 keep-alive clients send them (API key per request), the projector into PostgreSQL in the same process; lag as above", e.sz.http)},
	}, nil
}

// lagUnder measures the views' lag under load, which appends n commands
// and reports each one's sequence as it is acknowledged: the sample is the
// load's rate with the lags' percentiles.
func (e *env) lagUnder(n int, load func(ctx context.Context, acked func(i int, seq uint64)) (sample, error)) func(ctx context.Context) (sample, error) {
	return func(ctx context.Context) (sample, error) {
		acks := make([]struct {
			seq uint64
			at  time.Time
		}, n)
		var polls []poll
		var pollErr error
		var target atomic.Uint64 // set when the load is over: the poller stops there
		var wg sync.WaitGroup
		wg.Go(func() { polls, pollErr = e.pollPositions(ctx, &target) })
		offered, err := load(ctx, func(i int, seq uint64) { acks[i].seq, acks[i].at = seq, time.Now() })
		var maxSeq uint64
		for _, a := range acks {
			maxSeq = max(maxSeq, a.seq)
		}
		target.Store(max(maxSeq, 1))
		wg.Wait()
		if err != nil || pollErr != nil {
			return sample{}, errors.Join(err, pollErr)
		}
		lags := make([]time.Duration, 0, n)
		for _, a := range acks {
			k := sort.Search(len(polls), func(k int) bool { return polls[k].pos >= a.seq })
			if k == len(polls) {
				return sample{}, fmt.Errorf("sequence %d never projected", a.seq)
			}
			lags = append(lags, max(0, polls[k].at.Sub(a.at)))
		}
		s := latencies(lags)
		s.value = offered.value
		return s, nil
	}
}

type poll struct {
	at  time.Time
	pos uint64
}

// pollPositions reads the views' checkpoint every 2 ms until it reaches
// target (once set), for at most a minute after that.
func (e *env) pollPositions(ctx context.Context, target *atomic.Uint64) ([]poll, error) {
	var out []poll
	var deadline time.Time
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		pos, err := e.store.Position(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, poll{at: time.Now(), pos: pos})
		if want := target.Load(); want != 0 {
			if pos >= want {
				return out, nil
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(time.Minute)
			} else if time.Now().After(deadline) {
				return nil, fmt.Errorf("views at %d, still short of %d a minute after the load", pos, want)
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// waitPosition waits up to a minute for the views to reach seq.
func (e *env) waitPosition(ctx context.Context, seq uint64) error {
	deadline := time.Now().Add(time.Minute)
	for {
		pos, err := e.store.Position(ctx)
		if err != nil {
			return err
		}
		if pos >= seq {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("views at %d, still short of %d after a minute", pos, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queries: the 2376 history and error-count queries over HTTP from 8
// clients, against the same store methods (the same SQL) called directly.
func (e *env) queries(ctx context.Context) ([]Row, error) {
	const clients = 8
	api, err := e.startAPI(ctx, false)
	if err != nil {
		return nil, err
	}
	defer api.stop()
	c := client.New(api.base, api.auditor, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second})
	serial := func(i int) string { return streamgen.Serial((i * 7919) % e.cfg.Devices) }
	n := e.sz.queries
	f, err := e.pair(ctx, "req/s",
		func(ctx context.Context) (sample, error) {
			return measure(ctx, clients, n, func(ctx context.Context, _, i int) error {
				var err error
				if i%2 == 0 {
					_, err = c.DeviceHistory(ctx, "OTP", serial(i), client.Read{})
				} else {
					_, err = c.DeviceErrors(ctx, "OTP", serial(i), 0)
				}
				if e := (*client.Error)(nil); errors.As(err, &e) && e.Code == "not_found" {
					return nil // a device the stream never touched
				}
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, clients, n, func(ctx context.Context, _, i int) error {
				var err error
				if i%2 == 0 {
					_, err = e.store.DeviceHistory(ctx, "OTP", serial(i), projections.Page{})
				} else {
					_, _, _, err = e.store.DeviceErrors(ctx, "OTP", serial(i))
				}
				return err
			})
		})
	if err != nil {
		return nil, err
	}
	direct := f[1]
	direct.Name = "the same SQL straight through pgx"
	row := Row{Workload: "2376 history and error-count queries over HTTP, 8 clients", Ledger: f[0], Baselines: []Figure{direct},
		Ratio: float64(direct.P99) / float64(f[0].P99), Target: "p99 ≤ 1.5× the same SQL direct", Met: float64(f[0].P99) <= 1.5*float64(direct.P99),
		Note: "half history pages (default limit), half error counts, of the pre-filled devices; ratio = direct p99 / HTTP p99"}
	return []Row{row}, nil
}

// serve: the embedded default's `serve` process on the benchmark's store:
// its peak resident memory once ready, and its start-up time (to /readyz).
// It stops the benchmark's server first, to free the store.
func (e *env) serve(ctx context.Context) ([]Row, error) {
	last, err := e.messages(ctx)
	if err != nil {
		return nil, err
	}
	e.stopNATS()
	var disk int64
	if err := filepath.WalkDir(filepath.Join(e.dir, "jetstream"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				disk += info.Size()
			}
		}
		return err
	}); err != nil {
		return nil, err
	}
	var rss, startup []sample
	for range e.cfg.Runs { // each without a snapshot (each stop saves one)
		for _, f := range []string{consumers.SnapshotHeaderFile, consumers.SnapshotFile} {
			_ = os.Remove(filepath.Join(e.dir, f))
		}
		took, hwm, err := e.serveOnce(ctx, e.dir)
		if err != nil {
			return nil, err
		}
		rss = append(rss, sample{value: float64(hwm) / (1 << 20)})
		startup = append(startup, sample{value: took.Seconds()})
	}
	resumed, err := e.resumes(ctx, e.dir)
	if err != nil {
		return nil, err
	}
	mem := figure("peak RSS", "MiB", rss)
	size := figure("store size on disk", "MiB", []sample{{value: float64(disk) / (1 << 20)}})
	up, snap := figure("ready", "s", startup), figure("ready", "s", resumed)
	rows := []Row{
		{Workload: fmt.Sprintf("memory: `serve` with the %s-message stream", count(float64(last))), Ledger: mem, Baselines: []Figure{size},
			Target: "≤ 1,024 MiB", Met: mem.Median <= 1024, Note: "VmHWM of the serve process once /readyz answers 200 (views in memory, rebuilt at start)"},
		{Workload: "start-up: embedded `serve` ready, views folded from the stream", Ledger: up, Target: "≤ 15 s", Met: up.Median <= 15,
			Note: "from exec to /readyz 200, no views' snapshot: the embedded server recovers the store, the views are folded from the stream"},
		startupRow(last, snap),
	}
	for _, n := range e.cfg.StartupSizes {
		row, err := e.startupAt(ctx, n)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// startupRow is the row of start-up from the snapshot with a stream of
// messages messages.
func startupRow(messages uint64, ready Figure) Row {
	return Row{Workload: fmt.Sprintf("start-up: embedded `serve` ready from the views' snapshot, %s-message stream", count(float64(messages))),
		Ledger: ready, Target: "≤ 5 s at any size", Met: ready.Median <= 5,
		Note: "from exec to /readyz 200 with the snapshot the previous stop saved: the server recovers the store, the snapshot is checked, decoded and caught up"}
}

// resumes runs serve on dir the configured number of times, each from the
// snapshot the previous stop saved, and returns how long each took to be
// ready.
func (e *env) resumes(ctx context.Context, dir string) ([]sample, error) {
	var out []sample
	for range e.cfg.Runs {
		took, _, err := e.serveOnce(ctx, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, sample{value: took.Seconds()})
	}
	return out, nil
}

// startupAt generates a stream of n events in a data directory of its own
// and measures serve's start-up from the views' snapshot on it (the first
// serve folds the stream and saves the snapshot at its stop).
func (e *env) startupAt(ctx context.Context, n int) (Row, error) {
	dir := filepath.Join(e.dir, fmt.Sprintf("startup-%d", n))
	defer os.RemoveAll(dir)
	srv, err := embedded.Run(embedded.Config{DataDir: dir, Durability: journal.Interval})
	if err != nil {
		return Row{}, err
	}
	j, err := journal.Open(ctx, srv.Conn, journal.Config{Durability: journal.Interval})
	var last uint64
	if err == nil {
		devices, customers := population(n)
		e.say("start-up at %d events: generating the stream", n)
		if _, err = streamgen.PublishGenerated(ctx, j, streamgen.Config{Events: n, Devices: devices, Customers: customers, Seed: 1, Home: home}); err == nil {
			last, err = j.LastSequence(ctx)
		}
	}
	srv.Close()
	if err != nil {
		return Row{}, fmt.Errorf("start-up at %d events: %w", n, err)
	}
	e.say("start-up at %d events: folding once, then %d starts from the snapshot", n, e.cfg.Runs)
	if _, _, err := e.serveOnce(ctx, dir); err != nil {
		return Row{}, err
	}
	resumed, err := e.resumes(ctx, dir)
	if err != nil {
		return Row{}, err
	}
	return startupRow(last, figure("ready", "s", resumed)), nil
}

// serveOnce runs `otpledger serve` on data directory dir until it is
// ready, reads its peak RSS and stops it.
func (e *env) serveOnce(ctx context.Context, dir string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, e.cfg.Executable, "serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0",
		"--nats-url=", "--database-url=", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "OTPLEDGER_NATS_LISTEN=", "OTPLEDGER_PROJECTOR=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "otpledger listening on "); ok {
				addr <- a
			}
		}
		close(addr)
	}()
	var base string
	select {
	case a, ok := <-addr:
		if !ok {
			return 0, 0, fmt.Errorf("serve exited: %s", lastLine(stderr.String()))
		}
		base = a
	case <-time.After(5 * time.Minute):
		return 0, 0, fmt.Errorf("serve not listening after 5 minutes")
	}
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 5*time.Minute {
			return 0, 0, fmt.Errorf("serve not ready after 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	hwm, err := peakRSS(cmd.Process.Pid)
	return took, hwm, err
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/%d/status", pid)
}

func lastLine(s string) string {
	lines := slices.DeleteFunc(strings.Split(s, "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
	if len(lines) == 0 {
		return "no output"
	}
	return lines[len(lines)-1]
}
