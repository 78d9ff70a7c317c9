// Package console is the branch console: the manual's screens (2376 device
// inquiry, the 2372 registration and 2374 loss-report forms, the approvals
// queue, the 2373 customer screen with its A013 revocation, the 2375
// reset) as server-rendered Korean pages at /console/, for tellers,
// managers and auditors.
//
// It has no path of its own to the ledger or the views: every read and
// every write is a request to the HTTP API's own handler, in process, made
// with the signed-in principal's API key. What a principal sees and may do
// is therefore exactly what the API grants its role; a refusal shows the
// rule id and the catalogue's Korean message (aggregates.RuleID.Text).
//
// Sessions live in this process: an HttpOnly, SameSite=Strict, Secure
// cookie names one (Secure left out only where serve is told the browser
// is on the same machine over plain HTTP); it ends after an idle timeout,
// at an absolute lifetime, at logout, or when the same browser signs in
// again (a new id each time). Every form carries a CSRF token: the
// session's, or before sign-in the login cookie's. The console is bounded
// before anyone signs in: forms are URL-encoded and at most 16 KiB, sign-in
// attempts are limited per client address, sign-ins under way at the
// issuer and sessions are capped and swept ([Console.SweepEvery]).
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/httpapi"
)

// Config configures [New].
type Config struct {
	API  http.Handler          // the HTTP API's handler: the console's only way in
	Auth httpapi.Authenticator // checks the key typed at sign-in: the API's own
	// OIDC, when set, offers sign-in at the OpenID Connect issuer (the
	// authorization-code flow); the session then acts with the ID token.
	OIDC        *access.CodeFlow
	IdleTimeout time.Duration // a session unused this long ends; default 15 minutes
	MaxLifetime time.Duration // a session ends this long after sign-in, however used; default 8 hours
	// PlainHTTP leaves Secure off the cookies: only for a browser on the
	// same machine over http:// (serve allows it on a loopback address
	// without TLS alone). By default cookies are Secure, as behind a load
	// balancer that terminates TLS.
	PlainHTTP bool
	// TrustedProxies are the load balancers whose X-Forwarded-For names the
	// client for the sign-in limit; anyone else is named by their address.
	TrustedProxies    []netip.Prefix
	SignInsPerMinute  int // sign-in attempts (key or issuer) per client address a minute; default 20
	MaxSessions       int // sessions at most (the least recently used ends); default 10,000
	MaxPendingSignIns int // sign-ins under way at the issuer at most (the oldest dropped); default 10,000
	Now               func() time.Time
}

func (cfg *Config) setDefaults() {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = 8 * time.Hour
	}
	if cfg.SignInsPerMinute <= 0 {
		cfg.SignInsPerMinute = 20
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10_000
	}
	if cfg.MaxPendingSignIns <= 0 {
		cfg.MaxPendingSignIns = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// maxClients is how many client addresses the sign-in limit tells apart in
// a minute; beyond them, clients share one count.
const maxClients = 10_000

// Console serves the console's pages. It is safe for concurrent use.
type Console struct {
	cfg      Config
	pages    *template.Template
	sessions *sessions
	signIns  *pending // OIDC sign-ins under way, by their cookie
	attempts *limiter // sign-in attempts by client
}

//go:embed templates/*.html
var templates embed.FS

const (
	cookieName  = "otpledger_console"
	loginCookie = "otpledger_login" // the login form's CSRF token, before any session
)

// kst is the branches' time zone: every time on a page is shown in it.
var kst = time.FixedZone("KST", 9*60*60)

// New returns the console. Its sessions and sign-ins under way are swept
// only when a request meets them, unless [Console.SweepEvery] runs.
func New(cfg Config) *Console {
	cfg.setDefaults()
	funcs := template.FuncMap{
		"kst":  inKST,
		"role": func(r events.PrincipalRole) string { return roleNames[r] },
		// acts: the role transacts in branch (the forms are shown to it; the
		// API decides, whoever posts).
		"acts": func(r events.PrincipalRole) bool { return r == events.RoleTeller || r == events.RoleManager },
	}
	return &Console{cfg: cfg, sessions: &sessions{max: cfg.MaxSessions, byID: map[string]*session{}},
		signIns:  newPending(cfg.MaxPendingSignIns, signInTTL),
		attempts: newLimiter(cfg.SignInsPerMinute, maxClients, time.Minute),
		pages:    template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))}
}

// inKST shows an instant (an API answer's RFC 3339 string, or a time) in
// KST with the zone named.
func inKST(v any) string {
	t, ok := v.(time.Time)
	if s, isString := v.(string); isString {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return s
		}
		ok = true
	}
	if !ok {
		return fmt.Sprint(v)
	}
	return t.In(kst).Format("2006-01-02 15:04:05 KST")
}

var roleNames = map[events.PrincipalRole]string{
	events.RoleTeller: "창구 직원", events.RoleManager: "책임자", events.RoleAuditor: "감사인",
	events.RoleOperator: "운영자", events.RoleAdmin: "관리자", events.RoleProducer: "연계 시스템",
}

// Handler serves the console under /console/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range c.routes() {
		mux.HandleFunc(r.pattern, r.handler)
	}
	return securityHeaders(limitForms(mux))
}

// routes is the console's table of contents: what Handler serves and
// Routes lists, from one table.
func (c *Console) routes() []route {
	return []route{
		{"GET /console/login", c.loginPage},
		{"POST /console/login", c.login},
		{"GET /console/oidc/login", c.oidcLogin},
		{"GET /console/oidc/callback", c.oidcCallback},
		{"POST /console/logout", c.signedIn(c.logout)},
		{"GET /console/{$}", c.signedIn(c.home)},
		{"GET /console/device", c.signedIn(c.device)},
		{"POST /console/device/register", c.signedIn(c.register)},
		{"POST /console/device/loss", c.signedIn(c.reportLoss)},
		{"POST /console/device/reset", c.signedIn(c.resetErrors)},
		{"POST /console/customers", c.signedIn(c.customers)},
		{"GET /console/customer", c.signedIn(c.customer)},
		{"POST /console/customer/revoke", c.signedIn(c.revokeMobile)},
		{"GET /console/keys", c.signedIn(c.keys)},
		{"POST /console/keys", c.signedIn(c.createKey)},
		{"POST /console/keys/{id}/revoke", c.signedIn(c.revokeKey)},
		{"GET /console/approvals", c.signedIn(c.approvals)},
		{"POST /console/approvals/{event_id}", c.signedIn(c.approve)},
		{"GET /console/audit", c.signedIn(c.audit)},
		{"POST /console/audit/verify", c.signedIn(c.verify)},
	}
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// Routes lists the console's routes (a page's trailing {$} left out), for
// the test that walks each with every role.
func Routes() []string {
	var out []string
	for _, r := range (&Console{}).routes() {
		out = append(out, strings.TrimSuffix(r.pattern, "{$}"))
	}
	return out
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Session *session
	Who     events.Principal // the signed-in principal
	CSRF    string
	Notice  string // what happened: accepted, or refused with its rule
	Refusal *refusal
	Data    any
}

// refusal is an API error as a teller reads it.
type refusal struct {
	Status    int
	Code      string
	Rule      string
	MessageKo string
	Message   string
	Field     string
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	if p.Session != nil {
		p.CSRF, p.Who = p.Session.csrf, p.Session.principal
	}
	var buf bytes.Buffer
	if err := c.pages.ExecuteTemplate(&buf, name, p); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	notice := ""
	if r.URL.Query().Get("expired") != "" {
		notice = "세션이 만료되었습니다. 다시 로그인하십시오."
	}
	c.loginForm(w, r, http.StatusOK, notice)
}

// loginForm renders the sign-in page with the browser's login CSRF token,
// set in a cookie if it has none: the form posts it back beside the key
// (login CSRF: another site cannot sign the browser in as someone else).
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, status int, notice string) {
	tok := ""
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == 64 {
		tok = ck.Value
	} else {
		tok = token()
		http.SetCookie(w, c.cookie(loginCookie, tok, "/console/", 0, http.SameSiteStrictMode))
	}
	c.render(w, status, "login.html", page{Title: "로그인", Data: c.cfg.OIDC != nil, CSRF: tok, Notice: notice})
}

// login checks the login CSRF token and the key (with the API's
// authenticator) and opens a session, ending the browser's earlier one.
// Attempts count against the client's limit.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.attempt(w, r) {
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.loginForm(w, r, http.StatusForbidden, "요청이 거부되었습니다: 로그인 양식의 보안 토큰(CSRF)이 맞지 않습니다. 화면을 새로 열어 다시 시도하십시오.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/approvals/pending", nil)
	probe.Header.Set("Authorization", "Bearer "+key)
	id, err := c.cfg.Auth.Authenticate(probe)
	if key == "" || err != nil {
		c.loginForm(w, r, http.StatusUnauthorized, "API 키가 올바르지 않습니다 (없거나, 만료되었거나, 폐기된 키).")
		return
	}
	replaces := ""
	if old, err := r.Cookie(cookieName); err == nil {
		replaces = old.Value
	}
	c.open(w, &session{key: key, principal: id.Principal}, replaces)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// attempt counts a sign-in attempt of r's client; past the limit it
// answers 429 and returns false.
func (c *Console) attempt(w http.ResponseWriter, r *http.Request) bool {
	if c.attempts.allow(clientOf(r, c.cfg.TrustedProxies), c.cfg.Now()) {
		return true
	}
	w.Header().Set("Retry-After", "60")
	c.loginForm(w, r, http.StatusTooManyRequests, "로그인 시도가 너무 많습니다. 잠시 후 다시 시도하십시오.")
	return false
}

// open starts session s under a new id, ends the session it replaces and
// sets the cookie. The session ends MaxLifetime after now at the latest
// (sooner if s.ends, the ID token's expiry, says so).
func (c *Console) open(w http.ResponseWriter, s *session, replaces string) {
	now := c.cfg.Now()
	s.csrf, s.seen = token(), now
	if end := now.Add(c.cfg.MaxLifetime); s.ends.IsZero() || end.Before(s.ends) {
		s.ends = end
	}
	sid := token()
	c.sessions.open(sid, s, replaces)
	http.SetCookie(w, c.cookie(cookieName, sid, "/console/", 0, http.SameSiteStrictMode))
}

// cookie is one of the console's cookies: HttpOnly, and Secure unless
// serve was told the browser is on this machine over plain HTTP.
func (c *Console) cookie(name, value, path string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: !c.cfg.PlainHTTP, SameSite: sameSite}
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// signedIn runs next with the request's live session, checking the CSRF
// token of every POST; without one it sends the browser to sign in, saying
// the session has ended when the browser brought one (over, swept, or
// replaced by a later sign-in).
func (c *Console) signedIn(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(cookieName)
		if err != nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		sid := cookie.Value
		s := c.sessions.use(sid, c.cfg.Now(), c.cfg.IdleTimeout)
		if s == nil {
			http.Redirect(w, r, "/console/login?expired=1", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
			c.render(w, http.StatusForbidden, "error.html", page{Title: "요청 거부", Session: s,
				Notice: "요청이 거부되었습니다: 양식의 보안 토큰(CSRF)이 이 세션의 것이 아닙니다. 화면을 새로 열어 다시 시도하십시오."})
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, sid))
		next(w, r, s)
	}
}

type sessionKey struct{}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	sid, _ := r.Context().Value(sessionKey{}).(string)
	c.sessions.end(sid)
	http.SetCookie(w, c.cookie(cookieName, "", "/console/", -1, http.SameSiteStrictMode))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// call sends a request to the API as the session's principal and decodes
// its answer into out, or returns the refusal.
func (c *Console) call(ctx context.Context, s *session, method, path string, body any, out any) *refusal {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return &refusal{Status: http.StatusBadRequest, Code: "invalid_argument", Message: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status >= 300 {
		var e struct{ Error refusal }
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		e.Error.Status = rec.status
		return &e.Error
	}
	if out != nil {
		_ = json.Unmarshal(rec.body.Bytes(), out)
	}
	return nil
}

// recorder is the response of an in-process API call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
