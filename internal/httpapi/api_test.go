package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/apitest"
	"github.com/otpledger/otpledger/internal/fixture"
	"github.com/otpledger/otpledger/projections"
)

const (
	realName = "900101-1234567"
	phoneID  = "PHONE-5551234"
)

type testAPI struct {
	url    string
	j      *journal.Journal
	nc     *nats.Conn // the journal's connection
	keys   *access.Keys
	tokens map[string]string // key id → token
	views  *projections.Memory
}

// settle waits until the views reach the journal's last sequence: polling
// on the position, so that a loaded machine is slower, never flaky.
func (a testAPI) settle(t *testing.T) uint64 {
	t.Helper()
	ctx := context.Background()
	last, err := a.j.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if pos, err := a.views.Position(ctx); err == nil && pos >= last {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("the views did not reach %d in two minutes", last)
		}
	}
}

// newTestAPI serves the API over a real journal and a memory projection;
// options adjust its configuration.
func newTestAPI(t *testing.T, options ...func(*Config)) testAPI {
	t.Helper()
	nc := journaltest.Conn(t)
	ctx := context.Background()
	j := journaltest.Open(t, nc, journal.Config{})
	l, err := ledger.New(j, ledger.Config{Policy: aggregates.DefaultPolicy("IBKS"), Now: func() time.Time { return fixture.BusinessHours }})
	if err != nil {
		t.Fatal(err)
	}
	mem := projections.NewMemory()
	pnc, err := nats.Connect(nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	pj := journaltest.Open(t, pnc, journal.Config{})
	p, err := consumers.NewProjector(consumers.ProjectorConfig{Journal: pj, Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Run(pctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; pnc.Close() })
	fp, _ := pii.NewFingerprinter(bytes.Repeat([]byte{7}, 32))
	kctx, stopKeys := context.WithCancel(ctx)
	t.Cleanup(stopKeys)
	keys, err := access.OpenKeys(kctx, j, "IBKS", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	for _, nk := range apitest.Keys {
		token, _, err := keys.Create(ctx, events.Principal{ID: "test", Role: events.RoleAdmin, Method: events.MethodBootstrap}, nk)
		if err != nil {
			t.Fatal(err)
		}
		tokens[nk.ID] = token
	}
	cfg := Config{Ledger: l, Views: mem, Fingerprinter: fp, Home: "IBKS", Auth: &access.Authenticator{Keys: keys}, Keys: keys,
		Journal: j}
	for _, o := range options {
		o(&cfg)
	}
	api, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return testAPI{url: srv.URL, j: j, nc: nc, keys: keys, tokens: tokens, views: mem}
}

// do sends a request and returns status and body; headers are name, value pairs.
func (a testAPI) do(t *testing.T, method, path, contentType, body string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+a.tokens[apitest.PrincipalFor(method, path, body)])
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func (a testAPI) must(t *testing.T, method, path, body string) {
	t.Helper()
	if status, out := a.do(t, method, path, "application/json", body); status != http.StatusCreated {
		t.Fatalf("%s %s: %d %s", method, path, status, out)
	}
}

const (
	branchSelf = `"channel":"BRANCH","actor":{"role":"SELF","id":"C0001"},"staff":"S100","documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"]`
	mts        = `"channel":"MTS","actor":{"role":"SELF","id":"C0001"}`
	authCh     = `"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}`
)

// TestBadRequests sends malformed and refused requests: each gets its
// status, code and field or rule, echoes no personal data, and appends
// nothing.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "PUT", "/v1/customers/C0001", `{`+branchSelf+`,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"`+realName+`"}`)
	a.must(t, "PUT", "/v1/customers/C0002", `{`+branchSelf+`,"type":"CORPORATE","residency":"DOMESTIC","real_name_number":"123-45-67890"}`)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{`+branchSelf+`,"customer_no":"C0001"}`)
	big := `{"channel":"AUTH","actor":{"role":"SYSTEM"},"x":"` + strings.Repeat("a", MaxBody) + `"}`
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code, field, rule               string
	}{
		{"malformed JSON", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":`, 400, "invalid_argument", "", ""},
		{"unknown field", "POST", "/v1/devices/OTP/000111222333/errors", "", `{` + authCh + `,"pin":"1234"}`, 400, "invalid_argument", "pin", ""},
		{"body over 64 KiB", "POST", "/v1/devices/OTP/000111222333/errors", "", big, 413, "too_large", "", ""},
		{"wrong content type", "POST", "/v1/devices/OTP/000111222333/errors", "text/plain", `{` + authCh + `}`, 400, "invalid_argument", "Content-Type", ""},
		{"missing channel", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"actor":{"role":"SYSTEM"}}`, 400, "invalid_argument", "channel", ""},
		{"unknown channel", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":"FAX","actor":{"role":"SYSTEM"}}`, 400, "invalid_argument", "channel", ""},
		{"channel of the wrong type", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":7,"actor":{"role":"SYSTEM"}}`, 400, "invalid_argument", "channel", ""},
		{"missing actor", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","reason":"LOST"}`, 400, "invalid_argument", "actor", ""},
		{"unknown role", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","actor":{"role":"BOSS"},"reason":"LOST"}`, 400, "invalid_argument", "actor.role", ""},
		{"a name as actor id", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","actor":{"role":"SELF","id":"홍길동"},"reason":"LOST"}`, 400, "invalid_argument", "actor.id", ""},
		{"lower-case vendor", "POST", "/v1/devices/otp/000111222333/errors", "", `{` + authCh + `}`, 400, "invalid_argument", "vendor", ""},
		{"short serial", "POST", "/v1/devices/OTP/123/errors", "", `{` + authCh + `}`, 400, "invalid_argument", "serial", ""},
		{"bad customer number in path", "POST", "/v1/customers/c-1/mobile-otp/errors", "", `{` + authCh + `}`, 400, "invalid_argument", "customer_no", ""},
		{"bad institution", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","actor":{"role":"SELF"},"institution":"kb","reason":"LOST"}`, 400, "invalid_argument", "institution", ""},
		{"unknown document", "POST", "/v1/devices/OTP/000111222333/errors/reset", "", `{"channel":"BRANCH","actor":{"role":"SELF"},"staff":"S100","documents":["PASSPORT"]}`, 400, "invalid_argument", "documents", ""},
		{"client time off the centre", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","actor":{"role":"SELF"},"reason":"LOST","occurred_at":"2026-11-25T00:00:00Z"}`, 400, "invalid_argument", "occurred_at", ""},
		{"malformed centre time", "POST", "/v1/devices/OTP/000111222333/registrations", "", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"},"occurred_at":"yesterday"}`, 400, "invalid_argument", "occurred_at", ""},
		{"home registration without customer", "POST", "/v1/devices/OTP/999888777666/registrations", "", `{` + branchSelf + `}`, 400, "invalid_argument", "customer_no", ""},
		{"bad customer number in body", "POST", "/v1/devices/OTP/999888777666/registrations", "", `{` + branchSelf + `,"customer_no":"c1"}`, 400, "invalid_argument", "customer_no", ""},
		{"a cancellation claiming the ledger's own reason", "POST", "/v1/devices/OTP/000111222333/registrations/IBKS/cancel", "", `{` + branchSelf + `,"reason":"REPLACED_BY_MOBILE"}`, 400, "invalid_argument", "reason", ""},
		{"unknown loss reason", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"PHONE","actor":{"role":"SELF"},"reason":"MISPLACED"}`, 400, "invalid_argument", "reason", ""},
		{"malformed real-name number", "PUT", "/v1/customers/C0003", "", `{` + branchSelf + `,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"90010112345"}`, 400, "invalid_argument", "real_name_number", ""},
		{"malformed phone id", "POST", "/v1/customers/C0001/mobile-otp", "", `{` + mts + `,"phone_id":"x y"}`, 400, "invalid_argument", "phone_id", ""},
		{"malformed account", "PUT", "/v1/customers/C0003", "", `{` + branchSelf + `,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"` + realName + `","accounts":["12"]}`, 400, "invalid_argument", "accounts", ""},
		{"staff other than the teller", "POST", "/v1/devices/OTP/000111222333/errors/reset", "", `{"channel":"BRANCH","actor":{"role":"SELF"},"staff":"S999","documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"]}`, 403, "forbidden", "", ""},
		{"malformed event id", "POST", "/v1/events/not-a-uuid/approval", "", `{"approver":"M200"}`, 400, "invalid_argument", "event_id", ""},
		{"limit out of range", "GET", "/v1/devices/OTP/000111222333/history?limit=0", "", ``, 400, "invalid_argument", "limit", ""},
		{"forged cursor", "GET", "/v1/devices/OTP/000111222333/history?cursor=abc", "", ``, 400, "invalid_argument", "cursor", ""},
		{"customer search without a key", "GET", "/v1/customers", "", ``, 400, "invalid_argument", "real_name_number", ""},
		{"unknown device", "GET", "/v1/devices/OTP/999888777666", "", ``, 404, "not_found", "", ""},
		{"unknown path", "GET", "/v2/anything", "", ``, 404, "not_found", "", ""},
		{"no mobile OTP to revoke", "POST", "/v1/customers/C0001/mobile-otp/revoke", "", `{` + mts + `}`, 404, "not_found", "", ""},
		{"R-HW-NO-ISSUE: loss of an unknown device", "POST", "/v1/devices/OTP/999888777666/loss-reports", "", `{"channel":"PHONE","actor":{"role":"SELF"},"reason":"LOST"}`, 409, "rule_violation", "", "R-HW-NO-ISSUE"},
		{"R-CHANNEL: ODS registration", "POST", "/v1/devices/OTP/999888777666/registrations", "", `{"channel":"ODS","actor":{"role":"SELF"},"customer_no":"C0001"}`, 409, "rule_violation", "", "R-CHANNEL"},
		{"R-DOCS: no real-name ID", "POST", "/v1/devices/OTP/000111222333/errors/reset", "", `{"channel":"BRANCH","actor":{"role":"SELF"},"staff":"S100","documents":["PROCESSING_FORM","SEAL_OR_SIGNATURE"]}`, 409, "rule_violation", "", "R-DOCS"},
		{"R-ONE-OTP: a second device", "POST", "/v1/devices/OTP/999888777666/registrations", "", `{` + branchSelf + `,"customer_no":"C0001"}`, 409, "rule_violation", "", "R-ONE-OTP"},
		{"R-HW-ONE-PER-INSTITUTION: registered twice", "POST", "/v1/devices/OTP/000111222333/registrations", "", `{` + branchSelf + `,"customer_no":"C0001"}`, 409, "rule_violation", "", "R-HW-ONE-PER-INSTITUTION"},
		{"R-MOB-ELIGIBLE: a corporation", "POST", "/v1/customers/C0002/mobile-otp", "", `{` + mts + `,"phone_id":"` + phoneID + `","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`, 409, "rule_violation", "", "R-MOB-ELIGIBLE"},
		{"R-AGENT: an individual's agent", "POST", "/v1/devices/OTP/000111222333/loss-reports", "", `{"channel":"BRANCH","actor":{"role":"AGENT"},"staff":"S100","reason":"LOST","documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"]}`, 409, "rule_violation", "", "R-AGENT"},
		{"R-HW-RESET-CHANNEL: HTS", "POST", "/v1/devices/OTP/000111222333/errors/reset", "", `{"channel":"HTS","actor":{"role":"SELF"}}`, 409, "rule_violation", "", "R-HW-RESET-CHANNEL"},
		{"centre time far ahead of the clock", "POST", "/v1/devices/OTP/000111222333/registrations", "", `{"channel":"CENTER","institution":"KB002","actor":{"role":"SYSTEM"},"occurred_at":"2030-01-01T00:00:00Z"}`, 400, "invalid_argument", "occurred_at", ""},
		{"centre time in year 0", "POST", "/v1/devices/OTP/000111222333/registrations", "", `{"channel":"CENTER","institution":"KB002","actor":{"role":"SYSTEM"},"occurred_at":"0000-01-01T00:00:00+09:00"}`, 400, "invalid_argument", "occurred_at", ""},
		{"centre time before the horizon", "POST", "/v1/devices/OTP/000111222333/registrations", "", `{"channel":"CENTER","institution":"KB002","actor":{"role":"SYSTEM"},"occurred_at":"1999-12-31T00:00:00Z"}`, 400, "invalid_argument", "occurred_at", ""},
		{"duplicate key", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":"BRANCH","channel":"AUTH","actor":{"role":"SYSTEM"}}`, 400, "invalid_argument", "channel", ""},
		{"duplicate nested key", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":"AUTH","actor":{"role":"SYSTEM","role":"SELF"}}`, 400, "invalid_argument", "actor.role", ""},
		{"keys differing in case (the decoder takes the last)", "POST", "/v1/devices/OTP/000111222333/errors", "", `{"channel":"AUTH","Channel":"BRANCH","actor":{"role":"SYSTEM"}}`, 400, "invalid_argument", "", ""},
		{"a profile's type twice, in two cases", "PUT", "/v1/customers/C0003", "", `{` + branchSelf + `,"type":"INDIVIDUAL","TYPE":"CORPORATE","residency":"DOMESTIC","real_name_number":"` + realName + `"}`, 400, "invalid_argument", "", ""},
		{"a real-name number as a field name", "POST", "/v1/devices/OTP/000111222333/errors", "", `{` + authCh + `,"900101-1234567":true}`, 400, "invalid_argument", "", ""},
		{"bad customer number in a query", "GET", "/v1/customers/c-1/devices", "", ``, 400, "invalid_argument", "customer_no", ""},
		{"bad serial in a query", "GET", "/v1/devices/OTP/12/errors", "", ``, 400, "invalid_argument", "serial", ""},
		{"bad institution in a query", "GET", "/v1/institutions/kb/devices", "", ``, 400, "invalid_argument", "code", ""},
		{"limit on a list without pages", "GET", "/v1/customers/C0001/devices?limit=-1", "", ``, 400, "invalid_argument", "limit", ""},
		{"limit that is no number", "GET", "/v1/customers/C0001/media?limit=ten", "", ``, 400, "invalid_argument", "limit", ""},
		{"wrong method on a known path", "DELETE", "/v1/devices/OTP/000111222333", "", ``, 405, "method_not_allowed", "", ""},
		{"dot-dot in the path", "GET", "/v1/devices/OTP/../000111222333", "", ``, 400, "invalid_argument", "path", ""},
		{"double slash in the path", "GET", "/v1//devices/OTP/000111222333", "", ``, 400, "invalid_argument", "path", ""},
		{"R-APPROVAL: not awaiting approval", "POST", "/v1/events/6f1c4bde-51a4-4c59-9c53-1f3d2c0f7a10/approval", "", `{"approver":"M200"}`, 409, "rule_violation", "", "R-APPROVAL"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		before, _ := a.j.LastSequence(ctx)
		ctype := tc.ctype
		if ctype == "" && tc.method != "GET" {
			ctype = "application/json"
		}
		status, body := a.do(t, tc.method, tc.path, ctype, tc.body)
		var got struct{ Error apiError }
		_ = json.Unmarshal([]byte(body), &got)
		if status != tc.status || got.Error.Code != tc.code || got.Error.Field != tc.field || got.Error.Rule != tc.rule {
			t.Errorf("%s: got %d %s", tc.name, status, body)
		}
		for _, secret := range []string{"1234567", "5551234", "67890"} {
			if strings.Contains(body, secret) {
				t.Errorf("%s: answer echoes personal data: %s", tc.name, body)
			}
		}
		if after, _ := a.j.LastSequence(ctx); after != before {
			t.Errorf("%s: the stream grew from %d to %d", tc.name, before, after)
		}
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	req, _ := http.NewRequest("PUT", a.url+"/v1/devices/OTP/000111222333/errors", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT on the error count: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestIdempotencyComparesCommands: the same key with the same command in
// another layout (spaces, key order) is the same command; another command
// under the key is refused with 422; the first answer comes back after 70
// other keyed commands on the same device, and nothing is appended again.
func TestIdempotencyComparesCommands(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	const path = "/v1/devices/OTP/000111222333/registrations"
	send := func(body, key string) (int, string) {
		return a.do(t, "POST", path, "application/json", body, "Idempotency-Key", key)
	}
	s1, first := send(`{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`, "k-1")
	s2, again := send(`{ "actor": {"id":"CENTER", "role":"SYSTEM"},  "institution":"KB001", "channel":"CENTER" }`, "k-1")
	if s1 != 201 || s2 != 201 || first != again {
		t.Fatalf("same command, other layout: %d %s / %d %s", s1, first, s2, again)
	}
	status, body := send(`{"channel":"CENTER","institution":"KB002","actor":{"role":"SYSTEM","id":"CENTER"}}`, "k-1")
	if status != 422 || !strings.Contains(body, `"code":"idempotency_mismatch"`) {
		t.Fatalf("another command under a used key: %d %s", status, body)
	}
	for i := range 70 { // errors, and a reset through the centre before the lock: 70 keyed answers
		path, body := "/v1/devices/OTP/000111222333/errors", `{`+authCh+`}`
		if i%9 == 8 {
			path, body = path+"/reset", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`
		}
		if status, out := a.do(t, "POST", path, "application/json", body, "Idempotency-Key", fmt.Sprintf("other-%d", i)); status != 201 {
			t.Fatalf("command %d: %d %s", i, status, out)
		}
	}
	before, _ := a.j.LastSequence(ctx)
	if status, late := send(`{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`, "k-1"); status != 201 || late != first {
		t.Fatalf("the first key after 70 other commands: %d %s, want %s", status, late, first)
	}
	if status, _ := send(`{"channel":"CENTER","institution":"KB003","actor":{"role":"SYSTEM","id":"CENTER"}}`, "k-1"); status != 422 {
		t.Fatalf("another command under the first key after 70 others: %d", status)
	}
	if after, _ := a.j.LastSequence(ctx); after != before {
		t.Fatalf("replays appended %d messages", after-before)
	}
}

// TestIdempotencyKeyAcrossRoutesAndPrincipals (api.md, Idempotency-Key): a
// key is the principal's and names one command on one aggregate whichever
// route brings it: an increment's key sent again with a reset of the same
// device is refused (422) and appends nothing; another principal's same key
// is its own command; the key on another device is another command.
func TestIdempotencyKeyAcrossRoutesAndPrincipals(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	token, _, err := a.keys.Create(ctx, events.Principal{ID: "test", Role: events.RoleAdmin, Method: events.MethodBootstrap},
		access.NewKey{ID: "BOTH", Role: events.RoleProducer, Channels: []events.Channel{events.ChannelAuth, events.ChannelCenter}})
	if err != nil {
		t.Fatal(err)
	}
	const dev, other = "/v1/devices/OTP/000111222333", "/v1/devices/OTP/000111222444"
	register := `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`
	a.must(t, "POST", dev+"/registrations", register)
	a.must(t, "POST", other+"/registrations", register)
	both := func(path, body, key string) (int, string) {
		return a.do(t, "POST", path, "application/json", body, "Idempotency-Key", key, "Authorization", "Bearer "+token)
	}
	increment := `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"BOTH"}}`
	if status, out := both(dev+"/errors", increment, "k-7"); status != 201 {
		t.Fatalf("increment: %d %s", status, out)
	}
	before, _ := a.j.LastSequence(ctx)
	status, out := both(dev+"/errors/reset", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"BOTH"}}`, "k-7")
	if status != 422 || !strings.Contains(out, `"code":"idempotency_mismatch"`) {
		t.Fatalf("a reset under the increment's key: %d %s, want 422", status, out)
	}
	if after, _ := a.j.LastSequence(ctx); after != before {
		t.Fatalf("the refused reset appended %d messages", after-before)
	}
	status, mine := both(dev+"/errors", increment, "k-8")
	theirs, out := a.do(t, "POST", dev+"/errors", "application/json", `{`+authCh+`}`, "Idempotency-Key", "k-8")
	if status != 201 || theirs != 201 || out == mine {
		t.Fatalf("two principals' same key: %d %s / %d %s, want two commands", status, mine, theirs, out)
	}
	status, there := both(other+"/errors", increment, "k-8")
	if status != 201 || there == mine {
		t.Fatalf("the key on another device: %d %s, want another command (first %s)", status, there, mine)
	}
}

func TestIdempotencyKeyAndReadYourWrites(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	body := `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`
	send := func() (int, string) {
		return a.do(t, "POST", "/v1/devices/OTP/000111222333/registrations", "application/json", body, "Idempotency-Key", "producer-7:reg-1")
	}
	base, _ := a.j.LastSequence(context.Background()) // the test keys
	s1, b1 := send()
	s2, b2 := send()
	if s1 != 201 || s2 != 201 || b1 != b2 {
		t.Fatalf("same key twice: %d %s / %d %s", s1, b1, s2, b2)
	}
	if last, _ := a.j.LastSequence(context.Background()); last != base+1 {
		t.Fatalf("stream holds %d messages after the keys, want 1", last-base)
	}
	// The answer waits for the write, or says it could not within the
	// server's bound (2 s: only a loaded machine); then the settled views
	// hold it.
	path, asked := fmt.Sprintf("/v1/devices/OTP/000111222333/institutions?min_sequence=%d", base+1), time.Now()
	status, out := a.do(t, "GET", path, "", "")
	if status != 200 || !strings.Contains(out, fmt.Sprintf(`"as_of_sequence":%d`, base+1)) && time.Since(asked) < 2*time.Second {
		t.Fatalf("read your writes: %d %s", status, out)
	}
	a.settle(t)
	if status, out := a.do(t, "GET", path, "", ""); status != 200 || !strings.Contains(out, fmt.Sprintf(`"as_of_sequence":%d`, base+1)) || !strings.Contains(out, "KB001") {
		t.Fatalf("read your writes: %d %s", status, out)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, out := a.do(t, "GET", path, "", ""); status != 200 {
			t.Errorf("%s: %d %s", path, status, out)
		}
	}
	if _, out := a.do(t, "GET", "/metrics", "", ""); !strings.Contains(out, `otpledger_http_requests_total{route="POST /v1/devices/{vendor}/{serial}/registrations",status="201"} 2`) ||
		!strings.Contains(out, "otpledger_projection_lag 0") {
		t.Errorf("metrics: %s", out)
	}
}

// TestReadinessNamesTheProjector: a replica over shared views says on
// /readyz and in its metrics whether it projects or stands by; both are
// ready. Without a lease (views of its own) neither appears.
func TestReadinessNamesTheProjector(t *testing.T) {
	t.Parallel()
	var held atomic.Bool
	a := newTestAPI(t, func(c *Config) { c.Projecting = held.Load })
	for _, leader := range []bool{false, true} {
		held.Store(leader)
		want := map[bool]string{false: `"projector":"standing by"`, true: `"projector":"projecting"`}[leader]
		if status, out := a.do(t, "GET", "/readyz", "", ""); status != 200 || !strings.Contains(out, want) {
			t.Errorf("readyz with the lease %v: %d %s", leader, status, out)
		}
		metric := map[bool]string{false: "otpledger_projector_leader 0", true: "otpledger_projector_leader 1"}[leader]
		if _, out := a.do(t, "GET", "/metrics", "", ""); !strings.Contains(out, metric) {
			t.Errorf("metrics with the lease %v lack %q", leader, metric)
		}
	}
	if _, out := newTestAPI(t).do(t, "GET", "/readyz", "", ""); strings.Contains(out, "projector") {
		t.Errorf("readyz of a replica with views of its own: %s", out)
	}
}

// TestReadinessNeedsAConsumingProjector (issue 26, finding 4): a replica
// whose projector cannot consume (its consumer taken, NATS unreachable) is
// not ready, however small the views' lag: they no longer move.
func TestReadinessNeedsAConsumingProjector(t *testing.T) {
	t.Parallel()
	var consuming atomic.Bool
	a := newTestAPI(t, func(c *Config) { c.Consuming = consuming.Load })
	if status, out := a.do(t, "GET", "/readyz", "", ""); status != 503 || !strings.Contains(out, `"projection":"not consuming"`) {
		t.Errorf("readyz while the projector cannot consume: %d %s", status, out)
	}
	consuming.Store(true)
	if status, out := a.do(t, "GET", "/readyz", "", ""); status != 200 || !strings.Contains(out, `"projection":"current"`) {
		t.Errorf("readyz with the projector consuming: %d %s", status, out)
	}
}

// TestMetricsSayWhatOperatorsWatch: refusals by rule, the build, the Go
// runtime and the process, the views' lag in seconds, the checkpoint's age.
func TestMetricsSayWhatOperatorsWatch(t *testing.T) {
	t.Parallel()
	behind := projections.NewMemory() // no projector: the lag grows with the first message's age
	a := newTestAPI(t, func(c *Config) {
		c.Views, c.MaxReadyLag = behind, 1<<40
		c.Build = BuildInfo{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26"}
	})
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
	for range 2 {
		status, body := a.do(t, "POST", "/v1/devices/OTP/000111222333/registrations", "application/json",
			`{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
		if status != 409 || !strings.Contains(body, `"message_ko":"`+aggregates.RuleHWOnePerInstitution.Text().Ko+`"`) {
			t.Fatalf("a second registration at KB001 (the refusal in Korean too): %d %s", status, body)
		}
	}
	time.Sleep(1100 * time.Millisecond)
	_, out := a.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{`otpledger_refusals_total{rule="R-HW-ONE-PER-INSTITUTION"} 2`,
		`otpledger_build_info{goversion="go1.26",revision="abc123",version="v1.2.3"} 1`,
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "otpledger_checkpoint_age_seconds -1"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var lagSeconds float64
	if _, err := fmt.Sscanf(out[strings.Index(out, "\notpledger_projection_lag_seconds ")+1:], "otpledger_projection_lag_seconds %g", &lagSeconds); err != nil || lagSeconds < 1 {
		t.Errorf("projection lag in seconds %v (%v), want over 1 s: the views never applied the first message", lagSeconds, err)
	}
}

// TestReadinessBoundsTheLag: /readyz and the metric report how far the
// views are behind the journal; beyond MaxReadyLag they are "catching up"
// (still ready: load alone makes a lag) until their position has not moved
// for StallAfter — then "stalled", and 503.
func TestReadinessBoundsTheLag(t *testing.T) {
	t.Parallel()
	for _, bound := range []uint64{1, 1 << 40} {
		behind := projections.NewMemory() // no projector feeds it: its lag is the journal's last sequence
		a := newTestAPI(t, func(c *Config) { c.Views, c.MaxReadyLag, c.StallAfter = behind, bound, 300*time.Millisecond })
		a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
		last, err := a.j.LastSequence(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		lag := fmt.Sprintf(`"projection_lag":%d`, last)
		first := map[bool]string{true: `"projection":"catching up"`, false: `"projection":"current"`}[last > bound]
		if status, out := a.do(t, "GET", "/readyz", "", ""); status != 200 || !strings.Contains(out, lag) || !strings.Contains(out, first) {
			t.Errorf("readyz %d messages behind, bound %d: %d %s, want 200 and %s", last, bound, status, out, first)
		}
		time.Sleep(400 * time.Millisecond) // the position does not move
		want, then := map[bool]int{true: 503, false: 200}[last > bound], map[bool]string{true: `"projection":"stalled"`, false: `"projection":"current"`}[last > bound]
		if status, out := a.do(t, "GET", "/readyz", "", ""); status != want || !strings.Contains(out, then) {
			t.Errorf("readyz behind and unmoved for longer than StallAfter, bound %d: %d %s, want %d and %s", bound, status, out, want, then)
		}
		if _, out := a.do(t, "GET", "/metrics", "", ""); !strings.Contains(out, fmt.Sprintf("otpledger_projection_lag %d\n", last)) {
			t.Errorf("metrics lack the lag of %d", last)
		}
	}
}

// TestJournalDown: with the journal unreachable a command answers 503 and
// appends nothing, and readiness says so.
func TestJournalDown(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
	a.nc.Close()
	status, body := a.do(t, "POST", "/v1/devices/OTP/000111222333/errors", "application/json", `{`+authCh+`}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"unavailable"`) {
		t.Fatalf("command with the journal down: %d %s", status, body)
	}
	if status, body := a.do(t, "GET", "/readyz", "", ""); status != http.StatusServiceUnavailable || !strings.Contains(body, `"journal":"unreachable"`) {
		t.Fatalf("readiness with the journal down: %d %s", status, body)
	}
}

// TestAuditScreen: GET /v1/audit names the last signed checkpoint, this
// serve's last verification (none until one runs) and the quarantined
// messages; POST /v1/audit/verifications runs one over the whole stream —
// it finds the poison message — and appends nothing.
func TestAuditScreen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	a := newTestAPI(t, func(c *Config) {
		c.Verifier = consumers.NewVerifier(ctx, c.Journal, key.Public().(ed25519.PublicKey))
	})
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
	journaltest.Inject(t, a.nc, "otpledger.device.OTP.POISON0001", []byte(`{"events":[`))
	if ok, err := consumers.AppendCheckpoint(ctx, a.j, key); err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	last := a.settle(t)
	type state struct {
		Checkpoint *struct {
			StoredAt uint64 `json:"stored_at"`
			KeyID    string `json:"key_id"`
		}
		Verification *consumers.Verification
		Quarantine   struct {
			Count int
			Items []projections.Quarantined
		}
	}
	read := func(want int, method, who string) state {
		t.Helper()
		path := map[string]string{"GET": "/v1/audit", "POST": "/v1/audit/verifications"}[method]
		status, out := a.do(t, method, path, "", "", "Authorization", "Bearer "+a.tokens[who])
		var st state
		if err := json.Unmarshal([]byte(out), &st); status != want || err != nil {
			t.Fatalf("audit: %d %s (%v)", status, out, err)
		}
		return st
	}
	st := read(200, "GET", "AUD1")
	if st.Checkpoint == nil || st.Checkpoint.StoredAt != last || st.Checkpoint.KeyID != consumers.KeyID(key.Public().(ed25519.PublicKey)) {
		t.Errorf("checkpoint: %+v, want one stored at %d", st.Checkpoint, last)
	}
	if st.Verification != nil || st.Quarantine.Count != 1 || st.Quarantine.Items[0].Seq != last-1 {
		t.Errorf("before a verification: %+v", st)
	}
	st = read(202, "POST", "OPS1")
	for deadline := time.Now().Add(time.Minute); st.Verification == nil || st.Verification.Finished.IsZero(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the verification never finished: %+v", st.Verification)
		}
		st = read(200, "GET", "OPS1")
	}
	rep := st.Verification.Report
	if rep.Messages != last || rep.Checkpoints != 1 || len(rep.Findings) != 1 || rep.Findings[0].Kind != consumers.FindingUndecodable ||
		rep.Findings[0].Seq != last-1 || st.Verification.Error != "" {
		t.Errorf("verification: %+v", st.Verification)
	}
	if now, _ := a.j.LastSequence(ctx); now != last {
		t.Errorf("a verification appended: the stream's last sequence %d, was %d", now, last)
	}
}
