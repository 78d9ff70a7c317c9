package console

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/access/oidctest"
)

// clock is the console's clock in a test: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keys authenticates the bearer keys it maps to their principal. The API
// itself is a stand-in: these tests are about the console's own doors,
// none of which asks the API anything.
type keys map[string]events.Principal

func (k keys) Authenticate(r *http.Request) (access.Identity, error) {
	p, ok := k[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		return access.Identity{}, errors.New("unknown key")
	}
	return access.Identity{Principal: p}, nil
}

const tellerKey = "otpl_teller_key"

func testConsole(t *testing.T, cfg Config) (*Console, *clock) {
	t.Helper()
	clk := newClock()
	cfg.API = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	cfg.Auth = keys{tellerKey: {ID: "S100", Role: events.RoleTeller, Method: events.MethodAPIKey}}
	cfg.Now = clk.now
	return New(cfg), clk
}

// codeFlow is sign-in at a test issuer.
func codeFlow(t *testing.T) *access.CodeFlow {
	t.Helper()
	iss := oidctest.New(t)
	o, err := access.NewOIDC(context.Background(), iss.URL, oidctest.ClientID, "otpledger_role")
	if err != nil {
		t.Fatal(err)
	}
	return o.CodeFlow(oidctest.ClientSecret, "https://console.test/console/oidc/callback")
}

// browser is one browser at one address: it keeps the cookies it is given.
type browser struct {
	t       *testing.T
	h       http.Handler
	addr    string
	header  http.Header
	cookies map[string]*http.Cookie
}

func newBrowser(t *testing.T, c *Console, addr string) *browser {
	return &browser{t: t, h: c.Handler(), addr: addr, header: http.Header{}, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "http://console.test"+path, body)
	req.RemoteAddr = b.addr
	for k, v := range b.header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	resp := rec.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return resp, rec.Body.String()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

// signIn opens the login page and posts key with its CSRF token.
func (b *browser) signIn(key string) *http.Response {
	b.t.Helper()
	_, page := b.do("GET", "/console/login", nil)
	resp, _ := b.do("POST", "/console/login", url.Values{"key": {key}, "csrf": {csrf(b.t, page)}})
	return resp
}

func (b *browser) session() string {
	if c := b.cookies[cookieName]; c != nil {
		return c.Value
	}
	return ""
}

// home opens the menu: 200 signed in, else the redirect's location.
func (b *browser) home() (int, string) {
	resp, _ := b.do("GET", "/console/", nil)
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestOIDCLoginStarts100000StayWithinTheCap: 100,000 sign-ins started at
// the issuer and never finished keep at most MaxPendingSignIns (10,000)
// under way — the oldest dropped — each start costs the same at the
// 100,000th as at the 1,000th (no scan of those under way), and a page
// stays quick meanwhile. Past the TTL a sweep forgets them all.
func TestOIDCLoginStarts100000StayWithinTheCap(t *testing.T) {
	t.Parallel()
	const starts, limit = 100_000, 10_000
	c, clk := testConsole(t, Config{OIDC: codeFlow(t), SignInsPerMinute: 2 * starts})
	teller := newBrowser(t, c, "192.0.2.10:5000")
	if resp := teller.signIn(tellerKey); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	crowd := newBrowser(t, c, "198.51.100.1:5000")
	startTimes := make([]time.Duration, 0, starts)
	var pageTimes []time.Duration
	for i := range starts {
		t0 := time.Now()
		resp, _ := crowd.do("GET", "/console/oidc/login", nil)
		startTimes = append(startTimes, time.Since(t0))
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("start %d: %d", i, resp.StatusCode)
		}
		if n := c.signIns.len(); n > limit {
			t.Fatalf("after %d starts, %d sign-ins under way: over the cap of %d", i+1, n, limit)
		}
		if i%100 == 0 {
			t0 := time.Now()
			if status, _ := teller.home(); status != http.StatusOK {
				t.Fatalf("the teller's page during the starts: %d", status)
			}
			pageTimes = append(pageTimes, time.Since(t0))
		}
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	early, late := median(startTimes[1000:2000]), median(startTimes[starts-1000:])
	t.Logf("%d starts: %d under way (cap %d); a start's median %v at the 1,000th, %v at the 100,000th; a page's median %v, max %v (%d pages); heap %+d KiB",
		starts, c.signIns.len(), limit, early, late, median(pageTimes), slices.Max(pageTimes), len(pageTimes),
		(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024)
	if late > 5*early+50*time.Microsecond {
		t.Errorf("a start at 100,000 takes %v, at 1,000 %v: its cost grows with the sign-ins under way", late, early)
	}
	if n := c.signIns.len(); n != limit {
		t.Errorf("%d sign-ins under way, want the cap %d (the latest)", n, limit)
	}
	clk.add(signInTTL + time.Second)
	if _, n := c.Sweep(); n != 0 {
		t.Errorf("past the TTL a sweep leaves %d sign-ins under way", n)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// endless is a body of n bytes of a form's text, made as it is read; it
// counts what the server read.
type endless struct{ n, read int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.read >= e.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n-e.read)
	for i := range p[:k] {
		p[i] = 'a'
	}
	e.read += k
	return int(k), nil
}

// TestFormBodyOf32MBRefused: a 32 MB body posted to the login form (and to
// a signed-in form) is refused with 413 having read at most the 16 KiB
// limit (streamed without a length) or nothing (its length declared), and
// a multipart body (posted, or sent with a GET whose page reads FormValue)
// with 415 unread: never tens of MB in memory or in temporary files.
func TestFormBodyOf32MBRefused(t *testing.T) { // not parallel: it counts the process's allocations
	c, _ := testConsole(t, Config{})
	teller := newBrowser(t, c, "192.0.2.10:5000")
	teller.signIn(tellerKey)
	const size = 32 << 20
	for _, tc := range []struct {
		name, method, path, contentType string
		declared                        bool
		status                          int
		maxRead                         int64
	}{
		{"login, streamed", "POST", "/console/login", "application/x-www-form-urlencoded", false, http.StatusRequestEntityTooLarge, maxForm + 1},
		{"login, length declared", "POST", "/console/login", "application/x-www-form-urlencoded", true, http.StatusRequestEntityTooLarge, 0},
		{"login, multipart", "POST", "/console/login", "multipart/form-data; boundary=x", false, http.StatusUnsupportedMediaType, 0},
		{"customer search, streamed", "POST", "/console/customers", "application/x-www-form-urlencoded", false, http.StatusRequestEntityTooLarge, maxForm + 1},
		{"customer search, multipart", "POST", "/console/customers", "multipart/form-data; boundary=x", true, http.StatusUnsupportedMediaType, 0},
		{"2373, a GET with a multipart body", "GET", "/console/customer?no=C0001", "multipart/form-data; boundary=x", false, http.StatusUnsupportedMediaType, 0},
	} {
		body := &endless{n: size}
		req := httptest.NewRequest(tc.method, "http://console.test"+tc.path, body)
		req.ContentLength = -1
		if tc.declared {
			req.ContentLength = size
		}
		req.RemoteAddr = teller.addr
		req.Header.Set("Content-Type", tc.contentType)
		req.AddCookie(&http.Cookie{Name: cookieName, Value: teller.session()})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rec := httptest.NewRecorder()
		c.Handler().ServeHTTP(rec, req)
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d, read %d of %d bytes, %d KiB allocated", tc.name, rec.Code, body.read, size, allocated/1024)
		if rec.Code != tc.status || body.read > tc.maxRead || allocated > 1<<20 {
			t.Errorf("%s: %d having read %d bytes and allocated %d; want %d having read at most %d and allocated under 1 MiB",
				tc.name, rec.Code, body.read, allocated, tc.status, tc.maxRead)
		}
	}
}

// TestSessionsPastIdleOrLifetimeGoAtSweep: a session unused for longer
// than the idle timeout, and one used every 10 minutes but signed in 8
// hours ago, are both gone after a sweep; until then each is live. The
// browser of a swept session is told it has ended.
func TestSessionsPastIdleOrLifetimeGoAtSweep(t *testing.T) {
	t.Parallel()
	c, clk := testConsole(t, Config{IdleTimeout: 15 * time.Minute, MaxLifetime: 8 * time.Hour})
	idle, busy := newBrowser(t, c, "192.0.2.1:5000"), newBrowser(t, c, "192.0.2.2:5000")
	idle.signIn(tellerKey)
	busy.signIn(tellerKey)
	if s, _ := c.Sweep(); s != 2 {
		t.Fatalf("%d sessions after two sign-ins", s)
	}
	for elapsed := 10 * time.Minute; elapsed < 8*time.Hour; elapsed += 10 * time.Minute {
		clk.add(10 * time.Minute)
		sessions, _ := c.Sweep()
		want := 1
		if elapsed <= 15*time.Minute {
			want = 2
		}
		if sessions != want {
			t.Fatalf("%v after sign-in: %d sessions after a sweep, want %d", elapsed, sessions, want)
		}
		if status, _ := busy.home(); status != http.StatusOK {
			t.Fatalf("%v after sign-in, used every 10 minutes: %d", elapsed, status)
		}
	}
	clk.add(10 * time.Minute) // 8 hours after sign-in, used 10 minutes ago
	if sessions, _ := c.Sweep(); sessions != 0 {
		t.Errorf("8 hours after sign-in: %d sessions after a sweep, want 0", sessions)
	}
	if status, loc := busy.home(); status != http.StatusSeeOther || loc != "/console/login?expired=1" {
		t.Errorf("8 hours after sign-in, swept, the page answers %d %q, want 303 to sign in, the session said to have ended", status, loc)
	}
}

// TestLoginWithoutTheCSRFTokenRefused: a sign-in post with the right key
// but without the login form's token — no cookie, no field, or another
// browser's — is refused with 403 and opens no session.
func TestLoginWithoutTheCSRFTokenRefused(t *testing.T) {
	t.Parallel()
	c, _ := testConsole(t, Config{})
	victim, attacker := newBrowser(t, c, "192.0.2.1:5000"), newBrowser(t, c, "203.0.113.66:5000")
	_, page := attacker.do("GET", "/console/login", nil)
	theirs := csrf(t, page)
	victim.do("GET", "/console/login", nil) // the victim has a login cookie of their own
	fresh := newBrowser(t, c, "192.0.2.2:5000")
	for name, post := range map[string]func() *http.Response{
		"no cookie, no field": func() *http.Response {
			r, _ := fresh.do("POST", "/console/login", url.Values{"key": {tellerKey}})
			return r
		},
		"no cookie, another browser's field": func() *http.Response {
			r, _ := fresh.do("POST", "/console/login", url.Values{"key": {tellerKey}, "csrf": {theirs}})
			return r
		},
		"a cookie, no field": func() *http.Response {
			r, _ := victim.do("POST", "/console/login", url.Values{"key": {tellerKey}})
			return r
		},
		"a cookie, another browser's field": func() *http.Response {
			r, _ := victim.do("POST", "/console/login", url.Values{"key": {tellerKey}, "csrf": {theirs}})
			return r
		},
	} {
		if resp := post(); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if n := c.sessions.len(); n != 0 || victim.session() != "" || fresh.session() != "" {
		t.Errorf("%d sessions opened by forged sign-ins", n)
	}
	if resp := victim.signIn(tellerKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("with the form's token: %d, want 303", resp.StatusCode)
	}
}

// TestSigningInTwiceEndsTheFirstSession: signing in again in the same
// browser yields a new session id, and the earlier one no longer opens a
// page.
func TestSigningInTwiceEndsTheFirstSession(t *testing.T) {
	t.Parallel()
	c, _ := testConsole(t, Config{})
	b := newBrowser(t, c, "192.0.2.1:5000")
	b.signIn(tellerKey)
	first := b.session()
	b.signIn(tellerKey)
	second := b.session()
	if first == "" || second == "" || first == second {
		t.Fatalf("session ids %q then %q: want two different", first, second)
	}
	if status, _ := b.home(); status != http.StatusOK {
		t.Errorf("the second session: %d", status)
	}
	b.cookies[cookieName] = &http.Cookie{Name: cookieName, Value: first}
	if status, loc := b.home(); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login") {
		t.Errorf("the first session after signing in again: %d %q, want 303 to sign in", status, loc)
	}
	if n := c.sessions.len(); n != 1 {
		t.Errorf("%d sessions for one browser", n)
	}
}

// TestCookiesSecureUnlessPlainHTTP: behind a proxy that terminates TLS (the
// request reaching the console is plain HTTP) every cookie the console sets
// is Secure and HttpOnly — the login token and the session SameSite=Strict,
// the issuer's sign-in Lax (it must survive the issuer's redirect back) —
// and Secure is absent only when the console is told it is on plain HTTP.
func TestCookiesSecureUnlessPlainHTTP(t *testing.T) {
	t.Parallel()
	flow := codeFlow(t)
	for _, plain := range []bool{false, true} {
		c, _ := testConsole(t, Config{OIDC: flow, PlainHTTP: plain})
		b := newBrowser(t, c, "10.0.0.2:40000")
		b.header.Set("X-Forwarded-Proto", "https")
		var set []*http.Cookie
		collect := func(resp *http.Response, _ string) { set = append(set, resp.Cookies()...) }
		collect(b.do("GET", "/console/login", nil))
		b.signIn(tellerKey)
		set = append(set, b.cookies[cookieName])
		collect(b.do("GET", "/console/oidc/login", nil))
		_, home := b.do("GET", "/console/", nil)
		collect(b.do("POST", "/console/logout", url.Values{"csrf": {csrf(t, home)}}))
		want := map[string]http.SameSite{loginCookie: http.SameSiteStrictMode, cookieName: http.SameSiteStrictMode, signInCookie: http.SameSiteLaxMode}
		seen := map[string]bool{}
		for _, ck := range set {
			seen[ck.Name] = true
			if ck.Secure == plain || !ck.HttpOnly || ck.SameSite != want[ck.Name] {
				t.Errorf("plain HTTP %v: cookie %s: Secure %v, HttpOnly %v, SameSite %v; want Secure %v, HttpOnly, SameSite %v",
					plain, ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite, !plain, want[ck.Name])
			}
		}
		if len(seen) != len(want) {
			t.Errorf("plain HTTP %v: cookies %v, want %v", plain, seen, want)
		}
	}
}

// TestSignInAttemptsLimitedPerClient: 20 sign-in attempts a minute from one
// address (keys typed and issuer sign-ins started alike); the 21st is
// refused with 429, even with the right key, while another address signs
// in; a minute later the address may try again. IPv6 addresses count by
// /64; behind a trusted proxy the client is its X-Forwarded-For, which
// anyone else cannot forge. 100,000 addresses in a minute keep the count
// at most 10,000 addresses and share one limit beyond them.
func TestSignInAttemptsLimitedPerClient(t *testing.T) {
	t.Parallel()
	c, clk := testConsole(t, Config{OIDC: codeFlow(t), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	wrong := func(b *browser) int {
		_, page := b.do("GET", "/console/login", nil)
		resp, _ := b.do("POST", "/console/login", url.Values{"key": {"otpl_wrong"}, "csrf": {csrf(t, page)}})
		return resp.StatusCode
	}
	a := newBrowser(t, c, "192.0.2.1:5000")
	for i := range 15 {
		if status := wrong(a); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, status)
		}
	}
	for i := range 5 {
		if resp, _ := a.do("GET", "/console/oidc/login", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("issuer sign-in %d: %d, want 303", 16+i, resp.StatusCode)
		}
	}
	if status := wrong(a); status != http.StatusTooManyRequests {
		t.Errorf("the 21st attempt in a minute: %d, want 429", status)
	}
	if resp := a.signIn(tellerKey); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the 22nd, with the right key: %d, want 429", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/console/oidc/login", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an issuer sign-in past the limit: %d, want 429", resp.StatusCode)
	}
	if resp := newBrowser(t, c, "192.0.2.2:5000").signIn(tellerKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another address meanwhile: %d, want 303", resp.StatusCode)
	}

	// IPv6 by /64; behind the proxy by X-Forwarded-For; a forged one ignored.
	v6a, v6b := newBrowser(t, c, "[2001:db8:1:2::1]:5000"), newBrowser(t, c, "[2001:db8:1:2::ffff]:5000")
	viaProxy, forger := newBrowser(t, c, "10.1.2.3:5000"), newBrowser(t, c, "198.51.100.9:5000")
	viaProxy.header.Set("X-Forwarded-For", "192.0.2.1, 10.9.9.9") // a's address, then an inner balancer
	forger.header.Set("X-Forwarded-For", "192.0.2.77")
	for range 20 {
		_ = wrong(v6a)
		_ = wrong(forger)
	}
	if status := wrong(v6b); status != http.StatusTooManyRequests {
		t.Errorf("another address of the same IPv6 /64: %d, want 429", status)
	}
	if status := wrong(viaProxy); status != http.StatusTooManyRequests {
		t.Errorf("a's address through the trusted proxy: %d, want 429", status)
	}
	if status := wrong(newBrowser(t, c, "192.0.2.77:5000")); status != http.StatusUnauthorized {
		t.Errorf("the address another client forged in X-Forwarded-For: %d, want 401", status)
	}

	clk.add(time.Minute)
	if resp := a.signIn(tellerKey); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a minute later: %d, want 303", resp.StatusCode)
	}

	// A spread of addresses: the count is bounded and they share a limit.
	admitted := 0
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{100, byte(64 + i>>16), byte(i >> 8), byte(i)})
		if c.attempts.allow(clientOf(&http.Request{RemoteAddr: ip.String() + ":1"}, nil), clk.now()) {
			admitted++
		}
	}
	c.attempts.mu.Lock()
	counted := len(c.attempts.counts)
	c.attempts.mu.Unlock()
	t.Logf("100,000 addresses in a minute: %d counted apart, %d attempts admitted", counted, admitted)
	if counted > maxClients || admitted > maxClients+20 {
		t.Errorf("100,000 addresses: %d counted apart (max %d), %d admitted", counted, maxClients, admitted)
	}
}

// TestCapsHoldUnderConcurrentUse: eight browsers signing in, opening pages,
// starting sign-ins at the issuer and signing out at once, beside a sweep
// and a moving clock, never hold more than the caps (50 sessions, 50
// sign-ins under way); the least recently used session is the one that
// ends. Run with -race.
func TestCapsHoldUnderConcurrentUse(t *testing.T) {
	t.Parallel()
	const capacity, workers, rounds = 50, 8, 40
	c, clk := testConsole(t, Config{OIDC: codeFlow(t), MaxSessions: capacity, MaxPendingSignIns: capacity, SignInsPerMinute: 1 << 20})
	oldest := newBrowser(t, c, "192.0.2.200:5000")
	oldest.signIn(tellerKey)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.add(time.Millisecond) // far from the idle timeout and the TTL: the caps, not time, must hold
				c.Sweep()
				time.Sleep(100 * time.Microsecond)
				if s, p := c.sessions.len(), c.signIns.len(); s > capacity || p > capacity {
					t.Errorf("%d sessions, %d sign-ins under way: over the cap of %d", s, p, capacity)
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				b := newBrowser(t, c, netip.AddrFrom4([4]byte{198, 18, byte(w), byte(i)}).String()+":5000")
				b.signIn(tellerKey)
				b.home()
				b.do("GET", "/console/oidc/login", nil)
				if i%4 == 0 {
					_, home := b.do("GET", "/console/", nil)
					if m := csrfRE.FindStringSubmatch(home); m != nil {
						b.do("POST", "/console/logout", url.Values{"csrf": {m[1]}})
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	s, p := c.Sweep()
	t.Logf("%d sign-ins and issuer starts by %d browsers at once: %d sessions, %d sign-ins under way (caps %d)", workers*rounds, workers, s, p, capacity)
	if s > capacity || p > capacity {
		t.Errorf("%d sessions, %d sign-ins under way: over the cap of %d", s, p, capacity)
	}
	if status, _ := oldest.home(); status == http.StatusOK {
		t.Errorf("the least recently used of %d sessions is still open", workers*rounds)
	}
}

// TestIssuerSignInEndsTheEarlierSession: a browser signed in with a key
// that signs in again at the issuer gets a new session id, the earlier one
// ends (though the issuer's redirect back, cross-site, does not carry the
// Strict session cookie), and the new session ends with the ID token. The
// issuer's answer cannot be replayed.
func TestIssuerSignInEndsTheEarlierSession(t *testing.T) {
	t.Parallel()
	iss := oidctest.New(t)
	iss.Directory["AUD2"] = "auditor"
	o, err := access.NewOIDC(context.Background(), iss.URL, oidctest.ClientID, "otpledger_role")
	if err != nil {
		t.Fatal(err)
	}
	c, clk := testConsole(t, Config{OIDC: o.CodeFlow(oidctest.ClientSecret, "https://console.test/console/oidc/callback")})
	clk.add(time.Since(clk.now())) // the ID token's times are the issuer's: real ones
	b := newBrowser(t, c, "192.0.2.1:5000")
	b.signIn(tellerKey)
	first := b.session()
	resp, _ := b.do("GET", "/console/oidc/login", nil)
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(auth.String(), iss.URL) {
		t.Fatalf("the start sends the browser to %q", resp.Header.Get("Location"))
	}
	form := auth.Query()
	form.Set("user", "AUD2")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	answer, err := noRedirect.PostForm(iss.URL+"/auth", form)
	if err != nil {
		t.Fatal(err)
	}
	answer.Body.Close()
	back, err := url.Parse(answer.Header.Get("Location"))
	if err != nil || back.Path != "/console/oidc/callback" {
		t.Fatalf("the issuer sends the browser back to %q", answer.Header.Get("Location"))
	}
	signIn := b.cookies[signInCookie]
	delete(b.cookies, cookieName) // the cross-site navigation back carries no Strict cookie
	if resp, _ := b.do("GET", "/console/oidc/callback?"+back.RawQuery, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the callback: %d", resp.StatusCode)
	}
	second := b.session()
	if second == "" || second == first {
		t.Fatalf("session ids %q then %q: want two different", first, second)
	}
	if status, _ := b.home(); status != http.StatusOK {
		t.Errorf("the issuer's session: %d", status)
	}
	b.cookies[cookieName] = &http.Cookie{Name: cookieName, Value: first}
	if status, loc := b.home(); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/login") {
		t.Errorf("the key's session after signing in at the issuer: %d %q, want 303 to sign in", status, loc)
	}
	c.sessions.mu.Lock()
	s := c.sessions.byID[second]
	c.sessions.mu.Unlock()
	if s == nil || s.ends.After(clk.now().Add(time.Hour+time.Minute)) {
		t.Errorf("the issuer's session: %v, want it to end with its ID token, within the hour", s != nil) // never the session itself: it holds the token
	}
	b.cookies[signInCookie] = signIn
	if resp, _ := b.do("GET", "/console/oidc/callback?"+back.RawQuery, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the issuer's answer replayed: %d, want 401", resp.StatusCode)
	}
}
