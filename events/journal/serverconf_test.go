package journal

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
)

// TestDocumentedServerConfig starts a server from deploy/nats/otpledger.conf
// (the documented accounts and permissions): the ledger's user provisions
// the stream and appends; the auditor reads it and can change nothing —
// no publish to otpledger.>, no stream create, update, purge or delete, no
// message delete; without credentials nothing connects.
func TestDocumentedServerConfig(t *testing.T) {
	t.Setenv("OTPLEDGER_NATS_PASSWORD", "ledger-test-password")
	t.Setenv("OTPLEDGER_AUDITOR_PASSWORD", "auditor-test-password")
	opts, err := server.ProcessConfigFile("../../deploy/nats/otpledger.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, t.TempDir(), true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	ctx := context.Background()
	connect := func(user, password string, opts ...nats.Option) (*nats.Conn, error) {
		return nats.Connect(s.ClientURL(), append(opts, nats.UserInfo(user, password), nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	ledger, err := connect("otpledger", "ledger-test-password")
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	j, err := Open(ctx, ledger, Config{})
	if err != nil {
		t.Fatalf("the ledger's user opens the journal: %v", err)
	}
	now := time.Now().UTC()
	e := events.Event{ID: uuid.New(), OccurredAt: now, RecordedAt: now, Aggregate: events.DeviceRef("OTP", "000111222333"),
		Institution: "KB001", Channel: events.ChannelCenter, Actor: events.Actor{Role: events.RoleSystem, ID: "CENTER"},
		Payload: events.Registered{Vendor: "OTP", Serial: "000111222333"}}
	if _, err := j.Append(ctx, Record{Commit: events.Commit{Events: []events.Event{e}}, MsgID: e.ID.String()}); err != nil {
		t.Fatalf("the ledger's user appends: %v", err)
	}

	if _, err := j.DurableConsumer(ctx, "otpledger-projector", 1, 10); err != nil {
		t.Fatalf("the ledger's user creates its projector's consumer: %v", err)
	}
	auditor, err := connect("auditor", "auditor-test-password", nats.CustomInboxPrefix(ReaderInbox))
	if err != nil {
		t.Fatal(err)
	}
	defer auditor.Close()
	ja, err := Open(ctx, auditor, Config{ReadOnly: true})
	if err != nil {
		t.Fatalf("the auditor opens the journal read-only: %v", err)
	}
	read := 0
	if err := ja.Scan(ctx, 0, 0, func(ms []Message) error { read += len(ms); return nil }); err != nil || read != 1 {
		t.Fatalf("the auditor reads: %d messages, %v", read, err)
	}
	js, _ := jetstream.NewWithAPIPrefix(auditor, ReaderAPIPrefix) // the auditor's own account imports the stream's reads
	stream, err := js.Stream(ctx, "OTPLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for name, attempt := range map[string]func() error{
		"publish to otpledger.>": func() error {
			_, err := js.Publish(cctx, "otpledger.device.OTP.999888777666", []byte(`{"events":[]}`))
			return err
		},
		"create a stream": func() error {
			_, err := js.CreateStream(cctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}})
			return err
		},
		"update the stream": func() error {
			cfg := stream.CachedInfo().Config
			cfg.DenyPurge = false
			_, err := js.UpdateStream(cctx, cfg)
			return err
		},
		"purge the stream":  func() error { return stream.Purge(cctx) },
		"delete a message":  func() error { return stream.DeleteMsg(cctx, 1) },
		"delete the stream": func() error { return js.DeleteStream(cctx, "OTPLEDGER") },
		"delete a consumer": func() error { return js.DeleteConsumer(cctx, "OTPLEDGER", "otpledger-projector") },
	} {
		if err := attempt(); err == nil {
			t.Errorf("the auditor could %s", name)
		}
	}
	info, err := j.stream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("after the auditor's attempts: %d messages, %v", info.State.Msgs, err)
	}
	if _, err := j.stream.Consumer(ctx, "otpledger-projector"); err != nil {
		t.Fatalf("the projector's consumer after the auditor's attempts: %v", err)
	}
}
