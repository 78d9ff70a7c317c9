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
// names of Nemeses, or "none"; default all), OTPLEDGER_TORTURE_PLANT
// (retry-without-key: the negative control, Config.PlantRetryWithoutKey),
// OTPLEDGER_TORTURE_DIR (where a failing run's
// artefacts stay; default a new directory under the system's temporary
// one, removed when the run passes).
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
	duration, seed := time.Minute, uint64(shortSeed)
	if v := os.Getenv("OTPLEDGER_TORTURE_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("OTPLEDGER_TORTURE_DURATION: %v", err)
		}
		duration = d
	}
	if v := os.Getenv("OTPLEDGER_TORTURE_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("OTPLEDGER_TORTURE_SEED: %v", err)
		}
		seed = s
	}
	nemeses, err := SelectNemeses(os.Getenv("OTPLEDGER_TORTURE_NEMESES"))
	if err != nil {
		t.Fatalf("OTPLEDGER_TORTURE_NEMESES: %v", err)
	}
	dir := os.Getenv("OTPLEDGER_TORTURE_DIR")
	if dir == "" {
		d, err := os.MkdirTemp("", "otpledger-torture-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := time.Now()
	natsServer, otpledger, err := Build(ctx, root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built nats-server and otpledger in %v", time.Since(started).Round(time.Millisecond))
	started = time.Now()
	res, err := Run(ctx, Config{Root: root, Dir: dir, NATSServer: natsServer, OTPLedger: otpledger, Seed: seed, Duration: duration, Nemeses: nemeses,
		PlantRetryWithoutKey: os.Getenv("OTPLEDGER_TORTURE_PLANT") == "retry-without-key",
		DatabaseURL:          pgtest.Database(t), Logf: t.Logf})
	if err != nil {
		t.Fatalf("seed %d: the harness failed (run data in %s): %v", seed, dir, err)
	}
	t.Logf("run of %v (%v with start-up, healing and checks)\n%s", duration, time.Since(started).Round(time.Second), res.Summary())
	if !res.Ok() {
		t.Errorf("seed %d: the ledger broke its promises — history, seed, visualization and logs in %s\n%s\n%s",
			seed, res.Saved, res.Summary(), res.details())
		return
	}
	if len(res.Faults) == 0 && len(nemeses) > 0 && duration >= 30*time.Second {
		t.Error("no fault was injected")
	}
	_ = os.RemoveAll(dir)
}
