package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/otpledger/otpledger/internal/access/oidctest"
	"github.com/otpledger/otpledger/internal/apitest"
	"github.com/otpledger/otpledger/internal/console"
)

// browser starts headless Chromium (Debian's chromium package; .ci/run
// installs it) and returns a function that opens a new browser — its own
// process, so its own cookies: two of them are two people.
func browser(t *testing.T) func() context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (.ci/run installs it)")
		}
		t.Skip("chromium is missing: apt-get install chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "ko-KR"))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return func() context.Context {
		ctx, cancel := chromedp.NewContext(alloc)
		t.Cleanup(cancel)
		// The browser starts on this first run, on a context without a
		// deadline (a deadline would end the browser); each step has its own.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("start chromium: %v", err)
		}
		return ctx
	}
}

// stepTimeout bounds each browser step (generous: the suite runs beside it
// under -race on two cores).
const stepTimeout = time.Minute

// screens keeps a screenshot of each screen a test visits: written on
// failure (the test logs where), and into OTPLEDGER_SCREENSHOTS when set
// (how docs/console's were made).
type screens struct {
	t   *testing.T
	dir string
}

func newScreens(t *testing.T) *screens {
	s := &screens{t: t, dir: os.Getenv("OTPLEDGER_SCREENSHOTS")}
	keep := s.dir != ""
	if !keep {
		s.dir = t.TempDir()
	}
	t.Cleanup(func() {
		if t.Failed() && !keep {
			kept, _ := os.MkdirTemp("", "otpledger-screens-")
			_ = os.CopyFS(kept, os.DirFS(s.dir))
			t.Logf("screenshots of the screens visited: %s", kept)
		}
	})
	return s
}

func (s *screens) shot(ctx context.Context, name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err == nil {
		err = os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644)
	}
	if err != nil {
		s.t.Errorf("screenshot %s: %v", name, err)
	}
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// driver runs a test's browser steps, each bounded by stepTimeout.
type driver struct {
	t  *testing.T
	sc *screens
}

func (d *driver) do(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		d.sc.shot(ctx, "failed-"+strings.ReplaceAll(what, " ", "-")) // the screen the step was stuck on
		d.t.Fatalf("%s: %v", what, err)
	}
}

// waitText waits until sel's text holds want (a form's answer is a new
// page: the old one's elements may still match for a moment), then scans
// the whole page for personal data, and returns the text.
func (d *driver) waitText(ctx context.Context, sel, want string) string {
	t := d.t
	t.Helper()
	var text string
	for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := chromedp.Run(qctx, chromedp.Text(css(sel)))
		cancel()
		if text = got; err != nil || !strings.Contains(got, want) {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, stepTimeout)
		html, err := chromedp.Run(hctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
		cancel()
		if err != nil {
			t.Fatalf("the page of %s: %v", sel, err)
		}
		scanForPersonalData(t, "a console page", []byte(html))
		return got
	}
	d.sc.shot(ctx, "failed-waiting-for-"+strings.Trim(sel, "#."))
	t.Fatalf("%s says %q, want %q", sel, text, want)
	return ""
}

// TestConsoleInABrowser drives the branch console in headless Chromium: a
// teller signs in, registers a device (2372), reports it lost (2374) and
// sees 2376 show the accident, resets its errors (2375), finds the customer
// by real-name number and opens 2373; the teller cannot approve; a manager in
// a second browser approves the registration; an auditor reads the history
// and cannot submit a form; a forged CSRF token is refused; an idle session
// ends. No page shows personal data in clear.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	newBrowser := browser(t)
	const idle = 20 * time.Second // longer than the teller waits for the others on a loaded machine
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_POLICY_FILE=" + policyFile(t), "OTPLEDGER_NATS_URL=",
		"OTPLEDGER_DATABASE_URL=", "OTPLEDGER_CONSOLE_IDLE_TIMEOUT=" + idle.String(), "OTPLEDGER_CONSOLE_PLAIN_HTTP=true"}
	p := start(t, env...)
	if status, body := p.request(t, walkthrough[0].method, walkthrough[0].path, walkthrough[0].body); status != 201 {
		t.Fatalf("the customer's profile: %d %s", status, body)
	}
	d := &driver{t: t, sc: newScreens(t)}
	sc, do, waitText := d.sc, d.do, d.waitText
	signIn := func(ctx context.Context, who string) {
		t.Helper()
		do(ctx, who+" signs in", chromedp.Navigate(p.url+"/console/login"), chromedp.WaitVisible(css("#signin")))
		sc.shot(ctx, "login")
		do(ctx, who+" signs in", chromedp.SendKeys(css("#key"), p.tokens[who]), chromedp.Click(css("#signin")))
		waitText(ctx, "#who", who)
	}

	teller := newBrowser()
	signIn(teller, "S100")
	device := p.url + "/console/device?vendor=OTP&serial=000333444555"
	do(teller, "2376 of an unknown device", chromedp.Navigate(device), chromedp.WaitVisible(css("#register")))
	sc.shot(teller, "2376-unknown")
	do(teller, "2372 registration", chromedp.SendKeys(css("#reg-customer"), "C0001"), chromedp.SendKeys(css("#reg-code"), "482913"),
		chromedp.Click(css("#register")))
	waitText(teller, ".notice", "등록되었습니다")
	sc.shot(teller, "2372-registered")
	do(teller, "2374 loss report", chromedp.SendKeys(css("#loss-customer"), "C0001"), chromedp.Click(css("#report-loss")))
	waitText(teller, ".notice", "사고신고")
	waitText(teller, "#accident", "IBKS")         // 2376 shows the accident at home
	waitText(teller, "#history", "reported_lost") // its history the report, at once (read-your-writes)
	sc.shot(teller, "2376-in-accident")

	// 2375: the error count reset, in branch.
	do(teller, "2375 reset", chromedp.SendKeys(css("#reset-customer"), "C0001"), chromedp.Click(css("#reset")))
	waitText(teller, ".notice", "초기화")

	// The customer, found by real-name number (posted, never in a URL;
	// shown masked), and 2373 with the device just registered, issued.
	do(teller, "customer search", chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(css("#find")),
		chromedp.SendKeys(css("#real-name"), realNameNumber), chromedp.Click(css("#find")))
	waitText(teller, "#customers", "900101-1******")
	sc.shot(teller, "customer-search")
	if loc, err := chromedp.Run(teller, chromedp.Evaluate[string]("location.href")); err != nil || strings.Contains(loc, "900101") {
		t.Fatalf("the real-name number in the address: %q %v", loc, err)
	}
	do(teller, "2373", chromedp.Click(css("#customers a")))
	waitText(teller, "#media", "000333444555")
	sc.shot(teller, "2373")

	// The teller cannot approve: the API refuses the teller's role.
	do(teller, "a teller approving", chromedp.Navigate(p.url+"/console/approvals"), chromedp.WaitVisible(css(".approve")),
		chromedp.Click(css(".approve")))
	waitText(teller, ".refusal", "처리 불가")

	// A manager, in a browser of their own, approves.
	manager := newBrowser()
	signIn(manager, "M200")
	do(manager, "the approvals queue", chromedp.Navigate(p.url+"/console/approvals"), chromedp.WaitVisible(css(".approve")))
	sc.shot(manager, "approvals")
	do(manager, "the manager approves", chromedp.Click(css(".approve")))
	waitText(manager, ".notice", "승인되었습니다")

	// 2376 as of an instant before the device came: unknown then.
	before := time.Now().Add(-2 * time.Minute).In(time.FixedZone("KST", 9*3600)).Format("2006-01-02T15:04")
	do(manager, "2376 as of an instant", chromedp.Navigate(device+"&as_of="+before))
	waitText(manager, "main", "등록되지 않은 매체")

	// An admin creates a key (its token shown once) and revokes it.
	admin := newBrowser()
	signIn(admin, "ADM1")
	do(admin, "the keys page", chromedp.Navigate(p.url+"/console/keys"), chromedp.WaitVisible(css("#create-key")),
		chromedp.SendKeys(css("#key-id"), "T900"), chromedp.Click(css("#create-key")))
	waitText(admin, "#token", "otpl_")
	do(admin, "revoke a key", chromedp.Click(css(`form[action="/console/keys/T900/revoke"] button`)))
	waitText(admin, ".notice", "폐기")

	// An auditor sees 2376 and its history, and a form they submit is refused.
	auditor := newBrowser()
	signIn(auditor, "AUD1")
	do(auditor, "2376 as an auditor", chromedp.Navigate(device))
	waitText(auditor, "#history", "reported_lost")
	if n, err := chromedp.Run(auditor, chromedp.Evaluate[int](`document.querySelectorAll("form[action^='/console/device/']").length`)); err != nil || n != 0 {
		t.Errorf("an auditor is offered %d transaction forms (%v)", n, err)
	}
	// A form the auditor makes up (with the session's own CSRF token) is refused by the API.
	do(auditor, "a form as an auditor", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.createElement("form"); f.method = "post"; f.action = "/console/device/loss";
		const add = (n, v) => { const i = document.createElement("input"); i.type = "hidden"; i.name = n; i.value = v; f.appendChild(i); };
		add("csrf", document.querySelector("input[name=csrf]").value); add("vendor", "OTP"); add("serial", "000333444555");
		add("customer_no", "C0001"); add("reason", "LOST");
		["REAL_NAME_ID", "PROCESSING_FORM", "SEAL_OR_SIGNATURE"].forEach(d => add("documents", d));
		document.body.appendChild(f); f.submit(); })()`))
	waitText(auditor, ".refusal", "처리 불가")

	// A form whose CSRF token is not the session's is refused. (The teller
	// signs in again: on a loaded machine the others' steps may outlast
	// the idle timeout.)
	signIn(teller, "S100")
	do(teller, "a forged CSRF token", chromedp.Navigate(device), chromedp.WaitVisible(css("#report-loss")),
		chromedp.SetValue(css(`form[action="/console/device/loss"] input[name=csrf]`), "forged"),
		chromedp.Click(css("#report-loss")))
	waitText(teller, ".notice", "CSRF")

	// Unused for longer than the idle timeout, the session is over.
	time.Sleep(idle + time.Second)
	do(teller, "an idle session", chromedp.Navigate(p.url+"/console/"))
	waitText(teller, ".notice", "만료")
}

// TestConsoleSignInAtTheIssuer: where OIDC is configured, an auditor signs
// in at the issuer (the authorization-code flow, in the browser) and lands
// in the console as themselves; the audit screen shows the last signed
// checkpoint, runs a verification of the whole stream on request and lists
// the quarantine; a teller who signed in the same way sees no audit link and
// is refused the screen. At a tablet's width no screen scrolls sideways.
// Neither the client secret nor an ID token reaches the log.
func TestConsoleSignInAtTheIssuer(t *testing.T) {
	t.Parallel()
	newBrowser := browser(t)
	iss := oidctest.New(t)
	iss.Directory["AUD2"], iss.Directory["S300"] = "auditor", "teller"
	secret := filepath.Join(t.TempDir(), "oidc-client-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := start(t, "OTPLEDGER_DATA_DIR="+t.TempDir(), "OTPLEDGER_POLICY_FILE="+policyFile(t), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=",
		"OTPLEDGER_HTTP_ADDR="+addr, "OTPLEDGER_CONSOLE_URL=http://"+addr, "OTPLEDGER_OIDC_ISSUER="+iss.URL,
		"OTPLEDGER_OIDC_AUDIENCE="+oidctest.ClientID, "OTPLEDGER_OIDC_CLIENT_SECRET_FILE="+secret, "OTPLEDGER_CHECKPOINT_INTERVAL=200ms",
		"OTPLEDGER_CONSOLE_PLAIN_HTTP=true")
	if status, body := p.request(t, walkthrough[0].method, walkthrough[0].path, walkthrough[0].body); status != 201 {
		t.Fatalf("the customer's profile: %d %s", status, body)
	}
	d := &driver{t: t, sc: newScreens(t)}
	signIn := func(ctx context.Context, who string) {
		t.Helper()
		d.do(ctx, who+" goes to the issuer", chromedp.Navigate(p.url+"/console/login"), chromedp.Click(css("#oidc-signin")),
			chromedp.WaitVisible(css("#issuer-signin")))
		d.do(ctx, who+" signs in at the issuer", chromedp.SendKeys(css("#user"), who), chromedp.Click(css("#issuer-signin")))
		d.waitText(ctx, "#who", who)
	}
	auditor := newBrowser()
	signIn(auditor, "AUD2")
	d.do(auditor, "the audit screen", chromedp.Click(css("#nav-audit")))
	d.waitText(auditor, "#checkpoint", "1 – ") // the profile, signed within 200 ms
	d.waitText(auditor, "#quarantine", "격리된 메시지가 없습니다")
	d.do(auditor, "a verification", chromedp.Click(css("#verify")))
	d.waitText(auditor, ".notice", "검증을 시작했습니다")
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		d.do(auditor, "the audit screen again", chromedp.Navigate(p.url+"/console/audit"))
		text := d.waitText(auditor, "#verification", "")
		if strings.Contains(text, "이상 없음") {
			break
		}
		if time.Now().After(deadline) || strings.Contains(text, "이상 ") || strings.Contains(text, "중단") {
			t.Fatalf("the verification: %q", text)
		}
	}
	d.sc.shot(auditor, "audit")
	narrow(auditor, t, d, p.url, "/console/audit", "/console/", "/console/approvals", "/console/device?vendor=OTP&serial=000333444555")
	d.sc.shot(auditor, "tablet-2376")

	teller := newBrowser()
	signIn(teller, "S300")
	if n, err := chromedp.Run(teller, chromedp.Evaluate[int](`document.querySelectorAll("#nav-audit").length`)); err != nil || n != 0 {
		t.Errorf("a teller's menu offers the audit screen: %d %v", n, err)
	}
	d.do(teller, "the audit screen as a teller", chromedp.Navigate(p.url+"/console/audit"))
	d.waitText(teller, ".refusal", "처리 불가")
	for _, secretText := range []string{oidctest.ClientSecret, "eyJ"} {
		if strings.Contains(p.log(), secretText) {
			t.Errorf("the log holds a secret (%.8s…)", secretText)
		}
	}
}

// TestConsoleSignInNeedsItsSettings: a client secret without the issuer or
// without the console's address is a configuration error at start (exit 1,
// naming what is missing), never a sign-in button that fails later; the
// message does not hold the secret.
func TestConsoleSignInNeedsItsSettings(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	secret := filepath.Join(t.TempDir(), "oidc-client-secret")
	if err := os.WriteFile(secret, []byte(oidctest.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=", "OTPLEDGER_HTTP_ADDR=127.0.0.1:0",
		"OTPLEDGER_OIDC_CLIENT_SECRET_FILE=" + secret}
	for name, env := range map[string][]string{
		"no issuer":      {"OTPLEDGER_OIDC_ISSUER=", "OTPLEDGER_CONSOLE_URL=http://127.0.0.1:1"},
		"no console URL": {"OTPLEDGER_OIDC_ISSUER=" + iss.URL, "OTPLEDGER_OIDC_AUDIENCE=" + oidctest.ClientID, "OTPLEDGER_CONSOLE_URL="},
	} {
		out, code := runCLI(t, append(slices.Clone(base), env...), "serve")
		if code != 1 || !strings.Contains(out, "OTPLEDGER_CONSOLE_URL") || strings.Contains(out, oidctest.ClientSecret) {
			t.Errorf("%s: exit %d\n%s", name, code, out)
		}
	}
}

// TestConsolePlainHTTPOnlyOnLoopback: the console's cookies go without
// Secure only when asked and serve listens on a loopback address without
// TLS; asked anywhere else, serve refuses to start.
func TestConsolePlainHTTPOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, cert string
		ok         bool
	}{
		{"127.0.0.1:8080", "", true}, {"[::1]:8080", "", true}, {"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false}, {":8080", "", false}, {"10.0.0.5:8080", "", false}, {"otp.example.com:80", "", false},
		{"127.0.0.1:8443", "cert.pem", false},
	} {
		cfg := &config{httpAddr: tc.addr, serveOnly: serveOnly{tlsCert: tc.cert, consolePlainHTTP: true}}
		if err := consolePlainHTTP(cfg); (err == nil) != tc.ok {
			t.Errorf("plain HTTP on %s (TLS %q): %v, want allowed %v", tc.addr, tc.cert, err, tc.ok)
		}
		cfg.consolePlainHTTP = false
		if err := consolePlainHTTP(cfg); err != nil {
			t.Errorf("Secure cookies on %s: %v", tc.addr, err)
		}
	}
}

// TestConsoleTrustedProxies: the trusted proxies are addresses or CIDRs,
// comma-separated; anything else stops serve, named.
func TestConsoleTrustedProxies(t *testing.T) {
	t.Parallel()
	got, err := consoleProxies(" 10.0.0.0/8, 192.0.2.7,,2001:db8::1/32 ")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parsed %v %v, want %v", got, err, want)
	}
	if _, err := consoleProxies("10.0.0.0/8,lb.example.com"); err == nil || !strings.Contains(err.Error(), "lb.example.com") {
		t.Errorf("a host name: %v, want an error naming it", err)
	}
}

// narrow shows each page at a tablet's width (768×1024, portrait) and
// fails when one scrolls sideways: tables scroll inside their own box.
func narrow(ctx context.Context, t *testing.T, d *driver, base string, pages ...string) {
	t.Helper()
	d.do(ctx, "a tablet's width", chromedp.EmulateViewport(768, 1024))
	for _, page := range pages {
		d.do(ctx, "at a tablet's width: "+page, chromedp.Navigate(base+page), chromedp.WaitVisible(css("main")))
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.documentElement.scrollWidth - window.innerWidth"))
		if err != nil || wide > 0 {
			t.Errorf("%s at a tablet's width scrolls sideways by %d px (%v)", page, wide, err)
		}
	}
}

// TestConsoleRoutesFollowTheAPI walks every console route with every role's
// key (and with none): a page or form is accepted exactly when the API
// accepts the call behind it from that principal, and refused with the
// API's status otherwise — the console adds no way around the API's
// authorization. Each route's call and the API's go to twin devices in the
// same state. Without a session every route but the sign-in sends the
// browser to sign in.
func TestConsoleRoutesFollowTheAPI(t *testing.T) {
	t.Parallel()
	p := start(t, "OTPLEDGER_DATA_DIR="+t.TempDir(), "OTPLEDGER_POLICY_FILE="+policyFile(t), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path string, values url.Values, cookie *http.Cookie) (int, string) {
		t.Helper()
		var rd io.Reader
		if method == "POST" {
			rd = strings.NewReader(values.Encode())
		} else if values != nil {
			path += "?" + values.Encode()
		}
		req, _ := http.NewRequest(method, p.url+path, rd)
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const noEvent = "00000000-0000-0000-0000-000000000000"
	for _, route := range console.Routes() {
		method, path, _ := strings.Cut(route, " ")
		path = strings.Replace(path, "{event_id}", noEvent, 1)
		if status, _ := send(method, path, url.Values{}, nil); status != http.StatusSeeOther && !strings.HasSuffix(path, "/login") {
			t.Errorf("%s without a session: %d, want 303 to sign in", route, status)
		}
	}
	// The API call behind each route, for a device and a principal.
	behind := map[string]func(serial, customer, who string) (string, string, string){
		"GET /console/device": func(serial, _, _ string) (string, string, string) { return "GET", "/v1/devices/OTP/" + serial, "" },
		"POST /console/device/register": func(serial, customer, who string) (string, string, string) {
			return "POST", "/v1/devices/OTP/" + serial + "/registrations", fmt.Sprintf(`{"channel":"BRANCH","actor":{"role":"SELF","id":%q},"staff":%q,`+
				`"documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"customer_no":%[1]q}`, customer, who)
		},
		"POST /console/device/loss": func(serial, customer, who string) (string, string, string) {
			return "POST", "/v1/devices/OTP/" + serial + "/loss-reports", fmt.Sprintf(`{"channel":"BRANCH","actor":{"role":"SELF","id":%q},"staff":%q,`+
				`"documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"customer_no":%[1]q,"reason":"LOST"}`, customer, who)
		},
		"POST /console/device/reset": func(serial, customer, who string) (string, string, string) {
			return "POST", "/v1/devices/OTP/" + serial + "/errors/reset", fmt.Sprintf(`{"channel":"BRANCH","actor":{"role":"SELF","id":%q},"staff":%q,`+
				`"documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"customer_no":%[1]q}`, customer, who)
		},
		"POST /console/customers": func(string, string, string) (string, string, string) {
			return "GET", "/v1/customers?account_no=12345678901", ""
		},
		"GET /console/customer": func(_, customer, _ string) (string, string, string) {
			return "GET", "/v1/customers/" + customer + "/media?limit=500", ""
		},
		"POST /console/customer/revoke": func(_, customer, who string) (string, string, string) {
			return "POST", "/v1/customers/" + customer + "/mobile-otp/revoke", fmt.Sprintf(`{"channel":"BRANCH","actor":{"role":"SELF","id":%q},"staff":%q,`+
				`"documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"],"generator_number":"MG00000001"}`, customer, who)
		},
		"GET /console/keys": func(string, string, string) (string, string, string) { return "GET", "/v1/keys", "" },
		"POST /console/keys": func(_, customer, _ string) (string, string, string) {
			return "POST", "/v1/keys", fmt.Sprintf(`{"id":"K%s","role":"teller"}`, customer[1:])
		},
		"POST /console/keys/{id}/revoke": func(_, customer, _ string) (string, string, string) {
			return "POST", "/v1/keys/K" + customer[1:] + "/revoke", "{}"
		},
		"GET /console/approvals": func(string, string, string) (string, string, string) {
			return "GET", "/v1/approvals/pending?limit=500", ""
		},
		"POST /console/approvals/{event_id}": func(string, string, string) (string, string, string) {
			return "POST", "/v1/events/" + noEvent + "/approval", "{}"
		},
		"GET /console/audit":         func(string, string, string) (string, string, string) { return "GET", "/v1/audit", "" },
		"POST /console/audit/verify": func(string, string, string) (string, string, string) { return "POST", "/v1/audit/verifications", "{}" },
	}
	csrfRE := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	for i, key := range apitest.Keys {
		loginPage, err := http.Get(p.url + "/console/login")
		if err != nil || len(loginPage.Cookies()) != 1 {
			t.Fatalf("the login page: %v", err)
		}
		page, _ := io.ReadAll(loginPage.Body)
		loginPage.Body.Close()
		loginToken := csrfRE.FindSubmatch(page)
		if loginToken == nil {
			t.Fatalf("no CSRF token on the login page")
		}
		req, _ := http.NewRequest("POST", p.url+"/console/login", strings.NewReader(url.Values{"key": {p.tokens[key.ID]}, "csrf": {string(loginToken[1])}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(loginPage.Cookies()[0])
		resp, err := noRedirect.Do(req)
		if err != nil || resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Fatalf("%s signs in: %v", key.ID, err)
		}
		cookie := resp.Cookies()[0]
		// Secure by default, though serve itself speaks plain HTTP: as
		// behind a load balancer that terminates TLS.
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || !cookie.Secure {
			t.Errorf("the session cookie: HttpOnly %v, SameSite %v, Secure %v; want HttpOnly, SameSite=Strict, Secure (its value never in a log)",
				cookie.HttpOnly, cookie.SameSite, cookie.Secure)
		}
		_, home := send("GET", "/console/", nil, cookie)
		m := csrfRE.FindStringSubmatch(home)
		if m == nil {
			t.Fatalf("%s: no CSRF token on the home page", key.ID)
		}
		for j, route := range console.Routes() {
			api, ok := behind[route]
			if !ok {
				continue
			}
			twins := [2]string{fmt.Sprintf("0007%02d%02d0", i, j), fmt.Sprintf("0007%02d%02d1", i, j)}
			customers := [2]string{fmt.Sprintf("C%02d%02d0", i, j), fmt.Sprintf("C%02d%02d1", i, j)}
			for _, serial := range twins { // the same state: registered at KB001
				p.request(t, "POST", "/v1/devices/OTP/"+serial+"/registrations", `{"channel":"CENTER","institution":"KB001","origin_channel":"ONLINE","actor":{"role":"SYSTEM","id":"CENTER"}}`)
			}
			if strings.HasSuffix(route, "/revoke") && strings.Contains(route, "/keys/") {
				for _, c := range customers { // the twin keys to revoke
					p.requestAs(t, "ADM1", "POST", "/v1/keys", fmt.Sprintf(`{"id":"K%s","role":"teller"}`, c[1:]))
				}
			}
			method, path, _ := strings.Cut(route, " ")
			path = strings.NewReplacer("{event_id}", noEvent, "{id}", "K"+customers[0][1:]).Replace(path)
			values := url.Values{"id": {"K" + customers[0][1:]}, "role": {"teller"}, "csrf": {m[1]}, "vendor": {"OTP"}, "serial": {twins[0]}, "customer_no": {customers[0]}, "no": {customers[0]},
				"reason": {"LOST"}, "documents": {"REAL_NAME_ID", "PROCESSING_FORM", "SEAL_OR_SIGNATURE"}, "account_no": {"12345678901"},
				"generator_number": {"MG00000001"}}
			got, _ := send(method, path, values, cookie)
			apiMethod, apiPath, apiBody := api(twins[1], customers[1], key.ID)
			want, body := p.requestAs(t, key.ID, apiMethod, apiPath, apiBody)
			if (got == http.StatusOK) != (want < 300) || (got != http.StatusOK && got != want) {
				t.Errorf("%s as %s (%s): the console answers %d, the API %d %s", route, key.ID, key.Role, got, want, body)
			}
		}
	}
}
