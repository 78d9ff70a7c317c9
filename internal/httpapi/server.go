// Package httpapi is the HTTP API of api.md over the ledger (commands) and
// the projections (queries), with health, readiness and Prometheus metrics.
// One function, toAPI, maps every error to a status and the error shape.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/projections"
)

// Authenticator turns a request's credentials into an identity:
// [*access.Authenticator] in service.
type Authenticator interface {
	Authenticate(r *http.Request) (access.Identity, error)
}

// Config configures [New].
type Config struct {
	Ledger        *ledger.Ledger
	Views         projections.Reader
	Fingerprinter *pii.Fingerprinter
	Home          string
	// Auth authenticates every request but /healthz and /readyz; Keys
	// serves /v1/keys (api.md "Identity and access").
	Auth Authenticator
	Keys *access.Keys
	// Journal is the ledger's journal: /readyz and /metrics ask it whether
	// it answers and how far the views are behind its last sequence.
	Journal *journal.Journal
	// Verifier runs and keeps the stream's verifications (GET and POST
	// /v1/audit); default one without the checkpoints' public key.
	Verifier *consumers.Verifier
	// Projecting, when set, reports whether this replica's projector holds
	// the lease on shared views (/readyz "projector", the metric
	// otpledger_projector_leader); nil when the views are this process's own.
	Projecting func() bool
	// Consuming, when set, reports whether the projector this replica
	// runs consumes the journal: /readyz answers 503 "not consuming" while
	// it cannot (its views no longer move, whatever their lag says).
	Consuming func() bool
	// Build names the binary in otpledger_build_info.
	Build BuildInfo
	// MaxReadyLag is the lag above which /readyz reports the views behind
	// ("projection":"catching up"); default 10,000. It answers 503 only when
	// they are behind and their position has not moved for StallAfter
	// (default 30 s): a projector that stopped, never a lag that load alone
	// produces while the projector keeps applying.
	MaxReadyLag     uint64
	StallAfter      time.Duration
	MinSequenceWait time.Duration // bound of ?min_sequence waits; default 2 s
	// LookupsPerMinute bounds each principal's personal-data look-ups
	// (GET /v1/customers?real_name_number=|account_no=), across every
	// server sharing the journal; default 30.
	LookupsPerMinute int
	Logger           *slog.Logger
	Registry         *prometheus.Registry // default a new one
}

func (c *Config) setDefaults() {
	if c.MaxReadyLag == 0 {
		c.MaxReadyLag = 10_000
	}
	if c.StallAfter == 0 {
		c.StallAfter = 30 * time.Second
	}
	if c.LookupsPerMinute == 0 {
		c.LookupsPerMinute = 30
	}
	if c.MinSequenceWait == 0 {
		c.MinSequenceWait = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
}

// Validate reports every missing dependency.
func (c Config) Validate() error {
	var errs []error
	for name, missing := range map[string]bool{"Ledger": c.Ledger == nil, "Views": c.Views == nil, "Fingerprinter": c.Fingerprinter == nil,
		"Home": c.Home == "", "Journal": c.Journal == nil,
		"Auth": c.Auth == nil, "Keys": c.Keys == nil} {
		if missing {
			errs = append(errs, errors.New("httpapi: "+name+" is required"))
		}
	}
	return errors.Join(errs...)
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	cfg      Config
	handler  http.Handler
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	refusals *prometheus.CounterVec
	// calendarWarned is the last year whose unknown calendar was logged.
	calendarWarned atomic.Int64
	// probed is what /readyz last asked the journal and the store.
	probed struct {
		sync.Mutex
		last readiness
	}
	// moved is the views' position /readyz last saw change, and when.
	moved struct {
		sync.Mutex
		pos   uint64
		since time.Time
	}
}

// New builds the server and registers its metrics.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Verifier == nil {
		cfg.Verifier = consumers.NewVerifier(context.Background(), cfg.Journal, nil)
	}
	s := &Server{cfg: cfg}
	s.registerMetrics()
	mux := http.NewServeMux()
	s.routes(guarded{mux, s})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.unrouted(mux, w, r) })
	s.handler = s.instrument(noStore(canonical(s, mux)))
	return s, nil
}

// noStore marks every /v1 answer, errors too, Cache-Control: no-store: they
// hold personal data, and POST /v1/keys a new token, which no cache (a
// proxy's, a browser's) may keep.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1" || strings.HasPrefix(r.URL.Path, "/v1/") {
			w.Header().Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// unrouted answers a request no route took: 405 with Allow when the path
// has routes for other methods, else 404, both in the error shape.
func (s *Server) unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		s.fail(w, r, errNotFoundPath)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	s.fail(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "allowed: " + strings.Join(allow, ", ")})
}

// canonical refuses, in the error shape, a path that is not clean ("..",
// "//", "/./"), which the mux would otherwise answer with an HTML redirect.
func canonical(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || path.Clean(p) != p {
			s.fail(w, r, invalid("path", "must be a clean absolute path (no '..', '//' or '.')"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// router is what routes are registered on: an *http.ServeMux, or a recorder.
type router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// routes registers every route: the API's table of contents. Who may use
// each is in grants (access.go).
func (s *Server) routes(m router) {
	const dev, cust = "/v1/devices/{vendor}/{serial}", "/v1/customers/{customer_no}"
	for _, r := range []struct {
		pattern string
		handler http.HandlerFunc
	}{
		// Commands (commands.go): decode, bind the principal, run through the ledger.
		{"POST " + dev + "/registrations", deviceCommand(s, s.register, (*registerBody).base)},
		{"POST " + dev + "/registrations/{institution}/cancel", deviceCommand(s, s.cancel, (*reasonBody).base)},
		{"POST " + dev + "/loss-reports", deviceCommand(s, s.reportLoss, (*reasonBody).base)},
		{"POST " + dev + "/loss-reports/{institution}/recover", deviceCommand(s, s.recover, (*attributedBody).base)},
		{"POST " + dev + "/errors", deviceCommand(s, s.incrementError, (*plainBody).base)},
		{"POST " + dev + "/errors/reset", deviceCommand(s, s.resetErrors, (*attributedBody).base)},
		{"PUT " + cust, customerCommand(s, s.setProfile, (*profileBody).base)},
		{"POST " + cust + "/mobile-otp", customerCommand(s, s.issueMobile, (*mobileBody).base)},
		{"POST " + cust + "/mobile-otp/revoke", customerCommand(s, s.revokeMobile, (*revokeBody).base)},
		{"POST " + cust + "/mobile-otp/errors", customerCommand(s, s.incrementMobileError, (*plainBody).base)},
		{"POST " + cust + "/mobile-otp/errors/reset", customerCommand(s, s.resetMobileErrors, (*plainBody).base)},
		{"POST /v1/events/{event_id}/approval", s.approve},
		// Queries (queries.go): the screens, from the views.
		{"GET " + cust + "/devices", s.query(s.customerDevices)},
		{"GET " + cust + "/media", s.query(s.customerMedia)},
		{"GET " + cust + "/mobile-otp", s.query(s.mobileOTP)},
		{"GET /v1/customers", s.limitLookups(s.query(s.findCustomers))},
		{"GET " + dev, s.query(s.device)},
		{"GET " + dev + "/institutions", s.query(s.deviceInstitutions)},
		{"GET " + dev + "/history", s.query(s.deviceHistory)},
		{"GET " + dev + "/errors", s.query(s.deviceErrors)},
		{"GET /v1/institutions/{code}/devices", s.query(s.institutionDevices)},
		{"GET /v1/approvals/pending", s.query(s.pendingApprovals)},
		// The audit screen (audit.go): checkpoint, verification, quarantine.
		{"GET /v1/audit", s.audit},
		{"POST /v1/audit/verifications", s.startVerification},
		// API keys (access.go).
		{"POST /v1/keys", s.createKey},
		{"GET /v1/keys", s.listKeys},
		{"POST /v1/keys/{id}/revoke", s.revokeKey},
		// Operations.
		{"GET /healthz", s.healthz},
		{"GET /readyz", s.ready},
		{"GET /metrics", func(w http.ResponseWriter, r *http.Request) { s.MetricsHandler().ServeHTTP(w, r) }},
	} {
		m.HandleFunc(r.pattern, r.handler)
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves the Prometheus metrics without authentication, for
// a listener of their own (OTPLEDGER_METRICS_ADDR).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})
}

// Routes lists the method and pattern of every route, e.g.
// "GET /v1/devices/{vendor}/{serial}" (the OpenAPI file is checked against it).
func Routes() []string {
	var rec recorder
	(&Server{}).routes(&rec)
	return rec
}

type recorder []string

func (r *recorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*r = append(*r, pattern)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]any{"journal": "ok", "store": "ok"}
	code := http.StatusOK
	p := s.probe(ctx)
	last, pos := p.last, p.pos
	if p.lastErr != nil {
		status["journal"], code = "unreachable", http.StatusServiceUnavailable
	}
	if p.posErr != nil {
		status["store"], code = "unreachable", http.StatusServiceUnavailable
	}
	lag := last - min(pos, last) // as consumers.Lag, from the answers above
	status["projection_lag"] = lag
	switch projection := s.projection(pos, lag); projection {
	case "stalled":
		status["projection"], code = projection, http.StatusServiceUnavailable
	default:
		status["projection"] = projection
	}
	if s.cfg.Consuming != nil && !s.cfg.Consuming() {
		status["projection"], code = "not consuming", http.StatusServiceUnavailable
	}
	// A quarantined message is an event no view shows: reported, with the
	// command to list them, but not a reason to take a writer out of service.
	switch q := p.quarantined; {
	case p.qErr != nil:
		status["quarantine"] = "unreadable"
	case q > 0:
		status["quarantine"] = fmt.Sprintf("%d journal messages quarantined: views incomplete (otpledger quarantine list)", q)
		status["quarantined"] = q
	default:
		status["quarantine"] = "ok"
	}
	// A key message whose subject, chain or payload disagree changed no key
	// (access.Keys): a forgery or a replay in the journal, reported here.
	if s.cfg.Keys != nil {
		status["keys"] = "ok"
		if n, _ := s.cfg.Keys.Findings(); n > 0 {
			status["keys"] = fmt.Sprintf("%d key messages refused: subject, chain or payload disagree (otpledger verify)", n)
			status["key_findings"] = n
		}
	}
	if s.cfg.Projecting != nil { // which replica writes the shared views; a standby is as ready
		status["projector"] = map[bool]string{true: "projecting", false: "standing by"}[s.cfg.Projecting()]
	}
	// R-HOURS: a year whose closing days the policy does not know is
	// reported, here and once in the log, not silently treated as open.
	cal := s.cfg.Ledger.Policy().Calendar(s.cfg.Ledger.Now())
	status["calendar"] = struct {
		aggregates.CalendarState
		Warning string `json:"warning,omitempty"`
	}{cal, cal.Warning()}
	if !cal.Known && s.calendarWarned.Swap(int64(cal.Year)) != int64(cal.Year) {
		s.cfg.Logger.WarnContext(ctx, cal.Warning())
	}
	writeJSON(w, code, status)
}

// readyFresh is how long /readyz reuses what it asked the journal and the
// store: it needs no credentials, so without it every request would cost
// the store (PostgreSQL when views are shared) three reads.
const readyFresh = 250 * time.Millisecond

// readiness is what /readyz asks the journal and the store.
type readiness struct {
	at                    time.Time
	last, pos             uint64
	quarantined           int
	lastErr, posErr, qErr error
}

// probe returns what the journal and the store answered within readyFresh,
// asking them again when it is older; concurrent requests share one asking.
func (s *Server) probe(ctx context.Context) readiness {
	s.probed.Lock()
	defer s.probed.Unlock()
	if p := s.probed.last; !p.at.IsZero() && time.Since(p.at) < readyFresh {
		return p
	}
	var p readiness
	p.last, p.lastErr = s.cfg.Journal.LastSequence(ctx)
	p.pos, p.posErr = s.cfg.Views.Position(ctx)
	q, err := s.cfg.Views.Quarantine(ctx)
	p.quarantined, p.qErr, p.at = len(q), err, time.Now()
	s.probed.last = p
	return p
}

// projection says how the views keep up: "current" within MaxReadyLag of
// the journal, "catching up" beyond it while their position moves, "stalled"
// beyond it with the position unchanged for StallAfter.
func (s *Server) projection(pos, lag uint64) string {
	s.moved.Lock()
	defer s.moved.Unlock()
	now := time.Now()
	if pos != s.moved.pos || s.moved.since.IsZero() {
		s.moved.pos, s.moved.since = pos, now
	}
	switch {
	case lag <= s.cfg.MaxReadyLag:
		return "current"
	case now.Sub(s.moved.since) < s.cfg.StallAfter:
		return "catching up"
	}
	return "stalled"
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument counts and times requests by route pattern (never by path,
// which holds customer numbers) and recovers from panics.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r, span := startRequest(r)
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Logger.ErrorContext(r.Context(), "panic in handler", slog.String("route", r.Pattern), slog.Any("panic", p))
				s.fail(sw, r, errors.New("panic"))
			}
			route := r.Pattern
			if route == "" || route == "/" {
				route = "unmatched"
			}
			endRequest(span, route, sw.status)
			s.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			s.cfg.Logger.DebugContext(r.Context(), "request", slog.String("route", route), slog.Int("status", sw.status),
				slog.Duration("took", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}
