package journal

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedConfig configures an in-process NATS server with JetStream.
type EmbeddedConfig struct {
	// DataDir holds the JetStream file store (under DataDir/jetstream).
	DataDir string
	// Listen is an optional loopback address ("127.0.0.1:4222", or port 0
	// for a free port) on which other processes may connect; empty means
	// in-process connections only.
	Listen string
	// Durability sets the server's sync policy: Fsync syncs every write
	// (SyncAlways); Interval keeps the NATS default. Replicated needs a
	// cluster and is refused here.
	Durability Durability
}

// Embedded is a running in-process NATS server and a connection to it.
type Embedded struct {
	Server *server.Server
	Conn   *nats.Conn
}

// RunEmbedded starts the server and connects to it in process. Close stops both.
func RunEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Durability == Replicated {
		return nil, errors.New("embedded server: replicated durability needs a NATS cluster (OTPLEDGER_NATS_URL)")
	}
	opts := &server.Options{
		ServerName: "otpledger-embedded", JetStream: true, StoreDir: filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways: cfg.Durability == Fsync, NoSigs: true, NoLog: true, DontListen: cfg.Listen == "",
		MaxPayload: 1 << 20,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded server: listen address: %w", err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("embedded server: listen port: %w", err)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded server: not ready after 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name("otpledger"))
	if err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("embedded server: connect: %w", err)
	}
	return &Embedded{Server: s, Conn: nc}, nil
}

// ClientURL returns the URL other processes connect to ("" without a listener).
func (e *Embedded) ClientURL() string {
	if addr := e.Server.Addr(); addr != nil {
		return "nats://" + addr.String()
	}
	return ""
}

// Close drains the connection and shuts the server down, flushing the store.
func (e *Embedded) Close() {
	_ = e.Conn.Drain()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}
