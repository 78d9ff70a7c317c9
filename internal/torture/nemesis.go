package torture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Nemesis is one kind of fault. Inject applies it to c, choosing its
// target with rng, and returns the target's name and how to heal it; the
// harness heals after a hold it draws from the same seed.
//
// A replica's clock cannot be skewed: serve has no option for it.
type Nemesis struct {
	Name   string
	Inject func(ctx context.Context, c *Cluster, rng *rand.Rand) (target string, heal func() error, err error)
	// Hold bounds how long the fault lasts, when it is not Config.Hold.
	Hold [2]time.Duration
}

// Nemeses are the faults [Run] draws from by default: process faults.
var Nemeses = []Nemesis{
	{Name: "kill-node", Inject: func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return kill(c.Nodes[rng.IntN(len(c.Nodes))])
	}},
	{Name: "pause-node", Inject: func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return pause(c.Nodes[rng.IntN(len(c.Nodes))])
	}},
	{Name: "kill-stream-leader", Inject: func(ctx context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		n, err := c.StreamLeader(ctx)
		if err != nil {
			return "", nil, err
		}
		return kill(n)
	}},
	{Name: "pause-stream-leader", Inject: func(ctx context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		n, err := c.StreamLeader(ctx)
		if err != nil {
			return "", nil, err
		}
		return pause(n)
	}},
	{Name: "kill-replica", Inject: func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return kill(c.Replicas[rng.IntN(len(c.Replicas))])
	}},
	{Name: "pause-replica", Inject: func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return pause(c.Replicas[rng.IntN(len(c.Replicas))])
	}},
}

// StoreNemeses are the faults that reach the nodes' stores, drawn only
// when named (or with "all", see [SelectNemeses]).
var StoreNemeses = []Nemesis{
	// kill-all-nodes SIGKILLs the three nodes at once and starts them again
	// after the hold: the processes die, the machine does not, and what
	// they wrote is in the page cache.
	{Name: "kill-all-nodes", Inject: func(_ context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		c.killNodes()
		return startNodes(c)
	}},
	// lose-unsynced is a power loss of the three nodes: killed at once, and
	// every message block rolled back to its size when the harness last
	// marked it (before the pause preceding this fault), as writes never
	// fsynced are lost. With the default sync_interval (2 min) nothing
	// written in that pause (Config.NemesisEvery) need have reached the disk; with
	// sync_interval always nothing acknowledged is rolled back.
	{Name: "lose-unsynced", Inject: func(_ context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		c.killNodes()
		cut, files, err := c.loseUnsynced()
		target, heal, _ := startNodes(c)
		return fmt.Sprintf("%s (%d bytes cut in %d blocks)", target, cut, files), heal, err
	}},
	// corrupt-follower kills a follower of the stream, flips bytes in the
	// tail of its stream's last message block while it is down, and starts
	// it again: a minority's corrupted store, which the node must detect
	// (checksums) and repair from the leader, or the run must report.
	{Name: "corrupt-follower", Inject: func(ctx context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		leader, followers, err := c.streamLeader(ctx, 20*time.Second)
		if err != nil {
			return "", nil, err
		}
		names := slices.Sorted(maps.Keys(followers))
		if len(names) == 0 {
			return "", nil, fmt.Errorf("stream leader %s has no followers", leader)
		}
		name := names[rng.IntN(len(names))]
		i := slices.IndexFunc(c.Nodes, func(n *proc) bool { return n.name == name })
		if i < 0 {
			return "", nil, fmt.Errorf("follower %v is no node of the cluster", names)
		}
		n := c.Nodes[i]
		n.kill()
		block, flipped, err := flipTail(c.stores[i], rng)
		return fmt.Sprintf("%s (%d bytes flipped in %s)", n.name, flipped, filepath.Base(block)), n.start, err
	}},
}

// startNodes names the (killed) nodes of c and how to start them again.
func startNodes(c *Cluster) (string, func() error, error) {
	var names []string
	for _, n := range c.Nodes {
		names = append(names, n.name)
	}
	return strings.Join(names, ","), func() error {
		var err error
		for _, n := range c.Nodes {
			err = errors.Join(err, n.start())
		}
		return err
	}, nil
}

// flipTail flips (XOR 0xff) up to 16 bytes at random offsets in the last
// 4 KiB of the last message block of the journal's stream in store.
func flipTail(store string, rng *rand.Rand) (string, int, error) {
	var last string
	_ = filepath.WalkDir(store, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.Dir(path), filepath.Join("streams", "OTPLEDGER", "msgs")) &&
			filepath.Ext(path) == ".blk" && (last == "" || blockIndex(path) > blockIndex(last)) {
			last = path
		}
		return nil
	})
	if last == "" {
		return "", 0, fmt.Errorf("no message block of the stream in %s", store)
	}
	b, err := os.ReadFile(last)
	if err != nil || len(b) == 0 {
		return last, 0, err
	}
	from := max(0, len(b)-4096)
	n := 1 + rng.IntN(16)
	for range n {
		b[from+rng.IntN(len(b)-from)] ^= 0xff
	}
	return last, n, os.WriteFile(last, b, 0o640)
}

// blockIndex is the number of a message block's file name (12.blk: 12).
func blockIndex(path string) int {
	i, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(path), ".blk"))
	return i
}

// PartitionNemeses cut nodes off the others' routes (ClusterConfig.
// Partitions puts the routes through proxies when one of them is drawn).
var PartitionNemeses = []Nemesis{
	// partition-leader cuts the stream's leader off the two other nodes:
	// they elect another while the old one may still hold clients.
	{Name: "partition-leader", Inject: func(ctx context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		n, err := c.StreamLeader(ctx)
		if err != nil {
			return "", nil, err
		}
		return partition(c, slices.Index(c.Nodes, n))
	}, Hold: partitionHold},
	// partition-minority cuts one node, drawn at random, off the others.
	{Name: "partition-minority", Inject: func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return partition(c, rng.IntN(len(c.Nodes)))
	}, Hold: partitionHold},
}

// partitionHold outlasts NATS's election timeout (4–9 s), so that a cut
// leader is replaced while it may still believe it leads.
var partitionHold = [2]time.Duration{10 * time.Second, 20 * time.Second}

// partition isolates node i; healing joins it again.
func partition(c *Cluster, i int) (string, func() error, error) {
	if len(c.links) == 0 {
		return "", nil, errors.New("the routes have no proxies: the cluster was started without partitions")
	}
	c.isolate(i, true)
	return c.Nodes[i].name, func() error { c.isolate(i, false); return nil }, nil
}

// kill SIGKILLs p; healing starts it again on the same store and port.
func kill(p *proc) (string, func() error, error) {
	p.kill()
	return p.name, p.start, nil
}

// pause SIGSTOPs p; healing SIGCONTs it.
func pause(p *proc) (string, func() error, error) {
	p.signal(syscall.SIGSTOP)
	return p.name, func() error { p.signal(syscall.SIGCONT); return nil }, nil
}

// Fault is one injected fault, at times of the run's clock.
type Fault struct {
	Nemesis string        `json:"nemesis"`
	Target  string        `json:"target"`
	At      time.Duration `json:"at"`
	Healed  time.Duration `json:"healed"`
	Err     string        `json:"error,omitempty"`
}

// SelectNemeses returns the nemeses named in names (comma-separated, of
// Nemeses, StoreNemeses and PartitionNemeses): Nemeses for "", every one
// for "all",
// none for "none".
func SelectNemeses(names string) ([]Nemesis, error) {
	every := slices.Concat(Nemeses, StoreNemeses, PartitionNemeses)
	switch names {
	case "":
		return Nemeses, nil
	case "all":
		return every, nil
	case "none":
		return []Nemesis{}, nil
	}
	var out []Nemesis
	for name := range strings.SplitSeq(names, ",") {
		i := slices.IndexFunc(every, func(n Nemesis) bool { return n.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("no nemesis %q", name)
		}
		out = append(out, every[i])
	}
	return out, nil
}
