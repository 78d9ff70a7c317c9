// Package journaltest runs a real JetStream server in process for tests: the
// same server code as production, on a random loopback port, with its store
// in the test's temporary directory, stopped at the test's end.
package journaltest

import (
	"testing"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
)

// Server is a running test server.
type Server struct {
	URL      string // where clients connect
	StoreDir string // its JetStream file store
	Conn     *nats.Conn
}

// Run starts a JetStream server for t and connects to it.
func Run(t testing.TB) Server {
	t.Helper()
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = -1, true, t.TempDir()
	s := natstest.RunServer(&opts)
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return Server{URL: s.ClientURL(), StoreDir: opts.StoreDir, Conn: nc}
}

// Conn starts a JetStream server for t and returns a connection to it.
func Conn(t testing.TB) *nats.Conn { return Run(t).Conn }
