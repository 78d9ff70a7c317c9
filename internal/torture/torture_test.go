package torture

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/otpledger/otpledger/internal/pgtest"
)

// The long mode and replays, from the environment (docs/testing.md):
// OTPLEDGER_TORTURE_DURATION (default 60s), OTPLEDGER_TORTURE_SEED (default
// the fixed short-mode seed), OTPLEDGER_TORTURE_NEMESES (comma-separated
// names of Nemeses and StoreNemeses, "all", or "none"; default Nemeses),
// OTPLEDGER_TORTURE_SYNC (the nodes' sync_interval: always or a duration;
// default NATS's, as deploy/nats/cluster.conf sets none),
// OTPLEDGER_TORTURE_CLIENTS and _DEVICES (default 8 and 4),
// OTPLEDGER_TORTURE_PLANT (retry-without-key: Config.PlantRetryWithoutKey),
// OTPLEDGER_TORTURE_DIR (where a failing run's artefacts stay; default a new
// directory under the system's temporary one, removed when the run passes).
// The negative controls run with OTPLEDGER_TORTURE_CONTROLS=1.
const shortSeed = 26

// TestTorture runs the harness: three nodes from deploy/nats/cluster.conf,
// two serve replicas with durability replicated and shared PostgreSQL
// views, 8 clients on 4 devices making increments, resets and state reads
// with an Idempotency-Key per operation retried across the replicas, and a
// fault every 6–10 s (SIGKILL or SIGSTOP of a node, of the stream leader,
// of a replica). It fails when a device's history is not linearizable,
// when an acknowledged event is lost or duplicated, when a stored command
// was answered refused, or when verify finds anything; the failure's
// history, seed and Porcupine visualization are kept and named.
func TestTorture(t *testing.T) {
	t.Parallel()
	res, nemeses, duration, dir := run(t, Config{Seed: shortSeed, Duration: time.Minute})
	if !res.Ok() {
		t.Errorf("seed %d: the ledger broke its promises — history, seed, visualization and logs in %s\n%s\n%s",
			res.Seed, res.Saved, res.Summary(), res.details())
		return
	}
	if len(res.Faults) == 0 && len(nemeses) > 0 && duration >= 30*time.Second {
		t.Error("no fault was injected")
	}
	keep(dir)
}

// TestTortureLosesUnsynced is the negative control of the accounting
// against the journal at NATS's default sync_interval: a power loss of the
// three nodes (lose-unsynced) rolls back writes acknowledged but never
// fsynced, and the run must report acknowledged events lost.
func TestTortureLosesUnsynced(t *testing.T) {
	controls(t)
	res, _, _, dir := run(t, Config{Seed: 31, Nemeses: named(t, "lose-unsynced"), Duration: 40 * time.Second, NemesisEvery: [2]time.Duration{8 * time.Second, 12 * time.Second}})
	injected := 0
	for _, f := range res.Faults {
		if f.Nemesis == "lose-unsynced" && f.Err == "" {
			injected++
		}
	}
	if injected == 0 || len(res.Accounting.Lost) == 0 || res.Ok() {
		t.Fatalf("a power loss of every node under the default sync_interval lost nothing acknowledged (%d injected): the harness does not see loss\n%s",
			injected, res.Summary())
	}
	t.Logf("the negative control reported %d lost acknowledged events of %d", len(res.Accounting.Lost), res.Accounting.Acknowledged)
	keep(dir)
}

// TestTorturePlantedRetryWithoutKey is the negative control of a planted
// ledger bug: retries without their Idempotency-Key store commands twice,
// and the run must report them as unexpected events.
func TestTorturePlantedRetryWithoutKey(t *testing.T) {
	controls(t)
	res, _, _, dir := run(t, Config{Seed: 7, Nemeses: named(t, "kill-replica,pause-replica"), Duration: time.Minute, PlantRetryWithoutKey: true})
	if len(res.Accounting.Unexpected) == 0 || res.Ok() {
		t.Fatalf("retries without their Idempotency-Key stored nothing unexpected: the harness does not see the planted bug\n%s", res.Summary())
	}
	t.Logf("the planted bug was caught: %d unexpected events", len(res.Accounting.Unexpected))
	keep(dir)
}

// keep removes dir of a run that passed unless OTPLEDGER_TORTURE_DIR named
// where runs go.
func keep(dir string) {
	if os.Getenv("OTPLEDGER_TORTURE_DIR") == "" {
		_ = os.RemoveAll(dir)
	}
}

func named(t *testing.T, names string) []Nemesis {
	t.Helper()
	n, err := SelectNemeses(names)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// controls skips a negative control unless OTPLEDGER_TORTURE_CONTROLS=1
// (and not in -short): each is a run of a minute or more.
func controls(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv("OTPLEDGER_TORTURE_CONTROLS") != "1" {
		t.Skip("a negative control of the harness: OTPLEDGER_TORTURE_CONTROLS=1 and -short=false run it")
	}
	t.Parallel()
}

// run builds the binaries and runs the harness with def, overridden by the
// environment (see the top of this file); it fails the test when the
// harness itself fails.
func run(t *testing.T, def Config) (res Result, nemeses []Nemesis, duration time.Duration, dir string) {
	t.Helper()
	cfg := def
	if v := os.Getenv("OTPLEDGER_TORTURE_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OTPLEDGER_TORTURE_DURATION: %v", err)
		}
		cfg.Duration = d
	}
	for _, v := range []struct {
		name string
		to   func(uint64)
	}{
		{"OTPLEDGER_TORTURE_SEED", func(n uint64) { cfg.Seed = n }},
		{"OTPLEDGER_TORTURE_CLIENTS", func(n uint64) { cfg.Clients = int(n) }},
		{"OTPLEDGER_TORTURE_DEVICES", func(n uint64) { cfg.Devices = int(n) }},
	} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			v.to(n)
		}
	}
	if v := os.Getenv("OTPLEDGER_TORTURE_NEMESES"); v != "" || cfg.Nemeses == nil {
		nemeses, err := SelectNemeses(v)
		if err != nil {
			t.Fatalf("OTPLEDGER_TORTURE_NEMESES: %v", err)
		}
		cfg.Nemeses = nemeses
	}
	if v := os.Getenv("OTPLEDGER_TORTURE_SYNC"); v != "" {
		cfg.Sync = v
	}
	if os.Getenv("OTPLEDGER_TORTURE_PLANT") == "retry-without-key" {
		cfg.PlantRetryWithoutKey = true
	}
	dir = os.Getenv("OTPLEDGER_TORTURE_DIR")
	if dir == "" {
		d, err := os.MkdirTemp("", "otpledger-torture-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	} else {
		dir = filepath.Join(dir, t.Name())
	}
	cfg.Dir = dir
	var err error
	cfg.Root, err = filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := time.Now()
	cfg.NATSServer, cfg.OTPLedger, err = Build(ctx, cfg.Root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built nats-server and otpledger in %v", time.Since(started).Round(time.Millisecond))
	cfg.DatabaseURL, cfg.Logf = pgtest.Database(t), t.Logf
	started = time.Now()
	res, err = Run(ctx, cfg)
	if err != nil {
		t.Fatalf("seed %d: the harness failed (run data in %s): %v", cfg.Seed, dir, err)
	}
	t.Logf("run of %v (%v with start-up, healing and checks)\n%s", cfg.Duration, time.Since(started).Round(time.Second), res.Summary())
	return res, cfg.Nemeses, cfg.Duration, dir
}
