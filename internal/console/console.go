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
// Sessions live in this process: an HttpOnly, SameSite=Strict cookie (Secure
// under TLS) names one; it ends after an idle timeout or at logout. Every
// form carries the session's CSRF token.
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
	"strings"
	"sync"
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
	Secure      bool          // cookies only over HTTPS (serve under TLS)
	Now         func() time.Time
}

// Console serves the console's pages. It is safe for concurrent use.
type Console struct {
	cfg      Config
	pages    *template.Template
	mu       sync.Mutex
	sessions map[string]*session
	signIns  map[string]signIn // OIDC sign-ins under way, by their cookie
}

// session is one signed-in principal's.
type session struct {
	key       string // the API key typed at sign-in, or the issuer's ID token: the console acts with it
	principal events.Principal
	csrf      string
	seen      time.Time
	expires   time.Time // the ID token's expiry; zero for a key (the API checks a key's own)
}

//go:embed templates/*.html
var templates embed.FS

const cookieName = "otpledger_console"

// kst is the branches' time zone: every time on a page is shown in it.
var kst = time.FixedZone("KST", 9*60*60)

// New returns the console.
func New(cfg Config) *Console {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	funcs := template.FuncMap{
		"kst":  inKST,
		"role": func(r events.PrincipalRole) string { return roleNames[r] },
		// acts: the role transacts in branch (the forms are shown to it; the
		// API decides, whoever posts).
		"acts": func(r events.PrincipalRole) bool { return r == events.RoleTeller || r == events.RoleManager },
	}
	return &Console{cfg: cfg, sessions: map[string]*session{}, signIns: map[string]signIn{},
		pages: template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))}
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
	return securityHeaders(mux)
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
	p := page{Title: "로그인", Data: c.cfg.OIDC != nil}
	if r.URL.Query().Get("expired") != "" {
		p.Notice = "세션이 만료되었습니다. 다시 로그인하십시오."
	}
	c.render(w, http.StatusOK, "login.html", p)
}

// login checks the key with the API's authenticator and opens a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.PostFormValue("key"))
	probe, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/approvals/pending", nil)
	probe.Header.Set("Authorization", "Bearer "+key)
	id, err := c.cfg.Auth.Authenticate(probe)
	if key == "" || err != nil {
		c.render(w, http.StatusUnauthorized, "login.html", page{Title: "로그인", Notice: "API 키가 올바르지 않습니다 (없거나, 만료되었거나, 폐기된 키)."})
		return
	}
	c.open(w, &session{key: key, principal: id.Principal})
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// open starts session s and sets its cookie.
func (c *Console) open(w http.ResponseWriter, s *session) {
	s.csrf, s.seen = token(), c.cfg.Now()
	sid := token()
	c.mu.Lock()
	c.sessions[sid] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: "/console/", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode})
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// signedIn runs next with the request's live session, checking the CSRF
// token of every POST; without one it sends the browser to sign in.
func (c *Console) signedIn(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(cookieName)
		var s *session
		var sid string
		if err == nil {
			sid = cookie.Value
			c.mu.Lock()
			s = c.sessions[sid]
			now := c.cfg.Now()
			if s != nil && (now.Sub(s.seen) > c.cfg.IdleTimeout || !s.expires.IsZero() && now.After(s.expires)) {
				delete(c.sessions, sid)
				s = nil
				c.mu.Unlock()
				http.Redirect(w, r, "/console/login?expired=1", http.StatusSeeOther)
				return
			}
			if s != nil {
				s.seen = now
			}
			c.mu.Unlock()
		}
		if s == nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
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
	c.mu.Lock()
	delete(c.sessions, sid)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode})
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
