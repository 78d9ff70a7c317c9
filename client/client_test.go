package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"sync/atomic"
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
	"github.com/otpledger/otpledger/internal/fixture"
	"github.com/otpledger/otpledger/internal/httpapi"
	"github.com/otpledger/otpledger/projections"
)

// server runs the API over a real journal and a memory projection, with
// keys for a producer of the centre and auth feeds (FEED), an auditor (AUD)
// and a teller (S100); it returns its URL and the tokens by key id.
func server(t *testing.T) (string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	nc := journaltest.Conn(t)
	j := journaltest.Open(t, nc, journal.Config{})
	l, _ := ledger.New(j, ledger.Config{Policy: aggregates.DefaultPolicy("IBKS"), Now: func() time.Time { return fixture.BusinessHours }})
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
	tokens := map[string]string{}
	for _, k := range []access.NewKey{
		{ID: "FEED", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelCenter, events.ChannelAuth}},
		{ID: "AUD", Role: events.RoleAuditor},
		{ID: "S100", Role: events.RoleTeller},
	} {
		token, _, err := keys.Create(ctx, events.Principal{ID: "test", Role: events.RoleAdmin, Method: events.MethodBootstrap}, k)
		if err != nil {
			t.Fatal(err)
		}
		tokens[k.ID] = token
	}
	api, err := httpapi.New(httpapi.Config{Ledger: l, Views: mem, Fingerprinter: fp, Home: "IBKS",
		Auth: &access.Authenticator{Keys: keys}, Keys: keys,
		Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL, tokens
}

func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tokens := server(t)
	token, audToken := tokens["FEED"], tokens["AUD"]

	if _, err := client.New(base, "", nil).Register(ctx, "OTP", "000111222333", "k0", client.Registration{}); !errors.As(err, new(*client.Error)) || err.(*client.Error).Status != 401 {
		t.Fatalf("without a token: %v", err)
	}
	c := client.New(base, token, nil)
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
	e, err := client.New(base, audToken, nil).DeviceErrors(ctx, "OTP", "000111222333", a.Last())
	if err != nil || e.Count != 1 || e.AsOfSequence != a.Last() {
		t.Fatalf("device errors: %+v %v", e, err)
	}
	_, err = c.Error(ctx, "otp", "000111222333", "", auth)
	if !errors.As(err, &apiErr) || apiErr.Field != "vendor" {
		t.Fatalf("bad vendor: %v", err)
	}
}

// TestQueries: every query of the API through the client, on a device
// registered at home by a teller and at another institution by the centre
// feed, with paging and read-your-writes.
func TestQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tokens := server(t)
	teller, feed, aud := client.New(base, tokens["S100"], nil), client.New(base, tokens["FEED"], nil), client.New(base, tokens["AUD"], nil)
	branch := client.Common{Channel: "BRANCH", Actor: client.Actor{Role: "SELF", ID: "C0001"}, Documents: []string{"REAL_NAME_ID", "PROCESSING_FORM", "SEAL_OR_SIGNATURE"}}
	if _, err := teller.SetProfile(ctx, "C0001", "", client.Profile{Common: branch, Type: "INDIVIDUAL", Nationality: "KOREAN",
		RealNameNumber: "900101-1234567", Accounts: []string{"12345678901"}}); err != nil {
		t.Fatal(err)
	}
	home, err := teller.Register(ctx, "OTP", "000111222333", "", client.Registration{Common: branch, CustomerNo: "C0001"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := feed.Register(ctx, "OTP", "000111222333", "", client.Registration{Common: client.Common{Institution: "KB001", Channel: "CENTER", Actor: client.Actor{Role: "SYSTEM", ID: "FEED"}}})
	if err != nil {
		t.Fatal(err)
	}
	at := client.Read{MinSequence: other.Last()}

	found, err := teller.FindCustomers(ctx, "", "12345678901")
	if err != nil || len(found.Items) != 1 || found.Items[0].CustomerNo != "C0001" || found.Items[0].RealNameMasked == "" {
		t.Errorf("find by account: %+v %v", found, err)
	}
	devices, err := aud.CustomerDevices(ctx, "C0001", at)
	if err != nil || len(devices.Items) != 1 || devices.Items[0].Status != "ACTIVE" || devices.Items[0].MediumID != "OTP.000111222333" {
		t.Errorf("customer devices: %+v %v", devices, err)
	}
	media, err := aud.CustomerMedia(ctx, "C0001", "HARDWARE", at)
	if err != nil || len(media.Items) != 1 || media.Items[0].IssueStatus != "ISSUED" || media.Items[0].GeneratorNumber != "000111222333" {
		t.Errorf("customer media: %+v %v", media, err)
	}
	var apiErr *client.Error
	if _, err := aud.MobileOTP(ctx, "C0001", at); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("mobile OTP of a customer without one: %v", err)
	}
	state, err := aud.Device(ctx, "OTP", "000111222333", time.Time{})
	if err != nil || len(state.Registrations) != 2 || state.AsOfSequence != other.Last() {
		t.Errorf("device: %+v %v", state, err)
	}
	if before, err := aud.Device(ctx, "OTP", "000111222333", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Errorf("device before its first event: %+v %v", before, err)
	}
	insts, err := aud.DeviceInstitutions(ctx, "OTP", "000111222333", at)
	if err != nil || len(insts.Items) != 2 || insts.AsOfSequence < other.Last() {
		t.Errorf("institutions: %+v %v", insts, err)
	}
	first, err := aud.DeviceHistory(ctx, "OTP", "000111222333", client.Read{MinSequence: other.Last(), Page: client.Page{Limit: 1}})
	if err != nil || len(first.Items) != 1 || first.NextCursor == "" || first.Items[0].ID != home.Events[0].ID {
		t.Fatalf("history, first page: %+v %v", first, err)
	}
	second, err := aud.DeviceHistory(ctx, "OTP", "000111222333", client.Read{Page: client.Page{Limit: 1, Cursor: first.NextCursor}})
	if err != nil || len(second.Items) != 1 || second.Items[0].ID != other.Events[0].ID || second.Items[0].Principal == nil || second.Items[0].Principal.ID != "FEED" {
		t.Errorf("history, second page: %+v %v", second, err)
	}
	listed, err := aud.InstitutionDevices(ctx, "KB001", "", at)
	if err != nil || len(listed.Items) != 1 || listed.Items[0].Serial != "000111222333" || listed.Items[0].Institution.Institution != "KB001" {
		t.Errorf("institution devices: %+v %v", listed, err)
	}
	pending, err := aud.PendingApprovals(ctx, at)
	if err != nil || len(pending.Items) != 1 || pending.Items[0].EventID != home.Events[0].ID || pending.Items[0].Staff != "S100" {
		t.Errorf("pending approvals: %+v %v", pending, err)
	}
}

// TestRetriesUnderTheKey: a command whose answer is lost (the proxy in
// front of the server forwards it, then answers 503) is sent again under
// the same idempotency key and gets the first answer — one event in the
// stream; a call refused with 503 every time gives up after Attempts.
func TestRetriesUnderTheKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tokens := server(t)
	target, _ := neturl.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var hits atomic.Int32
	lose := atomic.Int32{} // answers still to lose
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if lose.Add(-1) >= 0 {
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r) // the server acts; its answer never arrives
			http.Error(w, `{"error":{"code":"unavailable","message":"lost"}}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	feed := client.New(front.URL, tokens["FEED"], nil)
	center := client.Common{Institution: "KB001", Channel: "CENTER", Actor: client.Actor{Role: "SYSTEM", ID: "FEED"}}

	lose.Store(1)
	a, err := feed.Register(ctx, "OTP", "000111222333", "", client.Registration{Common: center}) // under a key of the client's
	if err != nil || len(a.Events) != 1 || hits.Load() != 2 {
		t.Fatalf("a lost answer: %+v %v after %d requests, want 2", a, err, hits.Load())
	}
	history, err := client.New(base, tokens["AUD"], nil).DeviceHistory(ctx, "OTP", "000111222333", client.Read{MinSequence: a.Last()})
	if err != nil || len(history.Items) != 1 || history.Items[0].ID != a.Events[0].ID {
		t.Fatalf("the retried command appended %+v (%v), want its one event", history, err)
	}

	hits.Store(0)
	lose.Store(client.Attempts)
	_, err = feed.Error(ctx, "OTP", "000111222333", "", client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM"}})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 503 || hits.Load() != client.Attempts {
		t.Fatalf("503 every time: %v after %d requests, want %d", err, hits.Load(), client.Attempts)
	}
}
