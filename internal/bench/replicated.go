package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journalbench"
)

// replicated: the single-aggregate commands on an R3 stream of a
// three-node cluster in this process (the same server code, routes on
// loopback), against raw CAS publishes on that stream and the ledger on the
// benchmark's R1 stream, measured in the same run. On one machine the
// three replicas share its disk and cores: what it shows is the protocol's
// cost (a quorum round trip per append), not a real cluster's.
func (e *env) replicated(ctx context.Context) ([]Row, error) {
	nc, stop, err := startCluster(filepath.Join(e.dir, "cluster"))
	if err != nil {
		return nil, err
	}
	defer stop()
	var j *journal.Journal
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) { // until a meta leader is elected
		if j, err = journal.Open(ctx, nc, journal.Config{Durability: journal.Replicated}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("open the R3 journal: %w", err)
		}
	}
	l, err := newLedger(j, 0)
	if err != nil {
		return nil, err
	}
	raw, err := journalbench.New(nc, "OTPLEDGER")
	if err != nil {
		return nil, err
	}
	if err := registerDevices(ctx, l, "R", e.sz.pool); err != nil {
		return nil, err
	}
	n := e.sz.commands
	f, err := e.pair(ctx, "ev/s",
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, func(ctx context.Context, w, i int) error {
				_, err := increment(ctx, l, ownDevice("R", e.sz.pool, producers, w, i))
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, rawCAS(raw, producers, e.runTag()))
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, func(ctx context.Context, w, i int) error {
				_, err := increment(ctx, e.l, ownDevice("B", e.sz.pool, producers, w, i))
				return err
			})
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("single-aggregate commands on an R3 stream (three nodes on this machine), 8 producers", f,
		[]string{"raw JetStream CAS publish on the same R3 stream", "the ledger on the R1 stream (interval)"}, 0.8, 0)
	row.Note = fmt.Sprintf("R3 costs the ledger %.0f %% of its R1 throughput on one machine (the three replicas share its disk and two cores); "+
		"p99 %v against %v", 100*(1-f[0].Median/f[2].Median), f[0].P99.Round(100*time.Microsecond), f[2].P99.Round(100*time.Microsecond))
	return []Row{row}, nil
}

// startCluster starts three JetStream servers in this process, routed to
// each other on loopback, storing under dir, and connects to all three.
func startCluster(dir string) (*nats.Conn, func(), error) {
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var servers []*server.Server
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	var urls []string
	for i, p := range ports {
		s, err := server.NewServer(&server.Options{ServerName: fmt.Sprintf("b%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("b%d", i+1)), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: p}, Routes: routes})
		if err != nil {
			stop()
			return nil, nil, err
		}
		go s.Start()
		servers = append(servers, s)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			stop()
			return nil, nil, fmt.Errorf("cluster server %s not ready", s.Name())
		}
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(fmt.Sprint(urls[0], ",", urls[1], ",", urls[2]))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return nc, func() { nc.Close(); stop() }, nil
}
