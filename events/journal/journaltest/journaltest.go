// Package journaltest runs a real JetStream server in process for tests: the
// same server code as production, on a random loopback port, with its store
// in the test's temporary directory, stopped at the test's end.
package journaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/fixture"
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

// Open opens the journal on nc with cfg, failing t if it cannot.
func Open(t testing.TB, nc *nats.Conn, cfg journal.Config) *journal.Journal {
	t.Helper()
	j, err := journal.Open(context.Background(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Journal starts a JetStream server for t and opens the journal on it (the
// default configuration).
func Journal(t testing.TB) *journal.Journal {
	t.Helper()
	return Open(t, Conn(t), journal.Config{})
}

// Forged is a stream without the journal's protections (deletes allowed, no
// checks on what is published), over the journal's subjects: what a forger
// with server access could build. Tests of the audit tools use it.
type Forged struct {
	t      testing.TB
	stream jetstream.Stream
	js     jetstream.JetStream
}

// Forge creates stream name over every journal subject on nc's server,
// without deny-delete or deny-purge.
func Forge(t testing.TB, nc *nats.Conn, name string) *Forged {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{events.SubjectAll}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	return &Forged{t: t, stream: s, js: js}
}

// Store stores data on subject, unchecked, and returns its sequence.
func (f *Forged) Store(subject string, data []byte) uint64 {
	f.t.Helper()
	ack, err := f.js.Publish(context.Background(), subject, data)
	if err != nil {
		f.t.Fatal(err)
	}
	return ack.Sequence
}

// Delete removes the message at seq.
func (f *Forged) Delete(seq uint64) {
	f.t.Helper()
	if err := f.stream.DeleteMsg(context.Background(), seq); err != nil {
		f.t.Fatal(err)
	}
}

// Inject stores data on subject in a journal's stream as a writer that
// bypasses the journal would (a poison message), and returns its sequence.
func Inject(t testing.TB, nc *nats.Conn, subject string, data []byte) uint64 {
	t.Helper()
	return InjectState(t, nc, subject, data, nil)
}

// InjectState is [Inject] with a state header (nil: none), as the ledger
// writes one with each message: a forged snapshot.
func InjectState(t testing.TB, nc *nats.Conn, subject string, data, state []byte) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	if state != nil {
		m.Header.Set(journal.StateHeader, string(state))
	}
	ack, err := js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// AckFloor returns the stream sequence up to which the durable consumer
// of stream has had every message acknowledged.
func AckFloor(t testing.TB, nc *nats.Conn, stream, durable string) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream
}

// WaitForJetStream waits, up to a minute, until JetStream answers on nc (a
// cluster has elected its meta leader).
func WaitForJetStream(t testing.TB, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream does not answer: %v", err)
		}
	}
}

// StreamCluster returns the name of the server leading stream and its
// replicas' state (name → current), once it has a leader (up to a minute).
func StreamCluster(t testing.TB, nc *nats.Conn, stream string) (leader string, replicas map[string]bool, size int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		leader, replicas, size, err := StreamLeader(ctx, nc, stream)
		cancel()
		if err == nil {
			return leader, replicas, size
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s has no leader: %v", stream, err)
		}
	}
}

// StreamLeader asks once for the name of the server leading stream, its
// replicas' state (name → current) and its configured replicas; an error
// when the stream cannot be read or has no leader now.
func StreamLeader(ctx context.Context, nc *nats.Conn, stream string) (leader string, replicas map[string]bool, size int, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, 0, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", nil, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", nil, 0, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", nil, 0, fmt.Errorf("stream %s has no leader", stream)
	}
	replicas = map[string]bool{}
	for _, p := range info.Cluster.Replicas {
		replicas[p.Name] = p.Current && !p.Offline
	}
	return info.Cluster.Leader, replicas, info.Config.Replicas, nil
}

// JetStreamReady returns nil once nc's account can use JetStream (in a
// cluster: a meta leader is elected), the error of its one try otherwise.
func JetStreamReady(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.AccountInfo(ctx)
	return err
}

// ErrorCommit is a device commit of one error_incremented event (count n)
// at a fixed instant: the smallest valid commit, for journal tests.
func ErrorCommit(serial string, n int) events.Commit {
	t0 := fixture.BusinessHours
	return events.Commit{Events: []events.Event{{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0,
		Aggregate: events.DeviceRef("OTP", serial), Institution: "IBKS", Channel: events.ChannelAuth,
		Actor: events.Actor{Role: events.RoleSystem}, Payload: events.ErrorIncremented{CountAfter: n}}}}
}

// DeleteConsumers deletes every consumer of stream on nc's server: what a
// consumer lost with its server, or deleted by another process, looks like
// to the one consuming from it.
func DeleteConsumers(t testing.TB, nc *nats.Conn, stream string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	names := s.ConsumerNames(context.Background())
	for name := range names.Name() {
		if err := s.DeleteConsumer(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
}

// ReaderDoors tries, on reader's connection, the ways out of read-only a
// reader of the stream's account had (below), and returns a line for each one that worked (none:
// the door is shut). ledger is the ledger's connection to the same server,
// stream the journal's stream (holding at least one message) and durable the
// name of a durable consumer of the ledger's on it.
//   - A direct get, a message get and a stream info whose reply subject is
//     one of the stream's: the answer must not be stored.
//   - An update of the durable consumer (headers_only, pause_until) by a
//     create request for its name.
//   - A subscription to _INBOX.>, the inboxes of every user of the account.
func ReaderDoors(t testing.TB, ledger, reader *nats.Conn, stream, durable string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(ledger)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	before := s.CachedInfo().State.LastSeq
	var open []string
	api := "$JS.API."
	for _, req := range []struct{ subject, body string }{
		{api + "DIRECT.GET." + stream, `{"seq":1}`},
		{api + "DIRECT.GET." + stream, `{"seq":1,"batch":5}`},
		{api + "STREAM.MSG.GET." + stream, `{"seq":1}`},
		{api + "STREAM.INFO." + stream, ``},
	} {
		_ = reader.PublishRequest(req.subject, events.SubjectPrefix+".key.revived", []byte(req.body))
	}
	_ = reader.Flush()
	time.Sleep(300 * time.Millisecond) // the answers, if any, are stored by now
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != before {
		open = append(open, fmt.Sprintf("a request with a stream subject as its reply stored %d messages", info.State.LastSeq-before))
	}

	c, err := s.Consumer(ctx, durable)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*jetstream.ConsumerConfig){
		"headers_only": func(c *jetstream.ConsumerConfig) { c.HeadersOnly = true },
		"pause_until": func(c *jetstream.ConsumerConfig) {
			until := time.Now().Add(time.Hour)
			c.PauseUntil = &until
		},
	} {
		cfg := c.CachedInfo().Config
		change(&cfg)
		body, _ := json.Marshal(map[string]any{"stream_name": stream, "config": cfg})
		_, _ = reader.Request(api+"CONSUMER.CREATE."+stream+"."+durable, body, 2*time.Second)
		got, err := s.Consumer(ctx, durable)
		if err != nil {
			t.Fatal(err)
		}
		if g := got.CachedInfo(); g.Config.HeadersOnly || g.Paused {
			open = append(open, "a create request for "+durable+" set its "+name)
		}
	}

	sub, err := reader.SubscribeSync("_INBOX.>")
	if err == nil {
		defer sub.Unsubscribe()
		_ = reader.Flush()
		time.Sleep(100 * time.Millisecond)
		_, _ = s.Info(ctx) // the server's answer lands in the ledger's inbox
		if m, err := sub.NextMsg(time.Second); err == nil {
			open = append(open, "a subscription to _INBOX.> received "+m.Subject)
		}
	}
	return open
}

// LedgerLoosens tries, as the ledger's user on ledger, to shorten the
// stream's life: set max_age or lift deny_delete/deny_purge (by an update,
// or by a create over the existing stream), purge it, delete a message,
// delete the stream. It returns a line for each that worked (each attempt
// waits at most timeout: a refused permission is a request never answered).
func LedgerLoosens(t testing.TB, ledger *nats.Conn, stream string, timeout time.Duration) []string {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(ledger)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	loosened := s.CachedInfo().Config
	loosened.MaxAge, loosened.DenyDelete, loosened.DenyPurge = time.Hour, false, false
	var open []string
	for _, a := range []struct {
		name    string
		attempt func(context.Context) error
	}{
		{"update max_age", func(ctx context.Context) error { _, err := js.UpdateStream(ctx, loosened); return err }},
		{"create over the stream", func(ctx context.Context) error { _, err := js.CreateStream(ctx, loosened); return err }},
		{"purge the stream", func(ctx context.Context) error { return s.Purge(ctx) }},
		{"delete a message", func(ctx context.Context) error { return s.DeleteMsg(ctx, 1) }},
		{"delete the stream", func(ctx context.Context) error { return js.DeleteStream(ctx, stream) }},
	} {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := a.attempt(actx)
		cancel()
		if err == nil {
			open = append(open, "could "+a.name)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		return append(open, "the stream after the attempts: "+err.Error())
	}
	if c := info.Config; c.MaxAge != 0 || !c.DenyDelete || !c.DenyPurge {
		open = append(open, fmt.Sprintf("the stream after the attempts: max_age %v, deny_delete %v, deny_purge %v", c.MaxAge, c.DenyDelete, c.DenyPurge))
	}
	return open
}
