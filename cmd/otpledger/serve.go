package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/embedded"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/console"
	"github.com/otpledger/otpledger/internal/httpapi"
	"github.com/otpledger/otpledger/internal/progress"
	"github.com/otpledger/otpledger/projections"
	"github.com/otpledger/otpledger/schema"
)

// node is a running ledger's adapters.
type node struct {
	cfg      *config
	log      *slog.Logger
	embedded *embedded.Server
	nc       *nats.Conn
	j        *journal.Journal
	pool     *pgxpool.Pool
	store    interface {
		projections.Reader
		projections.Writer
	}
	memory *projections.Memory // the store, when in memory
	lease  *consumers.Lease    // the projector's lease, when the views are shared (PostgreSQL)
	// projector is the one running in this process (nil: none now).
	projector atomic.Pointer[consumers.Projector]
}

// journalUse is what a command does with the journal.
type journalUse int

const (
	// writes: serve, project, import. On the embedded default it needs the
	// data directory to itself.
	writes journalUse = iota
	// reads: the audit commands. Beside a running embedded serve (which holds
	// the data directory) they read through its server with the read-only
	// credentials it left there; they never create a stream.
	reads
)

// openJournal connects to (or starts) NATS and opens the journal.
func openJournal(ctx context.Context, cfg *config, log *slog.Logger, mode journalUse) (*node, error) {
	n, err := connect(cfg, log, mode)
	if err != nil {
		return nil, err
	}
	j, err := journal.Open(ctx, n.nc, journal.Config{Durability: cfg.durabilityMode(), ReadOnly: mode == reads})
	if err != nil {
		n.close()
		return nil, err
	}
	n.j = j
	return n, nil
}

// connect connects to the external NATS, or starts the embedded server
// (or, to read beside a running serve, dials it read-only).
func connect(cfg *config, log *slog.Logger, mode journalUse) (*node, error) {
	n := &node{cfg: cfg, log: log}
	switch {
	case !cfg.embedded():
		var opts []nats.Option
		if mode == reads { // an auditor may subscribe only to the reader's inboxes (deploy/nats/accounts.conf)
			opts = append(opts, nats.CustomInboxPrefix(journal.ReaderInbox))
		}
		nc, err := n.dial(opts...)
		if err != nil {
			return nil, err
		}
		n.nc = nc
	default:
		e, err := embedded.Run(embedded.Config{DataDir: cfg.dataDir, Listen: cfg.natsListen, Durability: cfg.durabilityMode()})
		switch {
		case errors.Is(err, embedded.ErrLocked) && mode == reads:
			if n.nc, err = embedded.DialReader(cfg.dataDir, "otpledger-reader"); err != nil {
				return nil, err
			}
			log.Info("reading through the running serve's server (read-only)", slog.String("data_dir", cfg.dataDir))
		case err != nil:
			return nil, err
		default:
			n.embedded, n.nc = e, e.Conn
			log.Info("embedded NATS started", slog.String("store", cfg.dataDir), slog.String("durability", string(cfg.durabilityMode())),
				slog.String("listen", e.ClientURL()))
		}
	}
	return n, nil
}

// memoryViewsGOGC is the garbage collector's GOGC when the views are in
// memory and the environment sets none: the heap is then mostly the views,
// long-lived and growing only with the stream, and Go's default (100) let it
// double between collections — at 1M messages a fold peaked at ~1,100 MiB
// for ~550 MB of views; at 60 the peak is ~790 MiB, the fold as fast within
// the machine's noise (README, Benchmarks).
const memoryViewsGOGC = 60

// open opens the journal and the views: PostgreSQL (migrated) when
// configured, else memory rebuilt from the stream with a progress bar.
func open(ctx context.Context, cfg *config, log *slog.Logger, stderr io.Writer, mode journalUse) (*node, error) {
	n, err := openJournal(ctx, cfg, log, mode)
	if err != nil {
		return nil, err
	}
	if cfg.databaseURL != "" {
		if n.pool, err = projections.OpenPool(ctx, cfg.databaseURL); err != nil {
			n.close()
			return nil, err
		}
		applied, err := schema.Migrate(ctx, n.pool)
		if err != nil {
			n.close()
			return nil, err
		}
		log.Info("projection store ready", slog.String("store", "postgres"), slog.Int("migrations_applied", len(applied)))
		n.store, n.lease = projections.NewPostgres(n.pool), &consumers.Lease{Pool: n.pool}
		return n, nil
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(memoryViewsGOGC)
	}
	start := time.Now()
	if err := n.memoryViews(ctx, stderr); err != nil {
		n.close()
		return nil, err
	}
	pos, _ := n.memory.Position(ctx)
	log.Info("projection store ready", slog.String("store", "memory"), slog.Uint64("position", pos), slog.String("took", time.Since(start).String()))
	return n, nil
}

// memoryViews loads the views from the data directory's snapshot (checked
// against the stream, then brought up to its end), or, when there is none
// or it does not check, folds the whole stream.
func (n *node) memoryViews(ctx context.Context, stderr io.Writer) error {
	bar := progress.New(stderr, "catching the views' snapshot up")
	m, err := consumers.LoadSnapshot(ctx, n.j, n.cfg.dataDir, bar.Update)
	bar.Finish()
	if err == nil {
		n.memory, n.store = m, m
		n.log.Info("views loaded from a snapshot", slog.String("dir", n.cfg.dataDir))
		return nil
	}
	if !errors.Is(err, consumers.ErrNoSnapshot) {
		n.log.Warn("views' snapshot ignored: folding the stream", slog.String("reason", err.Error()))
	}
	n.memory = projections.NewMemory()
	n.store = n.memory
	bar = progress.New(stderr, "rebuilding views in memory")
	defer bar.Finish()
	return consumers.RebuildMemory(ctx, n.j, n.memory, bar.Update)
}

// saveViews writes the memory views' snapshot into the data directory, for
// the next start.
func (n *node) saveViews() {
	if n.memory == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := os.MkdirAll(n.cfg.dataDir, 0o700)
	if err == nil {
		err = consumers.SaveSnapshot(ctx, n.j, n.memory, n.cfg.dataDir)
	}
	if err != nil {
		n.log.Warn("views' snapshot not saved", slog.String("error", err.Error()))
		return
	}
	n.log.Info("views' snapshot saved", slog.String("dir", n.cfg.dataDir))
}

// dial opens a new NATS connection: in process to the embedded server, or
// to the external URL with the configured credentials and extra.
func (n *node) dial(extra ...nats.Option) (*nats.Conn, error) {
	if n.embedded != nil {
		return n.embedded.Connect("otpledger-projector")
	}
	opts := append([]nats.Option{nats.Name("otpledger"), nats.MaxReconnects(-1)}, extra...)
	if n.cfg.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(n.cfg.natsCreds))
	}
	nc, err := nats.Connect(n.cfg.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect NATS: %w", err)
	}
	return nc, nil
}

func (n *node) close() {
	if n.pool != nil {
		n.pool.Close()
	}
	if n.embedded != nil {
		n.embedded.Close() // drains the connection and flushes the store
	} else if n.nc != nil {
		_ = n.nc.Drain()
	}
}

// project runs the projector until ctx ends: at once over views in memory,
// and over PostgreSQL only while this replica holds the projector's lease
// (standing by until then, and again after losing it).
func (n *node) project(ctx context.Context) error {
	if n.pool == nil { // views in this process's memory: its own projector
		return n.projectLoop(ctx)
	}
	// Views in PostgreSQL, shared by every replica: one projects at a time.
	for ctx.Err() == nil {
		n.log.Info("projector standing by for the lease")
		err := n.lease.Run(ctx, func(ctx context.Context) error {
			n.log.Info("projector lease held: projecting")
			return n.projectLoop(ctx)
		})
		if err != nil {
			n.log.Warn("projector lease ended", slog.String("error", err.Error()))
		}
	}
	return nil
}

// projecting reports, for /readyz and the metrics, whether this replica
// writes the shared views; nil when the views are its own or it runs no
// projector.
func (n *node) projecting() func() bool {
	if n.lease == nil || !n.cfg.projector {
		return nil
	}
	return n.lease.Held
}

// consuming reports, for /readyz, whether the projector this replica runs
// consumes the journal; a standby for shared views has none to run. nil
// when this process runs no projector.
func (n *node) consuming() func() bool {
	if !n.cfg.projector {
		return nil
	}
	return func() bool {
		if n.lease != nil && !n.lease.Held() {
			return true
		}
		p := n.projector.Load()
		return p != nil && p.Consuming()
	}
}

// projectLoop runs projectors until ctx ends; a projector that stops (its
// store reported a gap, or NATS failed) is replaced by a new one starting at
// the store's checkpoint, with backoff.
func (n *node) projectLoop(ctx context.Context) error {
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 10*time.Second) {
		nc, err := n.dial()
		if err == nil {
			var j *journal.Journal
			var p *consumers.Projector
			if j, err = journal.Open(ctx, nc, journal.Config{Durability: n.cfg.durabilityMode()}); err == nil {
				// Views in memory are this process's own: an ephemeral consumer,
				// never the durable that another replica's views consume.
				if p, err = consumers.NewProjector(consumers.ProjectorConfig{Journal: j, Store: n.store, Ephemeral: n.pool == nil}); err == nil {
					n.projector.Store(p)
					err = p.Run(ctx)
					n.projector.CompareAndSwap(p, nil)
				}
			}
			nc.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		n.log.Warn("projector stopped; restarting at the checkpoint", slog.String("error", errString(err)), slog.Duration("in", backoff))
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	return nil
}

// checkpoint appends a signed checkpoint every interval while the stream
// grows, and once more at shutdown.
func (n *node) checkpoint(ctx context.Context, key ed25519.PrivateKey) {
	sign := func(ctx context.Context) {
		// Bounded: a scan begun just before the cluster went away must not
		// hold the next checkpoints back for long after it is back.
		ctx, cancel := context.WithTimeout(ctx, max(n.cfg.cpInterval, 10*time.Second))
		defer cancel()
		if ok, err := consumers.AppendCheckpoint(ctx, n.j, key); err != nil {
			n.log.Warn("checkpoint failed", slog.String("error", err.Error()))
		} else if ok {
			n.log.Debug("checkpoint appended")
		}
	}
	t := time.NewTicker(n.cfg.cpInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			sign(final)
			cancel()
			return
		case <-t.C:
			sign(ctx)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs the ledger until SIGINT or SIGTERM: it stops accepting, lets
// requests in flight finish, stops the projector, flushes and returns nil.
func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(cfg.logLevel, stderr)
	pol, err := cfg.policy()
	if err != nil {
		return err
	}
	stopTracing, err := tracing(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stopTracing(context.WithoutCancel(ctx)) }()
	fp, err := cfg.fingerprinter()
	if err != nil {
		return err
	}
	cpKey, err := cfg.checkpointKey()
	if err != nil {
		return err
	}
	n, err := open(ctx, cfg, log, stderr, writes)
	if err != nil {
		return err
	}
	defer n.close()
	l, err := ledger.New(n.j, ledger.Config{Policy: pol})
	if err != nil {
		return err
	}
	if w := pol.Calendar(l.Now()).Warning(); w != "" {
		log.Warn(w) // R-HOURS; /readyz says the same
	}
	auth, err := authenticator(ctx, cfg, n.j, l.Now, stdout, log)
	if err != nil {
		return err
	}
	build, _ := buildInfo()
	var pub ed25519.PublicKey
	if cpKey != nil {
		pub = cpKey.Public().(ed25519.PublicKey)
	}
	verifier := consumers.NewVerifier(ctx, n.j, pub)
	if cfg.verifyEvery > 0 {
		go verifier.Every(ctx, cfg.verifyEvery)
	}
	api, err := httpapi.New(httpapi.Config{Ledger: l, Views: n.store, Fingerprinter: fp, Home: cfg.home, Logger: log, Build: build,
		Auth: auth, Keys: auth.Keys, LookupsPerMinute: cfg.lookupsPerMinute, Projecting: n.projecting(),
		Journal: n.j, Verifier: verifier, Consuming: n.consuming(),
	})
	if err != nil {
		return err
	}
	pages, err := consolePages(ctx, api, auth, cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: withConsole(pages, api), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	lis, err := cfg.listen(srv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "otpledger listening on %s\n", serverURL(lis, srv))
	log.Info("serving", slog.String("addr", lis.Addr().String()), slog.String("home", cfg.home),
		slog.Bool("embedded_nats", cfg.embedded()), slog.Bool("postgres", cfg.databaseURL != ""))
	err = runServers(ctx, cfg, log, n, api, srv, lis, cpKey)
	n.saveViews()
	return err
}

// consolePages is the branch console, reaching the ledger only through the
// API's handler; with the OIDC client secret and the console's address it
// offers sign-in at the issuer.
func consolePages(ctx context.Context, api *httpapi.Server, auth *access.Authenticator, cfg *config) (http.Handler, error) {
	if err := consolePlainHTTP(cfg); err != nil {
		return nil, err
	}
	proxies, err := consoleProxies(cfg.consoleProxies)
	if err != nil {
		return nil, err
	}
	ccfg := console.Config{API: api.Handler(), Auth: auth, IdleTimeout: cfg.consoleIdle, MaxLifetime: cfg.consoleLifetime,
		PlainHTTP: cfg.consolePlainHTTP, TrustedProxies: proxies}
	if cfg.oidcSecretFile != "" {
		o, ok := auth.OIDC.(*access.OIDC)
		if !ok || cfg.consoleURL == "" {
			return nil, errors.New("console sign-in at the issuer needs OTPLEDGER_OIDC_ISSUER and OTPLEDGER_CONSOLE_URL beside the client secret")
		}
		secret, err := os.ReadFile(cfg.oidcSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oidc client secret: %w", err) // names the file, never its content
		}
		ccfg.OIDC = o.CodeFlow(strings.TrimSpace(string(secret)), strings.TrimSuffix(cfg.consoleURL, "/")+"/console/oidc/callback")
	}
	c := console.New(ccfg)
	go c.SweepEvery(ctx, time.Minute)
	return c.Handler(), nil
}

// consolePlainHTTP refuses cookies without Secure unless the console is
// served over plain HTTP on a loopback address: anywhere else a browser
// reaches it through TLS terminated in front (or serve's own), and a
// cookie without Secure would also travel over any plain http:// request
// to the host.
func consolePlainHTTP(cfg *config) error {
	if !cfg.consolePlainHTTP {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.httpAddr)
	a, perr := netip.ParseAddr(host)
	if cfg.tlsCert != "" || err != nil || host != "localhost" && (perr != nil || !a.IsLoopback()) {
		return errors.New("OTPLEDGER_CONSOLE_PLAIN_HTTP: console cookies without Secure only on a loopback OTPLEDGER_HTTP_ADDR without TLS")
	}
	return nil
}

// consoleProxies parses the trusted proxies: addresses or CIDRs,
// comma-separated.
func consoleProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if a, aerr := netip.ParseAddr(f); err != nil && aerr == nil {
			p, err = a.Prefix(a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("OTPLEDGER_CONSOLE_TRUSTED_PROXIES: %q is neither an address nor a CIDR", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// withConsole serves the branch console at /console/ beside the API.
func withConsole(pages http.Handler, api *httpapi.Server) http.Handler {
	rest := api.Handler()
	// By prefix, not a second ServeMux: that would clean and redirect the
	// API's paths before its own path checks see them.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console/") {
			pages.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// runServers serves HTTP (and metrics on their own listener), projects and
// signs checkpoints until ctx ends or one of them fails, then shuts HTTP
// down within the grace period.
func runServers(ctx context.Context, cfg *config, log *slog.Logger, n *node, api *httpapi.Server, srv *http.Server, lis net.Listener, cpKey ed25519.PrivateKey) error {
	g, gctx := errgroup.WithContext(ctx)
	if cfg.metricsAddr != "" {
		mlis, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listen: %w", err)
		}
		msrv := &http.Server{Handler: api.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := msrv.Serve(mlis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error { <-gctx.Done(); return msrv.Close() })
	}
	g.Go(func() error {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if cfg.projector {
		g.Go(func() error { return n.project(gctx) })
	}
	if cpKey != nil {
		g.Go(func() error { n.checkpoint(gctx, cpKey); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownGrace)
		defer cancel()
		log.Info("shutting down: finishing requests in flight")
		return srv.Shutdown(shutdownCtx)
	})
	err := g.Wait()
	log.Info("stopped", slog.String("error", errString(err)))
	return err
}

// authenticator opens the API keys (creating the bootstrap admin key on
// first start and printing where its token is) and, when configured, the
// OIDC verifier.
func authenticator(ctx context.Context, cfg *config, j *journal.Journal, now func() time.Time, stdout io.Writer, log *slog.Logger) (*access.Authenticator, error) {
	keys, err := access.OpenKeys(ctx, j, cfg.home, now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, err
	}
	if path, err := keys.Bootstrap(ctx, cfg.dataDir); err != nil {
		return nil, err
	} else if path != "" {
		// The path, never the token: whoever may read the data directory may administer keys.
		fmt.Fprintf(stdout, "first start: the admin token is in %s (create keys with it: otpledger keys create --help)\n", path)
		log.Info("bootstrap admin key created", slog.String("token_file", path))
	}
	auth := &access.Authenticator{Keys: keys}
	if cfg.oidcIssuer != "" {
		if auth.OIDC, err = access.NewOIDC(ctx, cfg.oidcIssuer, cfg.oidcAudience, cfg.oidcRoleClaim); err != nil {
			return nil, err
		}
	}
	return auth, nil
}

// listen opens the HTTP listener, with TLS (and client certificates) when
// configured, setting srv's TLS configuration.
func (c *config) listen(srv *http.Server) (net.Listener, error) {
	lis, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if c.tlsCert != "" || c.tlsKey != "" || c.tlsClientCA != "" {
		if srv.TLSConfig, err = c.tlsConfig(); err != nil {
			lis.Close()
			return nil, err
		}
		lis = tls.NewListener(lis, srv.TLSConfig)
	}
	return lis, nil
}

func serverURL(lis net.Listener, srv *http.Server) string {
	if srv.TLSConfig != nil {
		return "https://" + lis.Addr().String()
	}
	return "http://" + lis.Addr().String()
}

// tlsConfig loads the server certificate and, with a client CA, requires
// and verifies client certificates (mutual TLS).
func (c *config) tlsConfig() (*tls.Config, error) {
	if c.tlsCert == "" || c.tlsKey == "" {
		return nil, errors.New("TLS needs both OTPLEDGER_TLS_CERT and OTPLEDGER_TLS_KEY")
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.tlsClientCA != "" {
		pem, err := os.ReadFile(c.tlsClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("TLS client CA: no PEM certificate in the file")
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// project runs only the projector (external NATS and PostgreSQL).
func projectOnly(ctx context.Context, cfg *config, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.embedded() || cfg.databaseURL == "" {
		return errors.New("project: needs OTPLEDGER_NATS_URL and OTPLEDGER_DATABASE_URL (the embedded default projects inside serve)")
	}
	log := newLogger(cfg.logLevel, stderr)
	n, err := open(ctx, cfg, log, stderr, writes)
	if err != nil {
		return err
	}
	defer n.close()
	log.Info("projecting", slog.String("stream", n.j.Stream()))
	return n.project(ctx)
}
