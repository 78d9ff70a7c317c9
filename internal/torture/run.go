package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// Config is one run of the harness.
type Config struct {
	Root       string // the module's root (deploy/nats/cluster.conf)
	Dir        string // the run's data, and on a failure its history, seed and visualization
	NATSServer string // binaries, from [Build]
	OTPLedger  string
	Seed       uint64
	Duration   time.Duration // of the workload under faults; default 60 s
	Clients    int           // default 8
	Devices    int           // default 4
	Replicas   int           // default 2
	// NemesisEvery bounds the pause between two faults (drawn uniformly);
	// default 6–10 s. Hold bounds how long a fault lasts before it is
	// healed; default 1–4 s.
	NemesisEvery, Hold [2]time.Duration
	Nemeses            []Nemesis     // nil: every entry of the package's Nemeses; empty: no faults
	DatabaseURL        string        // the replicas' shared views; "" in memory
	AttemptTimeout     time.Duration // one attempt on one replica; default 3 s
	Attempts           int           // attempts of one operation, alternating replicas; default 4
	// PlantRetryWithoutKey is the negative control of a planted bug: an
	// attempt after the first is sent without the operation's
	// Idempotency-Key (the client makes one of its own), so a first attempt
	// that was stored without an answer is stored twice — which the
	// accounting must report as unexpected events.
	PlantRetryWithoutKey bool
	// Sync is the nodes' sync_interval (ClusterConfig.Sync): "" NATS's
	// default, "always", or a duration.
	Sync string
	Logf func(format string, args ...any)
}

func (c *Config) setDefaults() {
	if c.Duration == 0 {
		c.Duration = time.Minute
	}
	if c.Clients == 0 {
		c.Clients = 8
	}
	if c.Devices == 0 {
		c.Devices = 4
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.NemesisEvery == [2]time.Duration{} {
		c.NemesisEvery = [2]time.Duration{6 * time.Second, 10 * time.Second}
	}
	if c.Hold == [2]time.Duration{} {
		c.Hold = [2]time.Duration{time.Second, 4 * time.Second}
	}
	if c.Nemeses == nil {
		c.Nemeses = Nemeses
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 3 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 4
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Result is what a run found.
type Result struct {
	Seed           uint64
	Ops            []Op
	ByOutcome      map[Outcome]int
	Faults         []Fault
	Verdict        porcupine.CheckResult
	Anomalies      Anomalies
	Accounting     Accounting
	Verify         consumers.Report
	VerifyErr      string
	UnexpectedErrs int    // answers that are none of 201/200, 409 with a rule, 503, or a transport error
	Saved          string // the directory holding the failure's artefacts, when saved
	verdict        Verdict
	stored         []Stored // the journal's events of the devices, read back
}

// Ok reports whether every history is linearizable, the accounting is
// clean and verify found nothing.
func (r Result) Ok() bool {
	return r.Verdict == porcupine.Ok && r.Accounting.Ok() && r.VerifyErr == "" && len(r.Verify.Findings) == 0
}

// Summary is the run's figures in a few lines.
func (r Result) Summary() string {
	kinds := map[string]int{}
	for _, f := range r.Faults {
		kinds[f.Nemesis]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d operations (%d accepted, %d refused, %d failed 503/conflict, %d unknown; %d other error answers)\n",
		r.Seed, len(r.Ops), r.ByOutcome[Accepted], r.ByOutcome[Refused], r.ByOutcome[Failed], r.ByOutcome[Unknown], r.UnexpectedErrs)
	fmt.Fprintf(&b, "faults: %d %v\n", len(r.Faults), kinds)
	fmt.Fprintf(&b, "linearizable: %s; %s\n", r.Verdict, r.Anomalies)
	fmt.Fprintf(&b, "accounting: %s\n", r.Accounting)
	fmt.Fprintf(&b, "verify: %d messages, %d events, %d checkpoints, %d findings %s", r.Verify.Messages, r.Verify.Events,
		r.Verify.Checkpoints, len(r.Verify.Findings), r.VerifyErr)
	return b.String()
}

// Run starts the cluster, registers the devices, runs the clients under the
// nemeses for cfg.Duration, heals, reads every device back from the journal
// and checks the history. An error is the harness's own failure (the
// cluster would not start or heal); what the checkers find is in the
// Result, and when it is not Ok the history, the seed and Porcupine's
// visualization are saved in cfg.Dir/failure.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.setDefaults()
	cfg.Logf("torture seed %d: %d clients, %d devices, %d replicas, %v, %d nemeses, sync_interval %q", cfg.Seed, cfg.Clients, cfg.Devices, cfg.Replicas,
		cfg.Duration, len(cfg.Nemeses), cfg.Sync)
	res := Result{Seed: cfg.Seed}
	c, err := StartCluster(ctx, ClusterConfig{Root: cfg.Root, Dir: cfg.Dir, NATSServer: cfg.NATSServer, OTPLedger: cfg.OTPLedger,
		Replicas: cfg.Replicas, DatabaseURL: cfg.DatabaseURL, Sync: cfg.Sync,
		Partitions: slices.ContainsFunc(cfg.Nemeses, func(n Nemesis) bool { return strings.HasPrefix(n.Name, "partition-") })})
	if err != nil {
		return res, err
	}
	defer c.Close()
	rec := NewRecorder()
	w, err := newWorkload(ctx, c, cfg, rec)
	if err != nil {
		return res, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Add(1)
		go func() { defer wg.Done(); w.client(ctx, i, stop) }()
	}
	faults := nemesis(ctx, c, cfg, rec)
	res.Faults = faults
	healErr := c.WaitHealthy(ctx, 2*time.Minute)
	time.Sleep(2 * time.Second) // a quiet spell of load on the healed cluster
	close(stop)
	wg.Wait()
	if healErr != nil {
		return res, healErr
	}
	res.Ops, res.UnexpectedErrs = rec.Ops(), w.unexpected()
	res.ByOutcome = map[Outcome]int{}
	for _, o := range res.Ops {
		if o.Kind != Register {
			res.ByOutcome[o.Outcome]++
		}
	}
	stored, err := readBack(ctx, c, w.devices)
	if err != nil {
		return res, err
	}
	if err := clientKeys(res.Ops, stored); err != nil {
		return res, err
	}
	res.stored = stored
	res.verdict = Check(res.Ops, 5*time.Minute)
	res.Verdict = res.verdict.Result
	res.Anomalies = Explain(res.Ops, stored)
	res.Accounting = Account(res.Ops, stored)
	out, err := c.Verify(ctx)
	if err != nil || json.Unmarshal(out, &res.Verify) != nil {
		res.VerifyErr = fmt.Sprintf("verify: %v: %s", err, tail(string(out), 2000))
	}
	if err := saveLogs(filepath.Join(cfg.Dir, "logs"), c); err != nil {
		return res, err
	}
	if !res.Ok() {
		res.Saved = filepath.Join(cfg.Dir, "failure")
		if err := save(res, c); err != nil {
			return res, fmt.Errorf("save the failure: %w", err)
		}
	}
	return res, nil
}

// nemesis injects faults drawn from cfg.Seed until cfg.Duration is over,
// each healed after its hold, the cluster healthy again before the next.
func nemesis(ctx context.Context, c *Cluster, cfg Config, rec *Recorder) []Fault {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6e656d65))
	between := func(b [2]time.Duration) time.Duration { return b[0] + time.Duration(rng.Int64N(int64(b[1]-b[0])+1)) }
	end := time.Now().Add(cfg.Duration)
	var faults []Fault
	for {
		wait := between(cfg.NemesisEvery)
		if len(cfg.Nemeses) == 0 || time.Now().Add(wait).After(end) {
			time.Sleep(time.Until(end))
			return faults
		}
		c.markSynced()
		time.Sleep(wait)
		n := cfg.Nemeses[rng.IntN(len(cfg.Nemeses))]
		f := Fault{Nemesis: n.Name, At: time.Duration(rec.Now())}
		target, heal, err := n.Inject(ctx, c, rng)
		f.Target = target
		if err == nil {
			hold := cfg.Hold
			if n.Hold != [2]time.Duration{} {
				hold = n.Hold
			}
			time.Sleep(between(hold))
			err = heal()
		}
		f.Healed = time.Duration(rec.Now())
		if err == nil {
			err = c.WaitHealthy(ctx, time.Minute)
		}
		if err != nil {
			f.Err = err.Error()
		}
		cfg.Logf("fault at %v: %s %s (healed at %v) %s", f.At.Round(time.Millisecond), f.Nemesis, f.Target, f.Healed.Round(time.Millisecond), f.Err)
		faults = append(faults, f)
	}
}

// readBack reads every device's events from the journal (package journal's
// reader), in the device's order.
func readBack(ctx context.Context, c *Cluster, devices []string) ([]Stored, error) {
	nc, err := c.connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	j, err := journal.Open(ctx, nc, journal.Config{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	var stored []Stored
	for _, d := range devices {
		var version uint64
		count := 0
		for e, err := range j.Read(ctx, events.DeviceRef(vendor, d), 1) {
			if err != nil {
				return nil, err
			}
			for _, ev := range e.Commit.Events {
				version++
				switch p := ev.Payload.(type) {
				case events.ErrorIncremented:
					count = p.CountAfter
				case events.ErrorReset:
					count = 0
				}
				stored = append(stored, Stored{Device: d, Version: version, Seq: e.Sequence, ID: ev.ID.String(), Key: ev.IdempotencyKey,
					Type: fmt.Sprintf("%T", ev.Payload), Count: count})
			}
		}
	}
	return stored, nil
}

// save writes the failure's artefacts: the seed and summary, the history,
// Porcupine's visualization, and the processes' logs.
func save(r Result, c *Cluster) error {
	if err := os.MkdirAll(r.Saved, 0o755); err != nil {
		return err
	}
	errs := []error{
		os.WriteFile(filepath.Join(r.Saved, "seed"), fmt.Appendf(nil, "%d\n", r.Seed), 0o644),
		os.WriteFile(filepath.Join(r.Saved, "summary.txt"), []byte(r.Summary()+"\n"+r.details()), 0o644),
		SaveHistory(filepath.Join(r.Saved, "history.json"), r.Ops),
		r.verdict.Visualize(filepath.Join(r.Saved, "linearizability.html")),
	}
	for _, p := range append(c.Nodes, c.Replicas...) {
		errs = append(errs, os.WriteFile(filepath.Join(r.Saved, p.name+".log"), []byte(p.logs()), 0o644))
	}
	return errors.Join(errs...)
}

// saveLogs writes each process's log into dir (a run's logs, passed or
// not: what the nodes said of a corrupted store).
func saveLogs(dir string, c *Cluster) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, p := range append(slices.Clone(c.Nodes), c.Replicas...) {
		errs = append(errs, os.WriteFile(filepath.Join(dir, p.name+".log"), []byte(p.logs()), 0o644))
	}
	return errors.Join(errs...)
}

// details lists the anomalies and accounting failures, at most 20 of each.
func (r Result) details() string {
	var b strings.Builder
	list := func(title string, ops []Op) {
		for i, o := range ops {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(ops)-20)
				break
			}
			fmt.Fprintf(&b, "%s: %s\n", title, o)
		}
	}
	list("stale refusal", r.Anomalies.StaleRefusals)
	list("stale read", r.Anomalies.StaleReads)
	list("wrong read", r.Anomalies.WrongReads)
	list("stored, answered refused", r.Accounting.StoredButRefused)
	for _, c := range []struct {
		class string
		ids   []string
	}{{"lost", r.Accounting.Lost}, {"duplicated", r.Accounting.Duplicated}, {"unexpected", r.Accounting.Unexpected}} {
		class, ids := c.class, c.ids
		for i, id := range ids {
			if i == 20 {
				fmt.Fprintf(&b, "  … %d more\n", len(ids)-20)
				break
			}
			fmt.Fprintf(&b, "%s event %s", class, id)
			if i := slices.IndexFunc(r.stored, func(s Stored) bool { return s.ID == id }); i >= 0 {
				s := r.stored[i]
				fmt.Fprintf(&b, ": %s v%d, sequence %d, %s, key %q", s.Device, s.Version, s.Seq, s.Type, s.Key)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// vendor is the vendor code of the harness's devices.
const vendor = "OTP"

// workload is the clients' side: one Go client per replica and principal.
type workload struct {
	cfg     Config
	rec     *Recorder
	devices []string
	auth    []*client.Client // by replica
	center  []*client.Client
	auditor []*client.Client // reads the device's state
	mu      sync.Mutex
	errs    int
}

var centre = client.Common{Institution: "KB001", Channel: "CENTER", OriginChannel: "ONLINE", Actor: client.Actor{Role: "SYSTEM", ID: "CENTER"}}

// newWorkload creates the clients' API keys and registers the devices (at
// KB001 through the centre feed), recording the registrations.
func newWorkload(ctx context.Context, c *Cluster, cfg Config, rec *Recorder) (*workload, error) {
	w := &workload{cfg: cfg, rec: rec}
	admin := client.New(c.URLs[0], c.admin, nil)
	tokens := map[string]string{}
	for _, k := range []client.NewKey{{ID: "AUTH", Role: "producer", Channels: []string{"AUTH"}}, {ID: "CENTER", Role: "producer", Channels: []string{"CENTER"}},
		{ID: "AUD1", Role: "auditor"}} {
		_, token, err := admin.CreateKey(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("create key %s: %w", k.ID, err)
		}
		tokens[k.ID] = token
	}
	hc := &http.Client{Timeout: cfg.AttemptTimeout}
	for _, u := range c.URLs {
		w.auth = append(w.auth, client.New(u, tokens["AUTH"], hc))
		w.center = append(w.center, client.New(u, tokens["CENTER"], hc))
		w.auditor = append(w.auditor, client.New(u, tokens["AUD1"], hc))
	}
	for i := range cfg.Devices {
		d := fmt.Sprintf("TT%010d", i)
		w.devices = append(w.devices, d)
		o := Op{Client: cfg.Clients, Device: d, Kind: Register, Key: fmt.Sprintf("torture-%d-register-%d", cfg.Seed, i), Call: rec.Now()}
		a, err := w.center[0].Register(ctx, vendor, d, o.Key, client.Registration{Common: centre})
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", d, err)
		}
		o.Return, o.Outcome, o.Version, o.EventIDs = rec.Now(), Accepted, a.Events[len(a.Events)-1].Version, ids(a)
		rec.Add(o)
	}
	return w, nil
}

func ids(a client.Answer) []string {
	var out []string
	for _, e := range a.Events {
		out = append(out, e.ID)
	}
	return out
}

// count counts an answer that is none of 201, 200, 409, 503.
func (w *workload) count() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs++
}

func (w *workload) unexpected() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs
}

// client is one client's loop: random operations on random devices, each
// recorded, until stop is closed.
func (w *workload) client(ctx context.Context, id int, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(id)+1))
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		o := Op{Client: id, Device: w.devices[rng.IntN(len(w.devices))], Key: fmt.Sprintf("torture-%d-%d-%d", w.cfg.Seed, id, n)}
		switch p := rng.IntN(100); {
		case p < 55:
			o.Kind = Increment
		case p < 70:
			o.Kind = Reset
		default:
			o.Kind, o.Key = Read, ""
		}
		w.rec.Add(w.do(ctx, o, rng.IntN(len(w.auth))))
	}
}

// do makes o, first on replica first: an attempt without an answer (a
// timeout, a lost connection, a 503) is sent again under the same
// Idempotency-Key to the next replica, up to cfg.Attempts.
func (w *workload) do(ctx context.Context, o Op, first int) Op {
	o.Call = w.rec.Now()
	indefinite := false
	for a := range w.cfg.Attempts {
		r := (first + a) % len(w.auth)
		o.Attempts = append(o.Attempts, fmt.Sprintf("r%d", r))
		key := o.Key
		if w.cfg.PlantRetryWithoutKey && a > 0 {
			key = ""
		}
		actx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
		var ans client.Answer
		var st client.DeviceState
		var err error
		switch o.Kind {
		case Increment:
			ans, err = w.auth[r].Error(actx, vendor, o.Device, key, client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM", ID: "AUTH"}})
		case Reset:
			ans, err = w.center[r].ResetErrors(actx, vendor, o.Device, key, client.Attributed{Common: centre})
		case Read:
			st, err = w.auditor[r].Device(actx, vendor, o.Device, time.Time{})
		}
		cancel()
		o.Return = w.rec.Now()
		var e *client.Error
		switch {
		case err == nil && o.Kind == Read:
			o.Outcome, o.Version, o.Count, o.Locked = Accepted, st.Version, st.ErrorCount, st.Locked
			return o
		case err == nil:
			o.Outcome, o.Version, o.EventIDs = Accepted, ans.Events[len(ans.Events)-1].Version, ids(ans)
			return o
		case errors.As(err, &e) && e.Status == http.StatusConflict && e.Rule != "":
			o.Outcome, o.Rule = Refused, e.Rule
			return o
		case errors.As(err, &e) && e.Status == http.StatusConflict:
			// a compare-and-set conflict that outlived the server's
			// retries: nothing appended, says api.md; tried again.
		case errors.As(err, &e) && e.Status < 500:
			// refused for another reason than a rule (the harness's own
			// mistake): nothing appended, nothing to try again.
			w.count()
			o.Outcome, o.Err = Failed, err.Error()
			return o
		case errors.As(err, &e) && e.Status != http.StatusServiceUnavailable:
			w.count()
			indefinite = true
		default:
			// 503, or no answer. The client's own retries make even a 503
			// indefinite: an earlier attempt of the call may have timed out.
			indefinite = true
		}
		o.Err = err.Error()
		time.Sleep(50 * time.Millisecond)
	}
	o.Outcome = Failed
	if indefinite {
		o.Outcome = Unknown
	}
	return o
}
