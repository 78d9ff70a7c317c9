// Package embedded runs the in-process NATS server of the embedded default:
// JetStream on a file store in the data directory, an exclusive lock on that
// directory, a loopback listener that needs credentials, and read-only
// credentials for the audit tools run beside it. It is a package of its own
// so that what imports the journal (the ledger, producers embedding it)
// does not link a whole nats-server.
package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/securefile"
)

// Config configures an in-process NATS server with JetStream.
type Config struct {
	// DataDir holds the JetStream file store (under DataDir/jetstream), the
	// lock that keeps a second process out of it, and the reader credentials.
	DataDir string
	// Listen is the loopback address ("127.0.0.1:4223") on which other
	// processes connect, with credentials; default 127.0.0.1 on a free port.
	Listen string
	// Durability sets the server's sync policy: Fsync syncs every write
	// (SyncAlways); Interval keeps the NATS default. Replicated needs a
	// cluster and is refused here.
	Durability journal.Durability
	// Stream is the journal's stream name the reader may read; default "OTPLEDGER".
	Stream string
}

// Server is a running in-process NATS server, holding the exclusive lock on
// its data directory, and a connection to it.
type Server struct {
	Server   *server.Server
	Conn     *nats.Conn
	password string // the ledger user's, never written anywhere
	lock     *os.File
	reader   string // the reader credentials file
}

// Users of the embedded server, in the accounts of deploy/nats/accounts.conf
// (see [accounts]): the ledger's user, the only writer, has only the
// JetStream API the journal needs; the reader is in an account of its own
// that imports the stream's read-only services.
const (
	ledgerUser = "otpledger"
	readerUser = "reader"
)

// ReaderFile is the name, in the data directory, of the file in which a
// running embedded server leaves the address and read-only credentials for
// audit tools run beside it (mode 0600, removed when the server stops).
const ReaderFile = "reader.json"

// LockFile is the name of the lock file in the data directory.
const LockFile = "LOCK"

// ErrLocked is returned by [Run] when another process holds the data
// directory: two servers on one file store destroy it.
var ErrLocked = errors.New("embedded server: data directory in use by another process")

// Run locks the data directory, starts the server and connects to it
// in process. Close stops both and releases the lock. It returns an error
// wrapping [ErrLocked] when another process (a running serve) holds the
// directory.
func Run(cfg Config) (*Server, error) {
	if cfg.Durability == journal.Replicated {
		return nil, errors.New("embedded server: replicated durability needs a NATS cluster (OTPLEDGER_NATS_URL)")
	}
	if cfg.Stream == "" {
		cfg.Stream = "OTPLEDGER"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded server: listen address: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("embedded server: listen address %s is not a loopback address", cfg.Listen)
	}
	portN, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("embedded server: listen port: %w", err)
	}
	if portN == 0 {
		portN = server.RANDOM_PORT
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	e := &Server{lock: lock, password: secret(), reader: filepath.Join(cfg.DataDir, ReaderFile)}
	readerPassword := secret()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(accounts(cfg.Stream, e.password, readerPassword)); err != nil {
		e.unlock()
		return nil, fmt.Errorf("embedded server: accounts: %w", err)
	}
	opts.ServerName, opts.JetStream, opts.StoreDir = "otpledger-embedded", true, filepath.Join(cfg.DataDir, "jetstream")
	opts.SyncAlways, opts.NoSigs, opts.NoLog, opts.MaxPayload = cfg.Durability == journal.Fsync, true, true, 1<<20
	opts.Host, opts.Port = host, portN
	s, err := server.NewServer(opts)
	if err != nil {
		e.unlock()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		e.unlock()
		return nil, errors.New("embedded server: not ready after 30s")
	}
	e.Server = s
	if e.Conn, err = e.Connect("otpledger"); err != nil {
		s.Shutdown()
		e.unlock()
		return nil, fmt.Errorf("embedded server: connect: %w", err)
	}
	rc, _ := json.Marshal(readerCreds{URL: e.ClientURL(), User: readerUser, Password: readerPassword})
	if err := securefile.Write(e.reader, rc); err != nil {
		e.Close()
		return nil, fmt.Errorf("embedded server: write %s: %w", ReaderFile, err)
	}
	return e, nil
}

// accounts is the embedded server's configuration of accounts and users:
// deploy/nats/accounts.conf's, with the reader for the auditor (the doors
// and the tests that keep them shut: docs/security.md).
//   - The ledger's account holds the stream; its user may create it (a
//     create never changes an existing stream), append, read, run its
//     consumers, back up and restore, and nothing else: no stream update,
//     purge or delete, no message delete.
//   - The reader's account has no JetStream and imports, under
//     [journal.ReaderAPIPrefix], the stream's info, direct and message gets.
//     A request crossing an import is answered on the exporter's _R_.
//     subject, so no reply subject the reader chooses is published in the
//     ledger's account: it can cause nothing to be stored. It can create no
//     consumer and subscribe only to its inbox prefix, [journal.ReaderInbox].
func accounts(stream, ledgerPassword, readerPassword string) string {
	return strings.NewReplacer("{stream}", stream, "{ledger_user}", ledgerUser, "{ledger_password}", ledgerPassword,
		"{reader_user}", readerUser, "{reader_password}", readerPassword, "{reader_api}", journal.ReaderAPIPrefix,
		"{reader_inbox}", journal.ReaderInbox).Replace(accountsTemplate)
}

const accountsTemplate = `
accounts {
  LEDGER {
    jetstream: enabled
    users: [{
      user: "{ledger_user}", password: "{ledger_password}"
      permissions: {
        publish: { allow: [
          "otpledger.>", "$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.CREATE.{stream}",
          "$JS.API.STREAM.MSG.GET.{stream}", "$JS.API.DIRECT.GET.{stream}", "$JS.API.DIRECT.GET.{stream}.>",
          "$JS.API.CONSUMER.CREATE.{stream}.>", "$JS.API.CONSUMER.INFO.{stream}.>",
          "$JS.API.CONSUMER.DELETE.{stream}.>", "$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
          "$JS.ACK.{stream}.>", "$JS.FC.{stream}.>",
          "$JS.API.STREAM.SNAPSHOT.{stream}", "$JS.SNAPSHOT.ACK.{stream}.>",
          "$JS.API.STREAM.RESTORE.{stream}", "$JS.SNAPSHOT.RESTORE.{stream}.>", "_INBOX.>"
        ] }
        subscribe: { allow: ["_INBOX.>", "{reader_inbox}.>"] }
      }
    }]
    exports: [
      { service: "$JS.API.STREAM.INFO.{stream}", accounts: [READER] }
      { service: "$JS.API.STREAM.MSG.GET.{stream}", accounts: [READER] }
      { service: "$JS.API.DIRECT.GET.{stream}", response_type: stream, accounts: [READER] }
      { service: "$JS.API.DIRECT.GET.{stream}.>", accounts: [READER] }
    ]
  }
  READER {
    users: [{
      user: "{reader_user}", password: "{reader_password}"
      permissions: {
        publish: { allow: [
          "$JS.API.STREAM.INFO.{stream}", "{reader_api}.STREAM.INFO.{stream}", "{reader_api}.STREAM.MSG.GET.{stream}",
          "{reader_api}.DIRECT.GET.{stream}", "{reader_api}.DIRECT.GET.{stream}.>"
        ] }
        subscribe: { allow: ["{reader_inbox}.>"] }
      }
    }]
    imports: [
      { service: { account: LEDGER, subject: "$JS.API.STREAM.INFO.{stream}" }, to: "{reader_api}.STREAM.INFO.{stream}" }
      { service: { account: LEDGER, subject: "$JS.API.STREAM.MSG.GET.{stream}" }, to: "{reader_api}.STREAM.MSG.GET.{stream}" }
      { service: { account: LEDGER, subject: "$JS.API.DIRECT.GET.{stream}" }, to: "{reader_api}.DIRECT.GET.{stream}" }
      { service: { account: LEDGER, subject: "$JS.API.DIRECT.GET.{stream}.>" }, to: "{reader_api}.DIRECT.GET.{stream}.>" }
    ]
  }
}
`

type readerCreds struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// DialReader connects, with the read-only credentials a running embedded
// server left in dataDir, to that server. It is how audit tools read the
// journal while serve holds the data directory.
func DialReader(dataDir, name string) (*nats.Conn, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, ReaderFile))
	if err != nil {
		return nil, fmt.Errorf("reader credentials of the running server: %w", err)
	}
	var rc readerCreds
	if err := json.Unmarshal(data, &rc); err != nil || rc.URL == "" {
		return nil, fmt.Errorf("reader credentials %s are malformed", filepath.Join(dataDir, ReaderFile))
	}
	nc, err := nats.Connect(rc.URL, nats.UserInfo(rc.User, rc.Password), nats.Name(name), nats.MaxReconnects(0),
		nats.CustomInboxPrefix(journal.ReaderInbox))
	if err != nil {
		return nil, fmt.Errorf("connect to the running server at %s: %w", rc.URL, err)
	}
	return nc, nil
}

// lockDir creates dir and takes an exclusive, non-blocking OS lock on its
// lock file, recording the holder's pid. The OS drops the lock when the
// process ends, however it ends. A symbolic link in the lock file's place
// is refused, never followed (the pid would be written through it).
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if fi, lerr := os.Lstat(path); err != nil && lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("data directory lock: %s is a symbolic link: refused", path)
	}
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by pid %s (a running otpledger serve?)", ErrLocked, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Connect opens another in-process connection as the ledger's user. Its
// asynchronous errors are not printed (nats.go's default prints them, e.g.
// "read/write on closed pipe" when the server stops): every call that fails
// returns its error.
func (e *Server) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.InProcessServer(e.Server), nats.UserInfo(ledgerUser, e.password), nats.Name(name),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// ClientURL returns the URL other processes connect to (with credentials).
func (e *Server) ClientURL() string {
	if addr := e.Server.Addr(); addr != nil {
		return "nats://" + addr.String()
	}
	return ""
}

// Close drains the connection and shuts the server down, flushing the store,
// then removes the reader credentials and releases the lock.
func (e *Server) Close() {
	_ = e.Conn.Drain()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	_ = os.Remove(e.reader)
	e.unlock()
}

func (e *Server) unlock() {
	_ = syscall.Flock(int(e.lock.Fd()), syscall.LOCK_UN)
	_ = e.lock.Close()
}
