package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/httpapi"
	"github.com/otpledger/otpledger/projections"
)

func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc := journaltest.Conn(t)
	j, err := journal.Open(ctx, nc, journal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ledger.New(j, ledger.Config{Policy: aggregates.DefaultPolicy("IBKS"), Now: func() time.Time { return time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC) }})
	mem := projections.NewMemory()
	pnc, _ := nats.Connect(nc.ConnectedUrl())
	pj, _ := journal.Open(ctx, pnc, journal.Config{})
	p, _ := consumers.NewProjector(consumers.ProjectorConfig{Journal: pj, Store: mem})
	pctx, cancel := context.WithCancel(ctx)
	go func() { _ = p.Run(pctx) }()
	t.Cleanup(cancel)
	fp, _ := pii.NewFingerprinter(bytes.Repeat([]byte{1}, 32))
	keys, err := access.OpenKeys(pctx, j, "IBKS", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := keys.Create(ctx, events.Principal{ID: "test", Role: events.RoleAdmin, Method: events.MethodBootstrap},
		access.NewKey{ID: "FEED", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelCenter, events.ChannelAuth}})
	if err != nil {
		t.Fatal(err)
	}
	audToken, _, err := keys.Create(ctx, events.Principal{ID: "test", Role: events.RoleAdmin, Method: events.MethodBootstrap},
		access.NewKey{ID: "AUD", Role: events.RoleAuditor})
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Ledger: l, Views: mem, Fingerprinter: fp, Home: "IBKS",
		Auth: &access.Authenticator{Keys: keys}, Keys: keys,
		JournalReady: func(context.Context) error { return nil }, Lag: func(context.Context) (uint64, error) { return 0, nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	if _, err := client.New(srv.URL, "", nil).Register(ctx, "OTP", "000111222333", "k0", client.Registration{}); !errors.As(err, new(*client.Error)) || err.(*client.Error).Status != 401 {
		t.Fatalf("without a token: %v", err)
	}
	c := client.New(srv.URL, token, nil)
	center := client.Common{Institution: "KB001", Channel: "CENTER", Actor: client.Actor{Role: "SYSTEM", ID: "FEED"}}
	reg, err := c.Register(ctx, "OTP", "000111222333", "k1", client.Registration{Common: center})
	if err != nil || len(reg.Events) != 1 || reg.Events[0].Type != "registered" {
		t.Fatalf("register: %+v %v", reg, err)
	}
	again, err := c.Register(ctx, "OTP", "000111222333", "k1", client.Registration{Common: center})
	if err != nil || again.Last() != reg.Last() {
		t.Fatalf("idempotent retry: %+v %v", again, err)
	}
	_, err = c.Register(ctx, "OTP", "000111222333", "k2", client.Registration{Common: center})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || client.RuleOf(err) != "R-HW-ONE-PER-INSTITUTION" {
		t.Fatalf("second registration: %v", err)
	}
	auth := client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM"}}
	a, err := c.Error(ctx, "OTP", "000111222333", "", auth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceErrors(ctx, "OTP", "000111222333", a.Last()); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("a producer reads no views: %v", err)
	}
	e, err := client.New(srv.URL, audToken, nil).DeviceErrors(ctx, "OTP", "000111222333", a.Last())
	if err != nil || e.Count != 1 || e.AsOfSequence != a.Last() {
		t.Fatalf("device errors: %+v %v", e, err)
	}
	_, err = c.Error(ctx, "otp", "000111222333", "", auth)
	if !errors.As(err, &apiErr) || apiErr.Field != "vendor" {
		t.Fatalf("bad vendor: %v", err)
	}
}
