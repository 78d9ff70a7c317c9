package torture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Nemesis is one kind of fault. Inject applies it to c, choosing its
// target with rng, and returns the target's name and how to heal it; the
// harness heals after a hold it draws from the same seed.
//
// Nemeses is the extension point: a partition (a TCP proxy on the routes
// that can be cut), a replica's clock skew, or bit flips and truncation of
// a minority node's store files paired with a kill are more entries.
type Nemesis struct {
	Name   string
	Inject func(ctx context.Context, c *Cluster, rng *rand.Rand) (target string, heal func() error, err error)
}

// Nemeses are the faults [Run] draws from.
var Nemeses = []Nemesis{
	{"kill-node", func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return kill(c.Nodes[rng.IntN(len(c.Nodes))])
	}},
	{"pause-node", func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return pause(c.Nodes[rng.IntN(len(c.Nodes))])
	}},
	{"kill-stream-leader", func(ctx context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		n, err := c.StreamLeader(ctx)
		if err != nil {
			return "", nil, err
		}
		return kill(n)
	}},
	{"pause-stream-leader", func(ctx context.Context, c *Cluster, _ *rand.Rand) (string, func() error, error) {
		n, err := c.StreamLeader(ctx)
		if err != nil {
			return "", nil, err
		}
		return pause(n)
	}},
	{"kill-replica", func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return kill(c.Replicas[rng.IntN(len(c.Replicas))])
	}},
	{"pause-replica", func(_ context.Context, c *Cluster, rng *rand.Rand) (string, func() error, error) {
		return pause(c.Replicas[rng.IntN(len(c.Replicas))])
	}},
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

// SelectNemeses returns the nemeses named in names (comma-separated), all
// of them for "", none for "none".
func SelectNemeses(names string) ([]Nemesis, error) {
	switch names {
	case "":
		return Nemeses, nil
	case "none":
		return []Nemesis{}, nil
	}
	var out []Nemesis
	for name := range strings.SplitSeq(names, ",") {
		i := slices.IndexFunc(Nemeses, func(n Nemesis) bool { return n.Name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("no nemesis %q", name)
		}
		out = append(out, Nemeses[i])
	}
	return out, nil
}
