package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/otpledger/otpledger/consumers"
)

// BuildInfo names the running binary (otpledger_build_info).
type BuildInfo struct {
	Version, Revision, GoVersion string
}

// registerMetrics registers the server's metrics (deploy/grafana's dashboard
// reads them): requests and latency by route, refusals by rule, the
// ledger's appends and conflicts, the views' lag in messages and seconds,
// quarantined messages, the last checkpoint's age, the projector's lease,
// the build, and the Go runtime's and the process's own.
func (s *Server) registerMetrics() {
	cfg := s.cfg
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpledger_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "otpledger_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"route"})
	s.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "otpledger_refusals_total",
		Help: "Commands refused by a rule of the manual, by rule id (domain.md §4)."}, []string{"rule"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "otpledger_build_info", Help: "1, labelled with the binary's version, VCS revision and Go version."},
		[]string{"version", "revision", "goversion"})
	build.WithLabelValues(cfg.Build.Version, cfg.Build.Revision, cfg.Build.GoVersion).Set(1)
	ctx := context.Background()
	cfg.Registry.MustRegister(s.requests, s.latency, s.refusals, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "otpledger_appends_total", Help: "Journal appends (messages or batches)."},
			func() float64 { return float64(cfg.Ledger.Stats().Appends) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "otpledger_append_conflicts_total", Help: "Appends refused by compare-and-set and retried."},
			func() float64 { return float64(cfg.Ledger.Stats().Conflicts) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_projection_lag", Help: "Stream last sequence minus the views' checkpoint."},
			func() float64 { lag, _ := consumers.Lag(ctx, cfg.Journal, cfg.Views); return float64(lag) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_projection_lag_seconds",
			Help: "How long the oldest message the views have not applied has been in the stream; 0 when they are current."},
			func() float64 { return s.lagSeconds(ctx) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_checkpoint_age_seconds",
			Help: "Seconds since the last signed checkpoint was appended (any replica's); -1 when there is none."},
			func() float64 { return s.checkpointAge(ctx) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_quarantined_messages", Help: "Journal messages the views set aside (undecodable or refused): events missing from every view."},
			func() float64 { q, _ := cfg.Views.Quarantine(ctx); return float64(len(q)) }),
	)
	if cfg.Keys != nil {
		cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_key_findings",
			Help: "Key messages the key follower refused (subject, chain or payload disagree): forgeries or replays, no key."},
			func() float64 { n, _ := cfg.Keys.Findings(); return float64(n) }))
	}
	if cfg.Projecting != nil {
		cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "otpledger_projector_leader",
			Help: "1 while this replica's projector holds the lease on the shared views, 0 while it stands by."},
			func() float64 {
				if cfg.Projecting() {
					return 1
				}
				return 0
			}))
	}
}

// lagSeconds is the age of the first message after the views' checkpoint.
func (s *Server) lagSeconds(ctx context.Context) float64 {
	pos, err := s.cfg.Views.Position(ctx)
	if err != nil {
		return 0
	}
	m, err := s.cfg.Journal.Get(ctx, pos+1)
	if err != nil { // none: the views are current
		return 0
	}
	return time.Since(m.Time).Seconds()
}

// checkpointAge is how long ago the last checkpoint was stored.
func (s *Server) checkpointAge(ctx context.Context) float64 {
	m, ok, err := s.cfg.Journal.LastCheckpoint(ctx)
	if err != nil || !ok {
		return -1
	}
	return time.Since(m.Time).Seconds()
}
