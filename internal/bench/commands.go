package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/embedded"
	"github.com/otpledger/otpledger/events/journal/journalbench"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/internal/fixture"
	"github.com/otpledger/otpledger/internal/httpapi"
	"github.com/otpledger/otpledger/internal/streamgen"
)

const producers = 8

var (
	authMeta   = aggregates.Meta{Institution: home, Channel: events.ChannelAuth, Actor: events.Actor{Role: events.RoleSystem, ID: "AUTH"}}
	centerMeta = aggregates.Meta{Institution: "KB001", Channel: events.ChannelCenter, OriginChannel: events.OriginOnline,
		Actor: events.Actor{Role: events.RoleSystem, ID: "CENTER"}}
	branchMeta = aggregates.Meta{Institution: home, Channel: events.ChannelBranch, Actor: events.Actor{Role: events.RoleSelf, ID: "CUST"},
		Staff: "S1", Documents: []events.Document{events.DocRealNameID, events.DocProcessingForm, events.DocSealOrSignature}}
)

func poolSerial(prefix string, i int) string { return fmt.Sprintf("%s%07d", prefix, i) }

// registerDevices registers n devices (prefix + number) at the centre
// institution KB001 through l.
func registerDevices(ctx context.Context, l *ledger.Ledger, prefix string, n int) error {
	_, err := measure(ctx, producers, n, func(ctx context.Context, _, i int) error {
		_, err := l.Device(ctx, "OTP", poolSerial(prefix, i), aggregates.Register{Meta: centerMeta})
		return err
	})
	return err
}

// increment is one error increment on a registered device — or, when the
// device is locked (R-HW-LOCK), the centre's reset that unlocks it: one
// single-aggregate command either way. It returns the stream sequence of
// the command's message.
func increment(ctx context.Context, l *ledger.Ledger, serial string) (uint64, error) {
	a, err := l.Device(ctx, "OTP", serial, aggregates.IncrementError{Meta: authMeta})
	if aggregates.RuleOf(err) == aggregates.RuleHWLock {
		a, err = l.Device(ctx, "OTP", serial, aggregates.ResetErrors{Meta: centerMeta})
	}
	if err != nil {
		return 0, err
	}
	return a.Events[len(a.Events)-1].Sequence, nil
}

// ownDevice spreads worker w's i-th operation over the devices w, w+workers,
// w+2·workers, … of the pool, so that workers do not contend.
func ownDevice(prefix string, pool, workers, w, i int) string {
	return poolSerial(prefix, (i/workers*workers+w)%pool)
}

// rawMessage returns the message the ledger writes for an error increment
// on subject: the same body and a state header of the same shape. The raw
// baselines publish it, so that they measure the server on the same bytes
// and the ratio measures what the ledger adds.
func rawMessage(subject string) *nats.Msg {
	at := fixture.BusinessHours
	e := events.Event{ID: uuid.New(), OccurredAt: at, RecordedAt: at, Aggregate: events.DeviceRef("RAW", "RAWSERIAL01"),
		Institution: home, Channel: events.ChannelAuth, Actor: authMeta.Actor, Payload: events.ErrorIncremented{CountAfter: 1}}
	chained, head, _ := events.Chain("", []events.Event{e})
	data, _ := events.EncodeCommit(events.Commit{Events: chained})
	d := aggregates.NewDevice("RAW", "RAWSERIAL01")
	d.Registrations = map[string]aggregates.Registration{"KB001": {Since: at}}
	state, _ := ledger.Snapshot(d.Evolve(chained[0]), head)
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(journal.StateHeader, string(state))
	return m
}

// rawCAS returns an operation publishing rawMessage with the expected last
// sequence of its subject (compare-and-set, as the ledger appends), over
// 1,000 subjects per worker.
func rawCAS(raw *journalbench.Raw, workers int, run string) op {
	last := make([]map[int]uint64, workers)
	for w := range last {
		last[w] = map[int]uint64{}
	}
	return func(ctx context.Context, w, i int) error {
		k := i % 1000
		msg := rawMessage(fmt.Sprintf("otpledger.device.RAW.R%sW%dK%d", run, w, k))
		seq, err := raw.CAS(ctx, msg, last[w][k])
		if err == nil {
			last[w][k] = seq
		}
		return err
	}
}

// runTag is a tag unique to each run of each row in the benchmark's stream
// (subjects, serials, customer numbers).
func (e *env) runTag() string { return fmt.Sprintf("T%d", e.runs.Add(1)) }

// pair measures the ledger and its baselines the configured number of
// times, interleaved, and returns their figures.
func (e *env) pair(ctx context.Context, unit string, ops ...func(ctx context.Context) (sample, error)) ([]Figure, error) {
	s, err := runs(ctx, e.cfg.Runs, ops...)
	if err != nil {
		return nil, err
	}
	out := make([]Figure, len(s))
	for i := range s {
		out[i] = figure("", unit, s[i])
	}
	return out, nil
}

// rateRow builds a row whose ratio is the ledger's rate over the first
// baseline's, with a target on the ratio and optionally on the ledger's p99.
func rateRow(workload string, f []Figure, names []string, minRatio float64, maxP99 time.Duration) Row {
	r := Row{Workload: workload, Ledger: f[0]}
	for i, b := range f[1:] {
		b.Name = names[i]
		r.Baselines = append(r.Baselines, b)
	}
	r.Ratio = f[0].Median / f[1].Median
	r.Target = fmt.Sprintf("≥ %.1f× %s", minRatio, names[0])
	r.Met = r.Ratio >= minRatio
	if maxP99 > 0 {
		r.Target += ", p99 ≤ " + dur(maxP99)
		r.Met = r.Met && f[0].P99 <= maxP99
	}
	return r
}

// commands: single-aggregate commands (error increments) through the
// ledger in process, 8 producers, against raw CAS publishes.
func (e *env) commands(ctx context.Context) ([]Row, error) {
	n := e.sz.commands
	f, err := e.pair(ctx, "ev/s",
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, func(ctx context.Context, w, i int) error {
				_, err := increment(ctx, e.l, ownDevice("B", e.sz.pool, producers, w, i))
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, rawCAS(e.raw, producers, e.runTag()))
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("single-aggregate commands, 8 producers, in process", f, []string{"raw JetStream CAS publish"}, 0.8, 5*time.Millisecond)
	row.Note = "error increments (a locked device's centre reset counts as the command) on warm devices; the raw publishes carry the same body and state header"
	return []Row{row}, nil
}

// httpCommands: the same commands over HTTP from 64 keep-alive clients,
// against raw CAS publishes and a plain-PostgreSQL event table.
func (e *env) httpCommands(ctx context.Context) ([]Row, error) {
	const clients = httpClients
	api, err := e.startAPI(ctx, false)
	if err != nil {
		return nil, err
	}
	defer api.stop()
	open, err := e.startAPI(ctx, true)
	if err != nil {
		return nil, err
	}
	defer open.stop()
	pg, err := e.plainStore(ctx)
	if err != nil {
		return nil, err
	}
	n := e.sz.http
	commands := func(api benchAPI) func(ctx context.Context) (sample, error) {
		return httpIncrements(api, "B", e.sz.pool, clients, n, nil)
	}
	f, err := e.pair(ctx, "req/s", commands(api),
		func(ctx context.Context) (sample, error) {
			return measure(ctx, clients, n, rawCAS(e.raw, clients, e.runTag()))
		},
		func(ctx context.Context) (sample, error) { return pg.measure(ctx, clients, n, "on", e.runTag()) },
		func(ctx context.Context) (sample, error) { return pg.measure(ctx, clients, n, "off", e.runTag()) })
	if err != nil {
		return nil, err
	}
	row := rateRow("same over HTTP, 64 keep-alive clients, API key", f, []string{"raw JetStream CAS publish",
		"plain-PostgreSQL event table (synchronous_commit on)", "same, synchronous_commit off"}, 0.6, 0)
	pgRatio := f[0].Median / f[2].Median
	row.Target += ", ≥ 5× the plain-PostgreSQL store"
	row.Met = row.Met && pgRatio >= 5
	row.Note = fmt.Sprintf("%.2f× the plain-PostgreSQL table (%.2f× with synchronous_commit off, the durability closest to the journal's interval mode); "+
		"its baseline is one INSERT per event of the same body and state with the version known to the client, no decision, no HTTP", pgRatio, f[0].Median/f[3].Median)
	// Authentication's cost on its own: the two servers measured back to
	// back, alternately, so that the stream and the machine are the same.
	a, err := e.pair(ctx, "req/s", commands(api), commands(open))
	if err != nil {
		return nil, err
	}
	a[1].Name = "the same requests, authentication replaced by a fixed identity"
	auth := Row{Workload: "authentication: the HTTP commands with an API key per request", Ledger: a[0], Baselines: []Figure{a[1]},
		Ratio: a[0].Median / a[1].Median, Target: "≥ 0.9× without authentication (it costs ≤ 10 %)", Met: a[0].Median >= 0.9*a[1].Median,
		Note: fmt.Sprintf("authentication costs %.1f %% of the throughput: a SHA-256 of the bearer token and a map look-up under a read lock", 100*(1-a[0].Median/a[1].Median))}
	return []Row{row, auth}, nil
}

// httpClients is how many keep-alive clients the HTTP command rows run.
const httpClients = 64

// httpIncrements is a load of error increments over HTTP from clients
// keep-alive clients, each on devices of its own among pool (prefix); a
// locked device's centre reset counts as the command. acked, when not nil,
// is told the i-th command's sequence as its answer arrives.
func httpIncrements(api benchAPI, prefix string, pool, clients, n int, acked func(i int, seq uint64)) func(ctx context.Context) (sample, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 30 * time.Second}
	increment := []byte(`{"channel":"AUTH","actor":{"role":"SYSTEM"}}`)
	reset := []byte(`{"institution":"KB001","channel":"CENTER","origin_channel":"ONLINE","actor":{"role":"SYSTEM"}}`)
	post := func(ctx context.Context, path string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.base+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		api.authorize(req, api.producer)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	return func(ctx context.Context) (sample, error) {
		return measure(ctx, clients, n, func(ctx context.Context, w, i int) error {
			path := "/v1/devices/OTP/" + ownDevice(prefix, pool, clients, w, i) + "/errors"
			status, body, err := post(ctx, path, increment)
			if err == nil && status >= 400 && bytes.Contains(body, []byte(aggregates.RuleHWLock)) {
				status, body, err = post(ctx, path+"/reset", reset)
			}
			if err == nil && status >= 300 {
				err = fmt.Errorf("POST %s: %d %s", path, status, body)
			}
			if err == nil && acked != nil {
				var answer client.Answer
				if err = json.Unmarshal(body, &answer); err == nil {
					acked(i, answer.Last())
				}
			}
			return err
		})
	}
}

// benchAPI is the HTTP API on a loopback port and the tokens of its
// benchmark principals: a producer of AUTH and CENTER, and an auditor.
type benchAPI struct {
	base              string
	producer, auditor string
	stop              func()
}

// authorize sets the bearer token, when the API has tokens.
func (a benchAPI) authorize(r *http.Request, token string) {
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
}

// fixedIdentity stands in for authentication in the baseline of its cost:
// POSTs as the producer, GETs as the auditor, with no credentials read.
type fixedIdentity struct{}

func (fixedIdentity) Authenticate(r *http.Request) (access.Identity, error) {
	if r.Method == http.MethodGet {
		return access.Identity{Principal: events.Principal{ID: "BENCHAUD", Role: events.RoleAuditor, Method: events.MethodAPIKey}}, nil
	}
	return access.Identity{Principal: events.Principal{ID: "BENCH", Role: events.RoleProducer, Method: events.MethodAPIKey},
		Channels: []events.Channel{events.ChannelAuth, events.ChannelCenter}}, nil
}

// startAPI serves the HTTP API over the benchmark's ledger and the
// PostgreSQL views on a loopback port, authenticating API keys, or, when
// open, with every request taken as one of the benchmark's principals.
func (e *env) startAPI(ctx context.Context, open bool) (benchAPI, error) {
	return e.startAPIOn(ctx, e.l, e.j, open)
}

// startAPIOn is [env.startAPI] over ledger l on journal j.
func (e *env) startAPIOn(ctx context.Context, l *ledger.Ledger, j *journal.Journal, open bool) (benchAPI, error) {
	fp, err := pii.NewFingerprinter(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		return benchAPI{}, err
	}
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	keys, err := access.OpenKeys(kctx, j, home, time.Now)
	if err != nil {
		cancel()
		return benchAPI{}, err
	}
	out := benchAPI{}
	var auth httpapi.Authenticator = fixedIdentity{}
	if !open {
		auth = &access.Authenticator{Keys: keys}
		by := events.Principal{ID: "bench", Role: events.RoleAdmin, Method: events.MethodBootstrap}
		suffix := e.runTag()
		if out.producer, _, err = keys.Create(ctx, by, access.NewKey{ID: "BENCH" + suffix, Role: events.RoleProducer,
			Channels: []events.Channel{events.ChannelAuth, events.ChannelCenter}}); err == nil {
			out.auditor, _, err = keys.Create(ctx, by, access.NewKey{ID: "BENCHAUD" + suffix, Role: events.RoleAuditor})
		}
		if err != nil {
			cancel()
			return benchAPI{}, err
		}
	}
	api, err := httpapi.New(httpapi.Config{Ledger: l, Views: e.store, Fingerprinter: fp, Home: home, Auth: auth, Keys: keys,
		Journal: j})
	if err != nil {
		cancel()
		return benchAPI{}, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return benchAPI{}, err
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	out.base, out.stop = "http://"+lis.Addr().String(), func() { _ = srv.Close(); cancel() }
	return out, nil
}

// plainStore is the event store a team would write on PostgreSQL instead:
// one table, a unique (aggregate, version) constraint for optimistic
// concurrency, the event and the state as jsonb.
type plainStore struct {
	url   string
	body  []byte
	state []byte
}

func (e *env) plainStore(ctx context.Context) (*plainStore, error) {
	u, err := e.database(ctx, "plain")
	if err != nil {
		return nil, err
	}
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE events (
		seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		aggregate text NOT NULL, version bigint NOT NULL,
		data jsonb NOT NULL, state jsonb NOT NULL,
		recorded_at timestamptz NOT NULL DEFAULT now(),
		UNIQUE (aggregate, version))`); err != nil {
		return nil, err
	}
	m := rawMessage("x")
	return &plainStore{url: u, body: m.Data, state: []byte(m.Header.Get(journal.StateHeader))}, nil
}

// measure appends n events over workers connections (opened before the
// clock starts), each the next version of one of 1,000 aggregates per
// worker, with synchronous_commit as given.
func (p *plainStore) measure(ctx context.Context, workers, n int, synchronousCommit, run string) (sample, error) {
	cfg, err := pgxpool.ParseConfig(p.url)
	if err != nil {
		return sample{}, err
	}
	cfg.MaxConns, cfg.MinConns = int32(workers), int32(workers)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = synchronousCommit
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return sample{}, err
	}
	defer pool.Close()
	for pool.Stat().TotalConns() < int32(workers) {
		time.Sleep(time.Millisecond)
	}
	versions := make([]map[int]int64, workers)
	for w := range versions {
		versions[w] = map[int]int64{}
	}
	return measure(ctx, workers, n, func(ctx context.Context, w, i int) error {
		k := i % 1000
		versions[w][k]++
		_, err := pool.Exec(ctx, "INSERT INTO events (aggregate, version, data, state) VALUES ($1, $2, $3, $4)",
			fmt.Sprintf("device.RAW.R%sW%dK%d", run, w, k), versions[w][k], p.body, p.state)
		return err
	})
}

// twoAggregates: home registrations and cancellations (device and customer
// in one atomic batch), 8 producers, against raw 2-message atomic batches.
func (e *env) twoAggregates(ctx context.Context) ([]Row, error) {
	const perWorker = 32
	// profiles creates each worker's customers for one run, untimed.
	profiles := func(ctx context.Context, run string) (func(w, c int) string, error) {
		cust := func(w, c int) string { return fmt.Sprintf("BC%sW%dC%d", run, w, c) }
		_, err := measure(ctx, producers, producers*perWorker, func(ctx context.Context, _, i int) error {
			no := cust(i/perWorker, i%perWorker) // one person per customer number (R-ONE-PERSON), in every run
			_, err := e.l.Customer(ctx, no, aggregates.SetProfile{Meta: branchMeta, Type: events.Individual,
				Nationality: events.Korean, RealNameFP: fmt.Sprintf("%x", sha256.Sum256([]byte(no))), RealNameMasked: "900101-1******"})
			return err
		})
		return cust, err
	}
	n := e.sz.batches
	f, err := e.pair(ctx, "commits/s",
		func(ctx context.Context) (sample, error) {
			run := e.runTag()
			cust, err := profiles(ctx, run)
			if err != nil {
				return sample{}, fmt.Errorf("profiles: %w", err)
			}
			done := make([]int, producers) // each worker's own count: its customers alternate register and cancel
			return measure(ctx, producers, n, func(ctx context.Context, w, _ int) error {
				k := done[w]
				done[w]++
				c, round := k%perWorker, k/perWorker
				serial := fmt.Sprintf("BH%sW%dC%dN%d", run, w, c, round/2)
				var err error
				if round%2 == 0 {
					_, err = e.l.Device(ctx, "OTP", serial, aggregates.Register{Meta: branchMeta, CustomerNo: cust(w, c)})
				} else {
					_, err = e.l.Device(ctx, "OTP", serial, aggregates.Cancel{Meta: branchMeta})
				}
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			t := e.runTag()
			return measure(ctx, producers, n, func(ctx context.Context, w, i int) error {
				return e.raw.NewBatch(ctx, []*nats.Msg{rawMessage(fmt.Sprintf("otpledger.device.RAW.B%sA%d", t, i)), rawMessage(fmt.Sprintf("otpledger.customer.B%sC%d", t, i))})
			})
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("two-aggregate commands (home registration), 8 producers", f, []string{"raw JetStream atomic batch of 2"}, 0.9, 0)
	row.Note = "each producer's 32 customers alternate registering a device at home and cancelling it: every command is one atomic batch of two messages"
	return []Row{row}, nil
}

// fsync: the single-aggregate commands on a server that syncs every write,
// against raw CAS publishes on that server.
func (e *env) fsync(ctx context.Context) ([]Row, error) {
	srv, err := embedded.Run(embedded.Config{DataDir: filepath.Join(e.dir, "fsync"), Durability: journal.Fsync})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	j, err := journal.Open(ctx, srv.Conn, journal.Config{Durability: journal.Fsync})
	if err != nil {
		return nil, err
	}
	raw, err := journalbench.New(srv.Conn, j.Stream())
	if err != nil {
		return nil, err
	}
	l, err := newLedger(j, 0)
	if err != nil {
		return nil, err
	}
	const pool = 512
	if err := registerDevices(ctx, l, "F", pool); err != nil {
		return nil, err
	}
	n := e.sz.fsync
	f, err := e.pair(ctx, "ev/s",
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, func(ctx context.Context, w, i int) error {
				_, err := increment(ctx, l, ownDevice("F", pool, producers, w, i))
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, producers, n, rawCAS(raw, producers, e.runTag()))
		})
	if err != nil {
		return nil, err
	}
	row := rateRow("fsync durability, 8 producers", f, []string{"raw CAS publish, SyncAlways"}, 0.9, 0)
	row.Note = "a second embedded server with SyncAlways (the embedded default's mode), 512 registered devices"
	// The same over HTTP (the embedded default as a producer meets it).
	const clients = httpClients
	api, err := e.startAPIOn(ctx, l, j, false)
	if err != nil {
		return nil, err
	}
	defer api.stop()
	h, err := e.pair(ctx, "req/s", httpIncrements(api, "F", pool, clients, n, nil),
		func(ctx context.Context) (sample, error) {
			return measure(ctx, clients, n, rawCAS(raw, clients, e.runTag()))
		})
	if err != nil {
		return nil, err
	}
	httpRow := rateRow("HTTP commands, 64 keep-alive clients, fsync durability (the embedded default)", h,
		[]string{"raw CAS publish, SyncAlways, 64 workers"}, 0.8, 0)
	httpRow.Note = "error increments over HTTP with an API key per request, on the SyncAlways server of the row above"
	return []Row{row, httpRow}, nil
}

// loads: cold loads (empty cache: one direct lookup of the last message's
// snapshot) and warm loads (cache hits) of the pre-filled devices, against
// the raw load of a device's messages by subject with batch direct gets.
func (e *env) loads(ctx context.Context) ([]Row, error) {
	serial := func() string { return streamgen.Serial(rand.IntN(e.cfg.Devices)) }
	warm, err := newLedger(e.j, 0)
	if err != nil {
		return nil, err
	}
	const warmed = 1000
	for i := range warmed {
		if _, _, err := warm.LoadDevice(ctx, "OTP", streamgen.Serial(i%e.cfg.Devices)); err != nil {
			return nil, err
		}
	}
	n := e.sz.loads
	f, err := e.pair(ctx, "loads/s",
		func(ctx context.Context) (sample, error) {
			return measure(ctx, 1, n, func(ctx context.Context, _, _ int) error {
				l, err := newLedger(e.j, 16) // a new, empty cache every time
				if err != nil {
					return err
				}
				_, _, err = l.LoadDevice(ctx, "OTP", serial())
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, 1, n, func(ctx context.Context, _, i int) error {
				_, _, err := warm.LoadDevice(ctx, "OTP", streamgen.Serial(i%warmed%e.cfg.Devices))
				return err
			})
		},
		func(ctx context.Context) (sample, error) {
			return measure(ctx, 1, n, func(ctx context.Context, _, _ int) error {
				return e.raw.LoadBySubject(ctx, "otpledger.device.OTP."+serial())
			})
		})
	if err != nil {
		return nil, err
	}
	raw := f[2]
	raw.Name = "raw load by subject (batch direct get, ≤ 256 messages)"
	cold := Row{Workload: fmt.Sprintf("cold aggregate load in the %s-event stream", count(float64(e.gen.Events))), Ledger: f[0],
		Baselines: []Figure{raw}, Ratio: float64(raw.P99) / float64(f[0].P99), Target: "p99 ≤ 2 ms", Met: f[0].P99 <= 2*time.Millisecond,
		Note: "one direct get of the device's last message, whose header holds its snapshot"}
	warmRow := Row{Workload: "warm aggregate load", Ledger: f[1], Baselines: []Figure{raw}, Ratio: float64(raw.P99) / float64(f[1].P99),
		Target: "p99 ≤ 50 µs", Met: f[1].P99 <= 50*time.Microsecond}
	return []Row{cold, warmRow}, nil
}
