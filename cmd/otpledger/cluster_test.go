package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/pgtest"
)

// Passwords of the test cluster's users (deploy/nats/accounts.conf).
const (
	clusterLedgerPassword  = "ledger-test-password"
	clusterAuditorPassword = "auditor-test-password"
	clusterRoutePassword   = "route-test-password"
)

var natsServerBinary tool

// buildNATSServer compiles nats-server from the module otpledger depends on
// (the same server code as the embedded one), once per test run.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	return natsServerBinary.get(t, func() (string, error) {
		dir, err := os.MkdirTemp("", "otpledger-nats")
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, "nats-server")
		if out, err := exec.Command("go", "build", "-o", path, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
		return path, nil
	})
}

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name              string
	port, clusterPort int
	store             string
	cmd               *exec.Cmd
	exited            chan struct{}
	mu                sync.Mutex
	logBuf            *strings.Builder
}

// natsCluster is three nats-server processes on loopback ports, each started
// from deploy/nats/cluster.conf as the deployment starts them.
type natsCluster struct {
	bin   string
	env   []string // what every node's environment holds: passwords, routes
	nodes []*natsNode
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// startCluster starts the three nodes and waits for a JetStream meta leader.
func startCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{bin: buildNATSServer(t)}
	c.env = []string{"OTPLEDGER_NATS_PASSWORD=" + clusterLedgerPassword, "OTPLEDGER_AUDITOR_PASSWORD=" + clusterAuditorPassword,
		"OTPLEDGER_NATS_ROUTE_PASSWORD=" + clusterRoutePassword}
	for i := range 3 {
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), port: freePort(t), clusterPort: freePort(t), store: t.TempDir()}
		c.nodes = append(c.nodes, n)
		c.env = append(c.env, fmt.Sprintf("OTPLEDGER_NATS_ROUTE_%d=nats-route://route:%s@127.0.0.1:%d", i+1, clusterRoutePassword, n.clusterPort))
	}
	for i := range c.nodes {
		c.start(t, i)
	}
	c.waitForMetaLeader(t)
	return c
}

// start starts node i (again, on its store, after a kill).
func (c *natsCluster) start(t *testing.T, i int) {
	t.Helper()
	n := c.nodes[i]
	cmd := exec.Command(c.bin, "-c", "../../deploy/nats/cluster.conf")
	cmd.Env = append(append(os.Environ(), c.env...), "OTPLEDGER_NATS_NAME="+n.name, "OTPLEDGER_NATS_PORT="+strconv.Itoa(n.port),
		"OTPLEDGER_NATS_CLUSTER_PORT="+strconv.Itoa(n.clusterPort), "OTPLEDGER_NATS_STORE="+n.store)
	n.logBuf = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = &syncWriter{mu: &n.mu, w: n.logBuf}, &syncWriter{mu: &n.mu, w: n.logBuf}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() { c.kill(i) })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port)); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s did not listen:\n%s", n.name, c.logOf(i))
		}
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (c *natsCluster) logOf(i int) string {
	n := c.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logBuf.String()
}

// kill ends node i with SIGKILL (nothing flushed, nothing said goodbye).
func (c *natsCluster) kill(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
}

// url is the cluster's client URLs for user (with its password).
func (c *natsCluster) url(user, password string) string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", user, password, n.port))
	}
	return strings.Join(urls, ",")
}

func (c *natsCluster) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.url("otpledger", clusterLedgerPassword), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (c *natsCluster) waitForMetaLeader(t *testing.T) {
	t.Helper()
	journaltest.WaitForJetStream(t, c.connect(t))
}

// streamLeader returns the index of the node leading the journal's stream
// and the stream's replica count.
func (c *natsCluster) streamLeader(t *testing.T) (int, int) {
	t.Helper()
	leader, _, size := journaltest.StreamCluster(t, c.connect(t), "OTPLEDGER")
	return slices.IndexFunc(c.nodes, func(n *natsNode) bool { return n.name == leader }), size
}

// waitForReplicas waits, up to a minute, until the stream has a leader and
// two current followers.
func (c *natsCluster) waitForReplicas(t *testing.T) {
	t.Helper()
	nc := c.connect(t)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, replicas, _ := journaltest.StreamCluster(t, nc, "OTPLEDGER")
		current := 0
		for _, ok := range replicas {
			if ok {
				current++
			}
		}
		if current == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream's replicas are not current after a minute: %v", replicas)
		}
	}
}

// clusterLoad runs registration commands from workers goroutines through the Go
// client until stop is closed; a command that fails (the client's own
// retries exhausted) is sent again under the same key until it succeeds.
type clusterLoad struct {
	mu       sync.Mutex
	acked    map[string]uint64 // event id → sequence
	success  []time.Time
	failures int
}

func (l *clusterLoad) run(ctx context.Context, t *testing.T, c *client.Client, worker int, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		serial := fmt.Sprintf("CL%02d%07d", worker, i)
		key := "cluster-test:" + serial
		for {
			a, err := c.Register(ctx, "OTP", serial, key, client.Registration{Common: client.Common{Institution: "KB001", Channel: "CENTER",
				OriginChannel: "ONLINE", Actor: client.Actor{Role: "SYSTEM", ID: "CENTER"}}})
			if err == nil {
				l.mu.Lock()
				for _, e := range a.Events {
					l.acked[e.ID] = e.Sequence
				}
				l.success = append(l.success, time.Now())
				l.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return
			}
			// 503 (the journal unavailable) or a transport error: resent under
			// the key. Anything else is a wrong answer.
			if e := (*client.Error)(nil); errors.As(err, &e) && e.Status != 503 {
				t.Errorf("command %s: %v", serial, err)
				return
			}
			l.mu.Lock()
			l.failures++
			l.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// acks returns how many commands were acknowledged so far.
func (l *clusterLoad) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.success)
}

// window returns the longest time without an acknowledged command between
// from and to.
func (l *clusterLoad) window(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := slices.Clone(l.success)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	prev := from
	for _, s := range append(ts, to) {
		if s.Before(from) || s.After(to) {
			continue
		}
		longest = max(longest, s.Sub(prev))
		prev = s
	}
	return longest
}

// waitForAcks waits until n more commands than before are acknowledged,
// for up to a minute, and returns when the last of them was.
func (l *clusterLoad) waitForAcks(t *testing.T, before, n int) time.Time {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); l.acks() < before+n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d commands acknowledged in a minute, want %d", l.acks()-before, n)
		}
	}
	return time.Now()
}

// TestClusterFailover runs serve on a three-node cluster started from
// deploy/nats/cluster.conf with durability replicated (R3), under a load of
// registrations from 8 clients, and SIGKILLs in turn the stream's leader, a
// follower, and all three nodes (then restarted). Commands answer 503 for a
// while and then succeed; afterwards every acknowledged event is in the
// stream exactly once and verify (checkpoints included) finds nothing.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	cl := startCluster(t)
	dir := t.TempDir()
	fpKey, cpKey := filepath.Join(dir, "fingerprint.key"), filepath.Join(dir, "checkpoint.key")
	_ = os.WriteFile(fpKey, []byte(strings.Repeat("cd", 32)), 0o600)
	_ = os.WriteFile(cpKey, []byte(strings.Repeat("ef", 32)), 0o600)
	env := []string{"OTPLEDGER_NATS_URL=" + cl.url("otpledger", clusterLedgerPassword), "OTPLEDGER_DURABILITY=replicated",
		"OTPLEDGER_DATA_DIR=" + filepath.Join(dir, "data"), "OTPLEDGER_DATABASE_URL=", "OTPLEDGER_FINGERPRINT_KEY_FILE=" + fpKey,
		"OTPLEDGER_CHECKPOINT_KEY_FILE=" + cpKey, "OTPLEDGER_CHECKPOINT_INTERVAL=1s"}
	p := start(t, env...)
	if _, replicas := cl.streamLeader(t); replicas != 3 {
		t.Fatalf("the stream has %d replicas, want 3", replicas)
	}
	c := client.New(p.url, p.tokens["CENTER"], nil)
	ld := &clusterLoad{acked: map[string]uint64{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); ld.run(ctx, t, c, w, stop) }()
	}
	// phase injects a fault and waits until 200 more commands are
	// acknowledged: the unavailability is the longest time without an
	// acknowledgement from the fault until then. It then heals the fault and
	// waits until the stream has its three replicas current again.
	phase := func(name string, fault, heal func()) {
		ld.waitForAcks(t, ld.acks(), 200)
		before, at := ld.acks(), time.Now()
		fault()
		until := ld.waitForAcks(t, before, 200)
		t.Logf("%s: commands unavailable for %v at the longest (200 acknowledged %v after the fault)",
			name, ld.window(at, until).Round(time.Millisecond), until.Sub(at).Round(time.Millisecond))
		heal()
		cl.waitForReplicas(t)
	}
	var node int
	phase("stream leader killed", func() {
		node, _ = cl.streamLeader(t)
		cl.kill(node)
	}, func() { cl.start(t, node) })
	phase("follower killed", func() {
		leader, _ := cl.streamLeader(t)
		node = (leader + 1) % 3
		cl.kill(node)
	}, func() { cl.start(t, node) })
	phase("whole cluster killed and restarted", func() {
		for i := range cl.nodes {
			cl.kill(i)
		}
		for i := range cl.nodes {
			cl.start(t, i)
		}
	}, func() {})
	j := journaltest.Open(t, cl.connect(t), journal.Config{ReadOnly: true})
	healthy, err := j.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	// Healthy again, under load: a checkpoint lands (one a second is asked).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if m, ok, err := j.LastCheckpoint(ctx); err == nil && ok && m.Seq > healthy {
			t.Logf("a checkpoint landed %v after the faults", time.Since(recovered).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint landed under load in the minute after the faults\n%s", p.log())
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d commands acknowledged, %d failed attempts resent under their keys", len(ld.acked), ld.failures)

	// Every acknowledged event is stored once, at the sequence its answer named.
	stored := map[string]int{}
	seqOf := map[string]uint64{}
	if err := j.Scan(ctx, 0, 0, func(ms []journal.Message) error {
		for _, m := range ms {
			if m.Subject == events.SubjectCheckpoint {
				continue
			}
			c, err := events.DecodeCommit(m.Data)
			if err != nil {
				return fmt.Errorf("message %d: %w", m.Seq, err)
			}
			for _, e := range c.Events {
				stored[e.ID.String()]++
				seqOf[e.ID.String()] = m.Seq
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id, seq := range ld.acked {
		if stored[id] != 1 || seqOf[id] != seq {
			t.Errorf("acknowledged event %s (sequence %d) stored %d times (at %d)", id, seq, stored[id], seqOf[id])
		}
	}
	p.stop(t)
	out, err := command(t, env, "verify", "--format", "json")
	var rep consumers.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Findings) != 0 || rep.Checkpoints == 0 {
		t.Errorf("verify after the faults: %v\n%s", err, out)
	}
	t.Logf("verify: %d messages, %d events, %d signed checkpoints, %d findings", rep.Messages, rep.Events, rep.Checkpoints, len(rep.Findings))
}

// TestReplicasShareTheCluster runs two serve replicas on one R3 cluster and
// one PostgreSQL database. Eight clients, half on each replica, race error
// increments and resets on the same 16 devices: every device's history is a
// single chain whose counts go up by one from its last reset and never past
// the limit (a replica's stale cache lost its compare-and-set and reloaded).
// A key sent to one replica and again to the other gets the first answer.
// One replica projects, the other stands by and takes over, within 10 s,
// when the first is SIGKILLed.
func TestReplicasShareTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster and two servers")
	}
	t.Parallel()
	cl := startCluster(t)
	dir := t.TempDir()
	fpKey := filepath.Join(dir, "fingerprint.key")
	_ = os.WriteFile(fpKey, []byte(strings.Repeat("cd", 32)), 0o600)
	env := []string{"OTPLEDGER_NATS_URL=" + cl.url("otpledger", clusterLedgerPassword), "OTPLEDGER_DURABILITY=replicated",
		"OTPLEDGER_DATA_DIR=" + filepath.Join(dir, "data"), "OTPLEDGER_DATABASE_URL=" + pgtest.Database(t),
		"OTPLEDGER_FINGERPRINT_KEY_FILE=" + fpKey}
	replicas := []*process{start(t, env...)}
	replicas = append(replicas, start(t, env...)) // the same data directory: the tokens of the first start
	ctx := context.Background()
	center := client.Common{Institution: "KB001", Channel: "CENTER", OriginChannel: "ONLINE", Actor: client.Actor{Role: "SYSTEM", ID: "CENTER"}}
	serial := func(i int) string { return fmt.Sprintf("RP%010d", i) }
	for i := range 16 {
		if _, err := client.New(replicas[0].url, replicas[0].tokens["CENTER"], nil).Register(ctx, "OTP", serial(i), "", client.Registration{Common: center}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		p := replicas[w%2]
		auth, centre := client.New(p.url, p.tokens["AUTH"], nil), client.New(p.url, p.tokens["CENTER"], nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				s := serial((w*7 + i) % 16)
				_, err := auth.Error(ctx, "OTP", s, "", client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM", ID: "AUTH"}})
				if client.RuleOf(err) == "R-HW-LOCK" {
					_, err = centre.ResetErrors(ctx, "OTP", s, "", client.Attributed{Common: center})
				}
				if err != nil && client.RuleOf(err) == "" {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	conflicts := 0.0
	for _, p := range replicas {
		_, body := p.request(t, "GET", "/metrics", "")
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "otpledger_append_conflicts_total "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				conflicts += f
			}
		}
	}
	if conflicts == 0 {
		t.Error("no append conflicted: the replicas did not race on the devices")
	}
	t.Logf("%.0f appends lost their compare-and-set to the other replica and were decided again", conflicts)

	// Every device's history: one chain, counts from the last reset, never
	// past the limit.
	j := journaltest.Open(t, cl.connect(t), journal.Config{ReadOnly: true})
	for i := range 16 {
		count, version := 0, uint64(0)
		for e, err := range j.Read(ctx, events.DeviceRef("OTP", serial(i)), 1) {
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range e.Commit.Events {
				version++
				switch p := ev.Payload.(type) {
				case events.ErrorIncremented:
					if p.CountAfter != count+1 || p.CountAfter > 10 {
						t.Fatalf("device %s, event %d: count %d after %d", serial(i), version, p.CountAfter, count)
					}
					count = p.CountAfter
				case events.ErrorReset:
					count = 0
				}
			}
		}
	}

	// A key sent to one replica and again to the other: the first answer.
	first, err := client.New(replicas[0].url, replicas[0].tokens["AUTH"], nil).Error(ctx, "OTP", serial(0), "across-replicas",
		client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM", ID: "AUTH"}})
	if err != nil && client.RuleOf(err) == "" {
		t.Fatal(err)
	}
	again, err2 := client.New(replicas[1].url, replicas[1].tokens["AUTH"], nil).Error(ctx, "OTP", serial(0), "across-replicas",
		client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM", ID: "AUTH"}})
	if fmt.Sprint(first, client.RuleOf(err)) != fmt.Sprint(again, client.RuleOf(err2)) {
		t.Errorf("the same key on the other replica: %+v %v, first %+v %v", again, err2, first, err)
	}

	// One projects, the other stands by; kill the projector's replica.
	projecting := func(p *process) bool {
		_, body := p.request(t, "GET", "/readyz", "")
		return strings.Contains(string(body), `"projector":"projecting"`)
	}
	leader := slices.IndexFunc(replicas, projecting)
	if leader < 0 || projecting(replicas[1-leader]) {
		t.Fatalf("projecting: %v %v, want exactly one", projecting(replicas[0]), projecting(replicas[1]))
	}
	_ = replicas[leader].cmd.Process.Kill()
	killed := time.Now()
	standby := replicas[1-leader]
	for !projecting(standby) {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("the standby did not take over within 10 s:\n%s", standby.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the standby took over the projector %v after the projecting replica was killed", time.Since(killed).Round(time.Millisecond))
	last, err := j.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := standby.readAt(t, "", "/v1/devices/OTP/"+serial(0)+"/errors", last); status != 200 {
		t.Fatalf("the new projector's views: %d %s", status, body)
	}
}

// TestBackupRestoreIntoACluster backs up an embedded ledger after the
// walkthrough (serve stopped) and restores it into a fresh three-node
// cluster as an R3 stream: the same messages at the same sequences, verify
// clean with the original's signed checkpoints, and a real-name look-up on
// the copy finds the customer (the fingerprint key came with the backup).
// A restore over an existing stream, or from an altered backup, is refused.
func TestBackupRestoreIntoACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	source := t.TempDir()
	envA := []string{"OTPLEDGER_DATA_DIR=" + source, "OTPLEDGER_POLICY_FILE=" + policyFile(t), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
	p := start(t, envA...)
	p.walk(t)
	p.stop(t)
	dir := filepath.Join(t.TempDir(), "backup")
	if out, code := runCLI(t, envA, "backup", "--out", dir); code != 0 || !strings.Contains(out, "backed up stream OTPLEDGER") {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	cl := startCluster(t)
	target, keys := t.TempDir(), t.TempDir()
	envC := []string{"OTPLEDGER_NATS_URL=" + cl.url("otpledger", clusterLedgerPassword), "OTPLEDGER_DURABILITY=replicated",
		"OTPLEDGER_DATA_DIR=" + target, "OTPLEDGER_POLICY_FILE=" + policyFile(t), "OTPLEDGER_DATABASE_URL=",
		"OTPLEDGER_FINGERPRINT_KEY_FILE=" + filepath.Join(keys, "fp.key"), "OTPLEDGER_CHECKPOINT_KEY_FILE=" + filepath.Join(keys, "cp.key")}
	if out, code := runCLI(t, envC, "restore", "--in", dir); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	if _, replicas := cl.streamLeader(t); replicas != 3 {
		t.Errorf("the restored stream has %d replicas, want 3", replicas)
	}
	exportA, errA := command(t, envA, "export")
	exportC, errC := command(t, envC, "export")
	if errA != nil || errC != nil || exportA != exportC {
		t.Errorf("the copy's export differs from the original's (%v, %v)", errA, errC)
	}
	out, err := command(t, envC, "verify", "--format", "json")
	var rep consumers.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Findings) != 0 || rep.Checkpoints == 0 {
		t.Errorf("verify of the copy: %v\n%s", err, out)
	}
	if out, code := runCLI(t, envC, "restore", "--in", dir); code != 1 || !strings.Contains(out, "already holds the stream") {
		t.Errorf("a restore over the restored stream: exit %d\n%s", code, out)
	}
	altered := filepath.Join(dir, "fingerprint.key")
	_ = os.WriteFile(altered, []byte(strings.Repeat("00", 32)), 0o600)
	if out, code := runCLI(t, envA, "restore", "--in", dir); code != 1 || !strings.Contains(out, "does not match its digest") {
		t.Errorf("a restore from an altered backup: exit %d\n%s", code, out)
	}

	// serve on the copy: the keys of the original authenticate (their
	// events came with the stream), and a real-name look-up finds C0001.
	tokensByDir.Lock()
	tokensByDir.m[target] = tokensByDir.m[source]
	tokensByDir.Unlock()
	q := start(t, envC...)
	status, body := q.request(t, "GET", "/v1/customers?real_name_number="+realNameNumber, "")
	if status != 200 || !strings.Contains(string(body), `"customer_no":"C0001"`) {
		t.Errorf("a real-name look-up on the restored copy: %d %s", status, body)
	}
	scanForPersonalData(t, "the backup's manifest", readFile(t, filepath.Join(dir, "manifest.json")))
	t.Logf("restored %d messages with %d signed checkpoints into an R3 stream", rep.Messages, rep.Checkpoints)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
