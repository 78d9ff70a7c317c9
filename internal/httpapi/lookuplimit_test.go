package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/projections"
)

// TestLookupLimitIsSharedByReplicas: two servers sharing a journal, each
// with its own keys and views in memory, hold one look-up limit per
// principal: a principal alternating between them gets the rate once (a
// burst of 5, then one every 2 s), not once per server, and the look-ups
// refused are not recorded.
func TestLookupLimitIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	var cfg Config
	a := newTestAPI(t, func(c *Config) { cfg = *c })
	ctx := context.Background()
	nc, err := nats.Connect(a.nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	kctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	keys, err := access.OpenKeys(kctx, journaltest.Open(t, nc, journal.Config{}), "IBKS", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys, cfg.Auth, cfg.Views = keys, &access.Authenticator{Keys: keys}, projections.NewMemory()
	replica, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(replica.Handler())
	t.Cleanup(srv.Close)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := keys.Token(a.tokens["S100"]); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the replica does not know the teller's key: %v", err)
		}
	}
	base, _ := a.j.LastSequence(ctx)
	allowed, start := 0, time.Now()
	for i := range 40 {
		url := []string{a.url, srv.URL}[i%2] + fmt.Sprintf("/v1/customers?account_no=%011d", i)
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+a.tokens["S100"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		default:
			t.Fatalf("look-up %d: %d", i, resp.StatusCode)
		}
	}
	took := time.Since(start)
	most := 5 + int(took.Seconds()/2) + 1
	t.Logf("%d of 40 look-ups alternating between two servers allowed in %v (at most %d at 30 a minute)", allowed, took, most)
	if allowed > most {
		t.Errorf("%d of 40 look-ups allowed across two servers in %v, at most %d: each server keeps its own limit", allowed, took, most)
	}
	if last, _ := a.j.LastSequence(ctx); last-base != uint64(allowed) {
		t.Errorf("%d look-ups recorded, %d allowed", last-base, allowed)
	}
}
