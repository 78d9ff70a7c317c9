package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access"
)

// roleKeys are the test principals that stand for each role in the matrix.
var roleKeys = map[events.PrincipalRole]string{
	events.RoleTeller: "S100", events.RoleManager: "M200", events.RoleProducer: "FRONT",
	events.RoleAuditor: "AUD1", events.RoleOperator: "OPS1", events.RoleAdmin: "ADM1",
}

// matrixRequest fills a route's pattern with codes and gives it a body a
// principal of role may send (a teller in branch, a producer online).
func matrixRequest(pattern string, role events.PrincipalRole) (method, path, body string) {
	method, path, _ = strings.Cut(pattern, " ")
	inst := "KB001"
	if role == events.RoleTeller || role == events.RoleManager {
		inst = "IBKS" // a branch acts for its home institution, in a path as in a body
	}
	path = strings.NewReplacer("{vendor}", "OTP", "{serial}", "000111222333", "{institution}", inst, "{customer_no}", "C0001",
		"{event_id}", "6f1c4bde-51a4-4c59-9c53-1f3d2c0f7a10", "{code}", "KB001", "{id}", "NOPE").Replace(path)
	if method == http.MethodGet {
		return method, path, ""
	}
	switch role {
	case events.RoleTeller, events.RoleManager:
		body = `{"channel":"BRANCH","actor":{"role":"SELF"}}`
	default:
		body = `{"channel":"MTS","actor":{"role":"SELF"}}`
	}
	if strings.HasSuffix(path, "/approval") || strings.HasPrefix(path, "/v1/keys") {
		body = `{}`
	}
	return method, path, body
}

// TestAccessMatrix sends every route as every role, and with no token, a
// revoked token, an expired token and a token of an unknown issuer: a
// granted role is never refused by identity (401/403), every other role is
// 403, and the bad credentials are 401 with WWW-Authenticate.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	ctx := context.Background()
	admin := events.Principal{ID: "ADM1", Role: events.RoleAdmin, Method: events.MethodAPIKey}
	revoked, _, err := a.keys.Create(ctx, admin, access.NewKey{ID: "GONE", Role: events.RoleTeller})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.Revoke(ctx, admin, "GONE"); err != nil {
		t.Fatal(err)
	}
	expiring := time.Now().Add(time.Second)
	expired, _, err := a.keys.Create(ctx, admin, access.NewKey{ID: "OLD", Role: events.RoleTeller, ExpiresAt: &expiring})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expiring) + 10*time.Millisecond)
	badCredentials := map[string]string{
		"no token":       "",
		"revoked token":  "Bearer " + revoked,
		"expired token":  "Bearer " + expired,
		"unknown issuer": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSIsInN1YiI6IlMxMDAifQ.c2ln",
		"not bearer":     "Basic YWRtaW46YWRtaW4=",
	}
	cells := 0
	for _, pattern := range slices.Sorted(func(yield func(string) bool) {
		for p := range grants {
			if !yield(p) {
				return
			}
		}
	}) {
		g := grants[pattern]
		for _, role := range events.PrincipalRoles {
			method, path, body := matrixRequest(pattern, role)
			status, out := a.do(t, method, path, contentType(body), body, "Authorization", "Bearer "+a.tokens[roleKeys[role]])
			allowed := g.public || slices.Contains(g.roles, role)
			if allowed && (status == 401 || status == 403) || !allowed && status != 403 {
				t.Errorf("%s as %s: %d %s (allowed %v)", pattern, role, status, out, allowed)
			}
			cells++
		}
		for name, header := range badCredentials {
			method, path, body := matrixRequest(pattern, events.RoleTeller)
			status, out := a.do(t, method, path, contentType(body), body, "Authorization", header)
			if g.public && status != 200 || !g.public && status != 401 {
				t.Errorf("%s with %s: %d %s", pattern, name, status, out)
			}
			cells++
		}
	}
	t.Logf("%d cells", cells)
}

func contentType(body string) string {
	if body == "" {
		return ""
	}
	return "application/json"
}

// accessTable renders grants as the README shows them.
func accessTable() string {
	var b strings.Builder
	b.WriteString("| route |")
	for _, r := range events.PrincipalRoles {
		fmt.Fprintf(&b, " %s |", r)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(events.PrincipalRoles)) + "\n")
	for _, pattern := range slices.Sorted(func(yield func(string) bool) {
		for p := range grants {
			if !yield(p) {
				return
			}
		}
	}) {
		g := grants[pattern]
		fmt.Fprintf(&b, "| `%s` |", pattern)
		for _, r := range events.PrincipalRoles {
			mark := " |"
			switch {
			case g.public:
				mark = " anyone |"
			case slices.Contains(g.roles, r):
				mark = " ✓ |"
			}
			b.WriteString(mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestREADMEShowsTheAccessTable: the README's table is the one the guard
// enforces.
func TestREADMEShowsTheAccessTable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := accessTable(); !strings.Contains(string(readme), want) {
		t.Fatalf("README.md must show the access table as the code grants it:\n%s", want)
	}
}

// TestGrantsFollowAPIMD checks the grant table against api.md's sentences,
// independently of the guard: auditors, operators and admins append
// nothing; only managers approve; only admins manage keys; only health and
// readiness are public.
func TestGrantsFollowAPIMD(t *testing.T) {
	t.Parallel()
	for pattern, g := range grants {
		method, path, _ := strings.Cut(pattern, " ")
		// Key changes are the admin's; a verification reads (TestAuditScreen).
		appends := method != http.MethodGet && !strings.HasPrefix(path, "/v1/keys") && path != "/v1/audit/verifications"
		switch {
		case g.public != (path == "/healthz" || path == "/readyz"):
			t.Errorf("%s: public %v", pattern, g.public)
		case appends && slices.ContainsFunc(g.roles, func(r events.PrincipalRole) bool {
			return r == events.RoleAuditor || r == events.RoleOperator || r == events.RoleAdmin
		}):
			t.Errorf("%s appends, yet grants %v", pattern, g.roles)
		case strings.HasSuffix(path, "/approval") && !slices.Equal(g.roles, []events.PrincipalRole{events.RoleManager}):
			t.Errorf("%s: only managers approve, grants %v", pattern, g.roles)
		case strings.HasPrefix(path, "/v1/keys") != slices.Equal(g.roles, []events.PrincipalRole{events.RoleAdmin}):
			t.Errorf("%s: keys are the admin's and the admin's only: %v", pattern, g.roles)
		case method == http.MethodGet && strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/v1/keys") &&
			slices.Contains(g.roles, events.RoleProducer):
			t.Errorf("%s: a producer reads no views", pattern)
		}
	}
}

// TestAttacksRefused replays, as regression tests, what an attacker did
// before identity: each is refused with 401 or 403 and appends nothing.
func TestAttacksRefused(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "PUT", "/v1/customers/C0002", `{`+branchSelf+`,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"`+realName+`"}`)
	a.must(t, "POST", "/v1/customers/C0002/mobile-otp", `{`+mts+`,"phone_id":"`+phoneID+`","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`)
	_, out := a.do(t, "POST", "/v1/devices/OTP/000111222444/registrations", "application/json", `{`+branchSelf+`,"customer_no":"C0003"}`)
	var reg struct{ Events []struct{ ID string } }
	_ = json.Unmarshal([]byte(out), &reg)
	if len(reg.Events) == 0 {
		t.Fatalf("branch registration: %s", out)
	}
	takeover := `{"channel":"MTS","actor":{"role":"SELF"},"phone_id":"ATTACKER-0001","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`
	for _, tc := range []struct {
		name, principal, method, path, body string
		status                              int
	}{
		{"mobile OTP takeover without credentials", "", "POST", "/v1/customers/C0002/mobile-otp", takeover, 401},
		{"mobile OTP takeover by the authentication service", "AUTH", "POST", "/v1/customers/C0002/mobile-otp", takeover, 403},
		{"mobile OTP takeover by a teller", "S100", "POST", "/v1/customers/C0002/mobile-otp", takeover, 403},
		{"approval under another manager's name", "M200", "POST", "/v1/events/" + reg.Events[0].ID + "/approval", `{"approver":"M300"}`, 403},
		{"approval by a teller", "S100", "POST", "/v1/events/" + reg.Events[0].ID + "/approval", `{}`, 403},
		{"approval without credentials", "", "POST", "/v1/events/" + reg.Events[0].ID + "/approval", `{"approver":"M300"}`, 401},
		{"cancel claiming CENTER, as a teller", "S100", "POST", "/v1/devices/OTP/000111222333/registrations/KB001/cancel", `{"channel":"CENTER","actor":{"role":"SYSTEM","id":"CENTER"}}`, 403},
		{"cancel claiming CENTER, as a front end", "FRONT", "POST", "/v1/devices/OTP/000111222333/registrations/KB001/cancel", `{"channel":"CENTER","actor":{"role":"SYSTEM","id":"CENTER"}}`, 403},
		{"lock by AUTH posts from a front end", "FRONT", "POST", "/v1/devices/OTP/000111222333/errors", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}}`, 403},
		{"AUTH posts under another producer's name", "CENTER", "POST", "/v1/devices/OTP/000111222333/errors", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}}`, 403},
		{"the centre acting as another SYSTEM", "CENTER", "POST", "/v1/devices/OTP/000111222333/errors/reset", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"AUTH"}}`, 403},
		{"reset claiming CENTER without credentials", "", "POST", "/v1/devices/OTP/000111222333/errors/reset", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`, 401},
		{"profile rewrite without credentials", "", "PUT", "/v1/customers/C0002", `{` + branchSelf + `,"type":"CORPORATE","residency":"DOMESTIC","real_name_number":"` + realName + `"}`, 401},
		{"profile rewrite by an auditor", "AUD1", "PUT", "/v1/customers/C0002", `{` + branchSelf + `,"type":"CORPORATE","residency":"DOMESTIC","real_name_number":"` + realName + `"}`, 403},
		{"profile rewrite under another teller's name", "S100", "PUT", "/v1/customers/C0002", `{"channel":"BRANCH","actor":{"role":"SELF"},"staff":"S999","documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"type":"CORPORATE","residency":"DOMESTIC","real_name_number":"` + realName + `"}`, 403},
		{"a teller for another institution", "S100", "POST", "/v1/devices/OTP/000111222333/loss-reports", `{"channel":"BRANCH","institution":"KB001","actor":{"role":"SELF"},"reason":"LOST"}`, 403},
		{"a teller cancelling for another institution named in the path", "S100", "POST", "/v1/devices/OTP/000111222333/registrations/KB001/cancel", `{"channel":"BRANCH","actor":{"role":"SELF"},"reason":"OTHER"}`, 403},
		{"a manager recovering for another institution named in the path", "M200", "POST", "/v1/devices/OTP/000111222333/loss-reports/KB001/recover", `{"channel":"BRANCH","actor":{"role":"SELF"}}`, 403},
		{"a key made by a teller", "S100", "POST", "/v1/keys", `{"id":"EVIL","role":"admin"}`, 403},
		{"real-name look-up by a producer", "FRONT", "GET", "/v1/customers?real_name_number=" + realName, ``, 403},
		{"real-name look-up without credentials", "", "GET", "/v1/customers?real_name_number=" + realName, ``, 401},
	} {
		before, _ := a.j.LastSequence(context.Background())
		header := ""
		if tc.principal != "" {
			header = "Bearer " + a.tokens[tc.principal]
		}
		status, out := a.do(t, tc.method, tc.path, contentType(tc.body), tc.body, "Authorization", header)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, out, tc.status)
		}
		if after, _ := a.j.LastSequence(context.Background()); after != before {
			t.Errorf("%s: appended %d messages", tc.name, after-before)
		}
		if strings.Contains(out, "1234567") {
			t.Errorf("%s: echoes personal data", tc.name)
		}
	}
}

// TestLookupsAreRateLimited: a principal's personal-data look-ups stop at
// the configured rate (429 with Retry-After), far below enumeration speed;
// other principals are not affected.
func TestLookupsAreRateLimited(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	limited, start := 0, time.Now()
	for i := range 40 {
		status, _ := a.do(t, "GET", fmt.Sprintf("/v1/customers?account_no=%011d", i), "", "")
		if status == http.StatusTooManyRequests {
			limited++
		}
	}
	// 30 a minute: a burst of 5, then one every 2 s.
	if allowed, most := 40-limited, 5+int(time.Since(start).Seconds()/2)+1; allowed > most {
		t.Fatalf("%d of 40 look-ups allowed in %v at 30 a minute (at most %d)", allowed, time.Since(start), most)
	}
	status, out := a.do(t, "GET", "/v1/customers?account_no=12345678901", "", "", "Authorization", "Bearer "+a.tokens["AUD1"])
	if status != 200 {
		t.Fatalf("another principal: %d %s", status, out)
	}
	req, _ := http.NewRequest("GET", a.url+"/v1/customers?account_no=12345678901", nil)
	req.Header.Set("Authorization", "Bearer "+a.tokens["S100"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestMakerChecker: the staff of a branch event and its approver are the
// authenticated principals, so R-APPROVAL holds against a real identity;
// every event records its principal, and the history shows it.
func TestMakerChecker(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	send := func(principal, method, path, body string) (int, string) {
		return a.do(t, method, path, contentType(body), body, "Authorization", "Bearer "+a.tokens[principal])
	}
	status, out := send("M300", "POST", "/v1/devices/OTP/000111222333/registrations", `{`+branchSelf+`,"customer_no":"C0001"}`)
	if status != 403 { // branchSelf names staff S100: not the manager
		t.Fatalf("a manager naming another staff: %d %s", status, out)
	}
	status, out = send("M300", "POST", "/v1/devices/OTP/000111222333/registrations",
		`{"channel":"BRANCH","actor":{"role":"SELF"},"documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"customer_no":"C0001"}`)
	var reg struct {
		Events []struct {
			ID       string
			Sequence uint64
		}
	}
	if json.Unmarshal([]byte(out), &reg) != nil || status != 201 {
		t.Fatalf("branch registration by a manager: %d %s", status, out)
	}
	a.settle(t) // the approval reads the pending item from the views
	if status, out = send("M300", "POST", "/v1/events/"+reg.Events[0].ID+"/approval", `{}`); status != 409 || !strings.Contains(out, "R-APPROVAL") {
		t.Fatalf("approving one's own event: %d %s", status, out)
	}
	if status, out = send("M200", "POST", "/v1/events/"+reg.Events[0].ID+"/approval", `{}`); status != 201 {
		t.Fatalf("approval by another manager: %d %s", status, out)
	}
	a.settle(t)
	_, out = send("AUD1", "GET", "/v1/devices/OTP/000111222333/history", "")
	for _, want := range []string{`"staff":"M300"`, `"approval":{"approver":"M200"`, `"principal":{"id":"M300","role":"manager","method":"api_key"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %s: %s", want, out)
		}
	}
}

// TestLookupsAreLogged: each personal-data look-up is recorded in the
// journal under its principal (who, when, which customers were found),
// never with the number looked up; a refused look-up records nothing.
func TestLookupsAreLogged(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "PUT", "/v1/customers/C0007", `{`+branchSelf+`,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"`+realName+`","accounts":["12345678901"]}`)
	a.settle(t) // the projector runs beside the API: a look-up may come before it
	for _, q := range []string{"real_name_number=" + realName, "account_no=12345678901", "account_no=99999999999"} {
		if status, out := a.do(t, "GET", "/v1/customers?"+q, "", "", "Authorization", "Bearer "+a.tokens["AUD1"]); status != 200 {
			t.Fatalf("look-up: %d %s", status, out)
		}
	}
	if status, _ := a.do(t, "GET", "/v1/customers?account_no=12", "", "", "Authorization", "Bearer "+a.tokens["AUD1"]); status != 400 {
		t.Fatalf("malformed look-up: %d", status)
	}
	var got []string
	for e, err := range a.j.Read(context.Background(), events.LookupRef("AUD1"), 0) {
		if err != nil {
			t.Fatal(err)
		}
		data, _ := events.EncodeCommit(e.Commit)
		if strings.Contains(string(data), "1234567") || strings.Contains(string(data), "12345678901") {
			t.Fatalf("the log holds what was looked up: %s", data)
		}
		for _, ev := range e.Commit.Events {
			p := ev.Payload.(events.LookedUp)
			got = append(got, fmt.Sprintf("%s %s %v", ev.Principal.ID, p.Query, p.Customers))
		}
	}
	want := []string{"AUD1 real_name_number [C0007]", "AUD1 account_no [C0007]", "AUD1 account_no []"}
	if !slices.Equal(got, want) {
		t.Fatalf("look-up log %q, want %q", got, want)
	}
}
