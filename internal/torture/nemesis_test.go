package torture

import (
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestClusterConfSync holds the harness's copy of deploy/nats/cluster.conf
// to what nats-server reads from it: sync_interval always or a duration in
// the jetstream block, the advertised route address in the cluster block,
// and the deployed file itself when neither is asked for.
func TestClusterConfSync(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"OTPLEDGER_NATS_NAME": "n1", "OTPLEDGER_NATS_PORT": "4222", "OTPLEDGER_NATS_CLUSTER_PORT": "6222",
		"OTPLEDGER_NATS_STORE": t.TempDir(), "OTPLEDGER_NATS_ROUTE_1": "nats-route://route:x@127.0.0.1:6222",
		"OTPLEDGER_NATS_ROUTE_2": "nats-route://route:x@127.0.0.1:6223", "OTPLEDGER_NATS_ROUTE_3": "nats-route://route:x@127.0.0.1:6224",
		"OTPLEDGER_NATS_ROUTE_PASSWORD": "x", "OTPLEDGER_NATS_PASSWORD": "y", "OTPLEDGER_AUDITOR_PASSWORD": "z"} {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	if path, err := clusterConf(root, dir, "n1", "", ""); err != nil || path != filepath.Join(root, "deploy/nats/cluster.conf") {
		t.Fatalf("without a sync_interval or an advertised address: %q, %v; want the deployed file", path, err)
	}
	for _, c := range []struct {
		sync, advertise string
		always          bool
		interval        time.Duration
	}{
		{"always", "", true, 0},
		{"10s", "127.0.0.1:7000", false, 10 * time.Second},
		{"", "127.0.0.1:7001", false, 0},
	} {
		path, err := clusterConf(root, dir, "n1", c.sync, c.advertise)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := server.ProcessConfigFile(path)
		if err != nil {
			t.Fatalf("sync %q: nats-server refuses the copy: %v", c.sync, err)
		}
		if opts.SyncAlways != c.always || (c.interval != 0 && opts.SyncInterval != c.interval) || (c.sync == "" && opts.SyncInterval != 0) {
			t.Errorf("sync %q: nats-server reads always=%v interval=%v", c.sync, opts.SyncAlways, opts.SyncInterval)
		}
		if opts.Cluster.Advertise != c.advertise || len(opts.Routes) != 3 || opts.Accounts == nil {
			t.Errorf("sync %q: advertise %q, %d routes, accounts %v", c.sync, opts.Cluster.Advertise, len(opts.Routes), opts.Accounts != nil)
		}
	}
	if _, err := clusterConf(root, dir, "n1", "sometimes", ""); err == nil {
		t.Error("a sync_interval neither always nor a duration was accepted")
	}
}

// TestLinkCut holds a route's proxy to a partition: cut, it closes what it
// carries and carries nothing new; healed, it carries again.
func TestLinkCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	l, err := newLink(0, 1, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		_, err := io.ReadFull(c, b)
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.port())))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := dial()
	defer before.Close()
	if err := echo(before); err != nil {
		t.Fatalf("the link does not carry: %v", err)
	}
	l.setCut(true)
	if err := echo(before); err == nil {
		t.Error("a connection outlived the cut")
	}
	during := dial()
	defer during.Close()
	if err := echo(during); err == nil {
		t.Error("the cut link carried a new connection")
	}
	l.setCut(false)
	after := dial()
	defer after.Close()
	if err := echo(after); err != nil {
		t.Errorf("the healed link does not carry: %v", err)
	}
}
