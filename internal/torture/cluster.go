package torture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// Passwords of the harness cluster's users (deploy/nats/accounts.conf reads
// them from the environment); loopback only, made up for the run.
const (
	ledgerPassword  = "torture-ledger-password"
	auditorPassword = "torture-auditor-password"
	routePassword   = "torture-route-password"
)

// Build compiles nats-server (from the module otpledger depends on: the
// embedded server's code) and otpledger from the module at root into dir,
// and returns their paths.
func Build(ctx context.Context, root, dir string) (natsServer, otpledger string, err error) {
	natsServer, otpledger = filepath.Join(dir, "nats-server"), filepath.Join(dir, "otpledger")
	for _, b := range [][2]string{{natsServer, "github.com/nats-io/nats-server/v2"}, {otpledger, "./cmd/otpledger"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b[0], b[1])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go build %s: %w\n%s", b[1], err, out)
		}
	}
	return natsServer, otpledger, nil
}

// proc is one process of the cluster, which a nemesis may kill, pause,
// resume and start again with the same arguments and environment.
type proc struct {
	name string
	bin  string
	args []string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	log    bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.Len() > 4<<20 { // keep the tail
		p.log.Next(p.log.Len() - 2<<20)
	}
	return p.log.Write(b)
}

// logs returns what the process wrote (its last 2–4 MiB).
func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// start starts the process unless it runs.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p, p
	orphanProof(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.exited, p.paused = cmd, make(chan struct{}), false
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return nil
}

// signal sends sig to the running process; false when it is not running.
func (p *proc) signal(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	_ = p.cmd.Process.Signal(sig)
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return true
}

// kill ends the process with SIGKILL (nothing flushed) and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd, p.paused = nil, false
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// terminate asks the process to stop (SIGTERM) and waits up to grace
// before killing it.
func (p *proc) terminate(grace time.Duration) {
	p.signal(syscall.SIGCONT)
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
	case <-time.After(grace):
		p.kill()
	}
}

// heal resumes a paused process and starts a dead one.
func (p *proc) heal() error {
	p.signal(syscall.SIGCONT)
	p.mu.Lock()
	dead := p.cmd == nil
	if !dead {
		select {
		case <-p.exited:
			p.cmd, dead = nil, true
		default:
		}
	}
	p.mu.Unlock()
	if dead {
		return p.start()
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Cluster is the system under test: three nats-server nodes started from
// deploy/nats/cluster.conf and the serve replicas on them, on loopback
// ports. Its methods are safe for concurrent use by the nemesis and the
// checker.
type Cluster struct {
	Nodes    []*proc // nats-server n1..n3
	Replicas []*proc // serve r0..
	URLs     []string
	env      []string // serve's environment (verify's too)
	bin      string   // otpledger
	admin    string   // the bootstrap admin token
	stores   []string // the nodes' store directories, by node
	sync     string   // the nodes' sync_interval; "" NATS's default (2 min)

	links []*link // the routes' proxies, when partitions are on

	mu   sync.Mutex
	mark map[string]int64 // size of each .blk file of the stores at the last markSynced
}

// ClusterConfig says what [StartCluster] starts.
type ClusterConfig struct {
	Root        string // the module's root: deploy/nats/cluster.conf
	Dir         string // data: the nodes' stores, serve's data directory and keys
	NATSServer  string // binaries, from [Build]
	OTPLedger   string
	Replicas    int    // serve processes; default 2
	DatabaseURL string // the replicas' shared views; "" keeps them in memory
	// Sync is the nodes' JetStream sync_interval: "" runs
	// deploy/nats/cluster.conf as it is (it sets none: NATS's default,
	// acknowledged writes fsynced every 2 minutes); "always" or a duration
	// runs a copy of it with that sync_interval in its jetstream block.
	Sync string
	// Partitions puts a proxy (a link) on each node's route to each other
	// node, which the partition nemeses cut; each node advertises a route
	// address nothing listens on, so no node gossips its way around a cut.
	Partitions bool
}

// StartCluster starts three nodes, waits for JetStream, then the replicas
// one after the other (the first provisions the R3 stream and writes the
// admin token). On an error it stops what it started.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 2
	}
	c := &Cluster{bin: cfg.OTPLedger, sync: cfg.Sync}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	urls, err := c.startNodes(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.waitForJetStream(ctx, strings.Join(urls, ",")); err != nil {
		return nil, err
	}
	if err := c.startReplicas(ctx, cfg, urls); err != nil {
		return nil, err
	}
	return c, nil
}

// startNodes starts the three NATS nodes from the harness's copy of
// cluster.conf, their routes through cuttable links when cfg.Partitions,
// and returns the ledger user's URL of each.
func (c *Cluster) startNodes(cfg ClusterConfig) (urls []string, err error) {
	env := []string{"OTPLEDGER_NATS_PASSWORD=" + ledgerPassword, "OTPLEDGER_AUDITOR_PASSWORD=" + auditorPassword,
		"OTPLEDGER_NATS_ROUTE_PASSWORD=" + routePassword}
	var ports, clusterPorts []int
	for range 3 {
		p, err1 := freePort()
		cp, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		ports, clusterPorts = append(ports, p), append(clusterPorts, cp)
	}
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		routes, advertise := slices.Clone(env), ""
		for j, cp := range clusterPorts {
			if cfg.Partitions && j != i {
				l, err := newLink(i, j, fmt.Sprintf("127.0.0.1:%d", cp))
				if err != nil {
					return nil, err
				}
				c.links, cp = append(c.links, l), l.port()
			}
			routes = append(routes, fmt.Sprintf("OTPLEDGER_NATS_ROUTE_%d=nats-route://route:%s@127.0.0.1:%d", j+1, routePassword, cp))
		}
		if cfg.Partitions {
			dead, err := freePort()
			if err != nil {
				return nil, err
			}
			advertise = fmt.Sprintf("127.0.0.1:%d", dead)
		}
		conf, err := clusterConf(cfg.Root, filepath.Join(cfg.Dir, "nats"), name, cfg.Sync, advertise)
		if err != nil {
			return nil, err
		}
		store := filepath.Join(cfg.Dir, name)
		c.stores = append(c.stores, store)
		n := &proc{name: name, bin: cfg.NATSServer, args: []string{"-c", conf},
			env: append(routes, "OTPLEDGER_NATS_NAME="+name, "OTPLEDGER_NATS_PORT="+strconv.Itoa(ports[i]),
				"OTPLEDGER_NATS_CLUSTER_PORT="+strconv.Itoa(clusterPorts[i]), "OTPLEDGER_NATS_STORE="+store)}
		c.Nodes = append(c.Nodes, n)
		urls = append(urls, fmt.Sprintf("nats://otpledger:%s@127.0.0.1:%d", ledgerPassword, ports[i]))
		if err := n.start(); err != nil {
			return nil, err
		}
	}
	return urls, nil
}

// startReplicas starts cfg.Replicas serve processes on the nodes at urls,
// each ready before the next starts, and reads the admin token the first
// wrote.
func (c *Cluster) startReplicas(ctx context.Context, cfg ClusterConfig, urls []string) error {
	keys := filepath.Join(cfg.Dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	fp, cp := filepath.Join(keys, "fingerprint.key"), filepath.Join(keys, "checkpoint.key")
	if err := errors.Join(os.WriteFile(fp, []byte(strings.Repeat("cd", 32)), 0o600), os.WriteFile(cp, []byte(strings.Repeat("ef", 32)), 0o600)); err != nil {
		return err
	}
	dataDir := filepath.Join(cfg.Dir, "serve")
	c.env = []string{"OTPLEDGER_NATS_URL=" + strings.Join(urls, ","), "OTPLEDGER_DURABILITY=replicated", "OTPLEDGER_DATA_DIR=" + dataDir,
		"OTPLEDGER_DATABASE_URL=" + cfg.DatabaseURL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + fp, "OTPLEDGER_CHECKPOINT_KEY_FILE=" + cp,
		"OTPLEDGER_CHECKPOINT_INTERVAL=5s", "OTPLEDGER_LOG_LEVEL=warn"}
	for i := range cfg.Replicas {
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		r := &proc{name: fmt.Sprintf("r%d", i), bin: cfg.OTPLedger, args: []string{"serve", "--http-addr", addr}, env: c.env}
		c.Replicas, c.URLs = append(c.Replicas, r), append(c.URLs, "http://"+addr)
		if err := r.start(); err != nil {
			return err
		}
		if err := c.waitReady(ctx, i, time.Minute); err != nil {
			return err
		}
	}
	admin, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		return fmt.Errorf("the first replica wrote no admin token: %w", err)
	}
	c.admin = strings.TrimSpace(string(admin))
	return nil
}

// clusterConf returns the configuration file of node name:
// deploy/nats/cluster.conf itself when sync and advertise are "", else a
// copy of it (and of the accounts.conf it includes) in dir whose jetstream
// block sets sync_interval to sync and whose cluster block advertises
// advertise as the node's route address.
func clusterConf(root, dir, name, sync, advertise string) (string, error) {
	deploy := filepath.Join(root, "deploy/nats")
	if sync == "" && advertise == "" {
		return filepath.Join(deploy, "cluster.conf"), nil
	}
	if sync != "always" && sync != "" {
		if _, err := time.ParseDuration(sync); err != nil {
			return "", fmt.Errorf("sync_interval %q: neither always nor a duration", sync)
		}
	}
	conf, err := os.ReadFile(filepath.Join(deploy, "cluster.conf"))
	if err != nil {
		return "", err
	}
	accounts, err := os.ReadFile(filepath.Join(deploy, "accounts.conf"))
	if err != nil {
		return "", err
	}
	var sets [][2]string // a block's opening, the line to add in it
	if sync != "" {
		sets = append(sets, [2]string{"\njetstream {\n", "  sync_interval: " + sync + "\n"})
	}
	if advertise != "" {
		sets = append(sets, [2]string{"\ncluster {\n", "  advertise: \"" + advertise + "\"\n"})
	}
	for _, set := range sets {
		if bytes.Count(conf, []byte(set[0])) != 1 {
			return "", fmt.Errorf("deploy/nats/cluster.conf has no single block %q", strings.TrimSpace(set[0]))
		}
		conf = bytes.Replace(conf, []byte(set[0]), []byte(set[0]+set[1]), 1)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "cluster-"+name+".conf")
	return path, errors.Join(os.WriteFile(path, conf, 0o644), os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts, 0o644))
}

// killNodes SIGKILLs every node at once (the signals first, then the waits:
// no node sees another's death before its own).
func (c *Cluster) killNodes() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.kill() }()
	}
	wg.Wait()
}

// blocks returns the size of every message block (.blk: the streams' and
// the Raft groups' logs) of the nodes' stores.
func (c *Cluster) blocks() map[string]int64 {
	sizes := map[string]int64{}
	for _, store := range c.stores {
		_ = filepath.WalkDir(store, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(path) != ".blk" {
				return nil
			}
			if info, err := d.Info(); err == nil {
				sizes[path] = info.Size()
			}
			return nil
		})
	}
	return sizes
}

// markSynced records the size of every block as the point a power loss
// rolls the stores back to (see loseUnsynced).
func (c *Cluster) markSynced() {
	sizes := c.blocks()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mark = sizes
}

// loseUnsynced rolls the stopped nodes' blocks back to the last mark, as a
// power loss does to writes never fsynced: a block that grew is cut to its
// marked size, a block made since is removed. Under sync_interval always
// every acknowledged write was fsynced, and nothing is rolled back. It
// returns the bytes and files it cut.
func (c *Cluster) loseUnsynced() (bytes int64, files int, err error) {
	if c.sync == "always" {
		return 0, 0, nil
	}
	c.mu.Lock()
	mark := c.mark
	c.mu.Unlock()
	if mark == nil {
		return 0, 0, errors.New("no mark of the synced stores")
	}
	for path, size := range c.blocks() {
		was, ok := mark[path]
		switch {
		case !ok:
			err = errors.Join(err, os.Remove(path))
		case size > was:
			err = errors.Join(err, os.Truncate(path, was))
		default:
			continue
		}
		bytes, files = bytes+size-was, files+1
	}
	return bytes, files, err
}

// isolate cuts (or heals) every link to and from node i.
func (c *Cluster) isolate(i int, cut bool) {
	for _, l := range c.links {
		if l.from == i || l.to == i {
			l.setCut(cut)
		}
	}
}

// Close kills every process.
func (c *Cluster) Close() {
	for _, l := range c.links {
		l.close()
	}
	for _, p := range append(slices.Clone(c.Replicas), c.Nodes...) {
		p.signal(syscall.SIGCONT)
		p.kill()
	}
}

func (c *Cluster) connect() (*nats.Conn, error) {
	var urls []string
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "OTPLEDGER_NATS_URL="); ok {
			urls = append(urls, v)
		}
	}
	return c.connectTo(strings.Join(urls, ","))
}

func (c *Cluster) connectTo(urls string) (*nats.Conn, error) {
	return nats.Connect(urls, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
}

// waitForJetStream waits, up to a minute, until JetStream answers (a meta
// leader is elected).
func (c *Cluster) waitForJetStream(ctx context.Context, urls string) error {
	nc, err := c.connectTo(urls)
	if err != nil {
		return err
	}
	defer nc.Close()
	return poll(ctx, time.Minute, func(ctx context.Context) error {
		return journaltest.JetStreamReady(ctx, nc)
	})
}

// poll calls f every 100 ms, each call bounded by 2 s, until it succeeds or
// within is over (its last error).
func poll(ctx context.Context, within time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until replica i answers 200 on /readyz.
func (c *Cluster) waitReady(ctx context.Context, i int, within time.Duration) error {
	err := poll(ctx, within, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URLs[i]+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replica %s not ready: %w\n%s", c.Replicas[i].name, err, tail(c.Replicas[i].logs(), 4000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// streamLeader returns the name of the node leading the journal's stream
// and its followers' state (name → current), once it has a leader (up to
// within).
func (c *Cluster) streamLeader(ctx context.Context, within time.Duration) (leader string, followers map[string]bool, err error) {
	nc, err := c.connect()
	if err != nil {
		return "", nil, err
	}
	defer nc.Close()
	err = poll(ctx, within, func(ctx context.Context) error {
		leader, followers, _, err = journaltest.StreamLeader(ctx, nc, "OTPLEDGER")
		return err
	})
	return leader, followers, err
}

// StreamLeader returns the node leading the journal's stream.
func (c *Cluster) StreamLeader(ctx context.Context) (*proc, error) {
	leader, _, err := c.streamLeader(ctx, 20*time.Second)
	if err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		if n.name == leader {
			return n, nil
		}
	}
	return nil, fmt.Errorf("stream leader %q is no node of the cluster", leader)
}

// WaitHealthy waits, up to within, until every process runs, the stream
// has a leader and two current followers, and every replica is ready.
func (c *Cluster) WaitHealthy(ctx context.Context, within time.Duration) error {
	for _, p := range append(slices.Clone(c.Nodes), c.Replicas...) {
		if err := p.heal(); err != nil {
			return err
		}
	}
	err := poll(ctx, within, func(ctx context.Context) error {
		_, followers, err := c.streamLeader(ctx, 2*time.Second)
		if err != nil {
			return err
		}
		current := 0
		for _, ok := range followers {
			if ok {
				current++
			}
		}
		if current != len(c.Nodes)-1 {
			return fmt.Errorf("%d of the stream's followers are current", current)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("the stream did not heal: %w", err)
	}
	for i := range c.Replicas {
		if err := c.waitReady(ctx, i, within); err != nil {
			return err
		}
	}
	return nil
}

// Verify stops the replicas and runs `otpledger verify --format json` on
// the journal.
func (c *Cluster) Verify(ctx context.Context) ([]byte, error) {
	for _, r := range c.Replicas {
		r.terminate(30 * time.Second)
	}
	cmd := exec.CommandContext(ctx, c.bin, "verify", "--format", "json")
	cmd.Env = append(os.Environ(), c.env...)
	return cmd.Output()
}
