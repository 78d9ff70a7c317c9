package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

var (
	// ErrConflict is returned when a command kept conflicting with concurrent
	// writers after every attempt (API: 409 conflict).
	ErrConflict = errors.New("ledger: conflict survived every retry")

	// ErrIdempotencyMismatch is returned when a command's idempotency key
	// was used, within the duplicate window, for a different command (API:
	// 422 idempotency_mismatch). Nothing is appended.
	ErrIdempotencyMismatch = errors.New("ledger: idempotency key already used for a different command")
)

// Event is one appended event as the API answers it.
type Event struct {
	ID        uuid.UUID           `json:"id"`
	Type      events.Type         `json:"type"`
	Sequence  uint64              `json:"sequence"`
	Aggregate events.AggregateRef `json:"aggregate"`
	Version   uint64              `json:"version"`
}

// Answer is the result of an accepted command.
type Answer struct {
	Events []Event `json:"events"`
}

// Config configures [New].
type Config struct {
	Policy      aggregates.Policy
	CacheSize   int                             // aggregates kept in memory per kind; default 100,000
	MaxAttempts int                             // appends tried per command; default 8
	Now         func() time.Time                // the ledger's clock; default time.Now
	NewID       func() uuid.UUID                // ids of commands without an idempotency key; default uuid.New
	Backoff     func(attempt int) time.Duration // wait before retry attempt n (1…); default jittered exponential from 1 ms
}

func (c *Config) setDefaults() {
	if c.CacheSize == 0 {
		c.CacheSize = 100_000
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		c.NewID = uuid.New
	}
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
}

// defaultBackoff waits before retry attempt n (1…): uniformly in [b/2,
// 3b/2), b doubling from 1 ms up to 64 ms.
func defaultBackoff(n int) time.Duration {
	base := time.Millisecond << min(n-1, 6)
	return base/2 + rand.N(base)
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	if c.CacheSize < 1 || c.MaxAttempts < 1 {
		errs = append(errs, errors.New("cache size and max attempts must be positive"))
	}
	return errors.Join(errs...)
}

// Ledger decides and appends commands.
type Ledger struct {
	j         *journal.Journal
	cfg       Config
	devices   *store[aggregates.Device]
	customers *store[aggregates.Customer]
	persons   *store[aggregates.Person] // real-name claims (R-ONE-PERSON)
	appends   atomic.Uint64
	conflicts atomic.Uint64
	findings  atomic.Uint64
}

// Stats counts the ledger's appends and the conflicts it retried.
type Stats struct {
	Appends   uint64 // messages or batches stored
	Conflicts uint64 // appends refused by compare-and-set (or deduplicated) and retried
	Findings  uint64 // messages a load skipped: not the ledger's own (undecodable, misplaced, replayed, altered)
}

// Stats returns the counters since New.
func (l *Ledger) Stats() Stats {
	return Stats{Appends: l.appends.Load(), Conflicts: l.conflicts.Load(), Findings: l.findings.Load()}
}

// New returns a Ledger over journal j.
func New(j *journal.Journal, cfg Config) (*Ledger, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new ledger: %w", err)
	}
	l := &Ledger{j: j, cfg: cfg,
		devices: &store[aggregates.Device]{j: j, cache: newCache[aggregates.Device](cfg.CacheSize),
			zero: func(r events.AggregateRef) aggregates.Device {
				v, s, _ := r.DeviceKey()
				return aggregates.NewDevice(v, s)
			}},
		customers: &store[aggregates.Customer]{j: j, cache: newCache[aggregates.Customer](cfg.CacheSize),
			zero: func(r events.AggregateRef) aggregates.Customer { return aggregates.NewCustomer(r.Key) }},
		persons: newPersons(j, cfg.CacheSize),
	}
	l.devices.findings, l.customers.findings, l.persons.findings = &l.findings, &l.findings, &l.findings
	return l, nil
}

// Policy returns the policy the ledger decides with.
func (l *Ledger) Policy() *aggregates.Policy { return &l.cfg.Policy }

// Now reads the ledger's clock: the time commands are decided at, and the
// time statuses such as expiry are read at.
func (l *Ledger) Now() time.Time { return l.cfg.Now() }

// eventID returns the id of a command's first event: derived from its
// idempotency key, so that a retry decides the same events, or fresh.
func (l *Ledger) eventID(key string) uuid.UUID {
	if key == "" {
		return l.cfg.NewID()
	}
	return uuid.NewSHA1(idNamespace, []byte(key))
}

var idNamespace = uuid.MustParse("5b0e52c6-6d0e-4c61-9d0c-0a2f1d6e7b11")

// scoped returns the idempotency key of a command acting on ref: a key
// names one command on one aggregate, so the same key on another aggregate
// is another command (its own answer and event ids), and an aggregate that
// a command on another touches too (a home registration's customer) never
// answers it with that other's answer.
func scoped(ref events.AggregateRef, key string) string {
	if key == "" {
		return ""
	}
	return ref.String() + " " + key
}

// Device decides cmd on device vendor/serial and appends its events. A
// registration or cancellation at the home institution also loads the
// customer and appends both aggregates' events in one atomic batch. It
// returns the answer, a refusal (*aggregates.RuleError, *events.FieldError),
// [ErrConflict], or an error wrapping journal.ErrUnavailable. The same
// idempotency key (Meta.IdempotencyKey) returns the first answer and appends
// nothing.
func (l *Ledger) Device(ctx context.Context, vendor, serial string, cmd aggregates.DeviceCommand) (a Answer, err error) {
	ref := events.DeviceRef(vendor, serial)
	if err := ref.Validate(); err != nil {
		return Answer{}, err
	}
	ctx, span := startCommand(ctx, "ledger.Device", ref, cmd)
	defer func() { endCommand(span, err) }()
	c := deviceAttempt{ref: ref, cmd: cmd, command: fingerprint(cmd), key: scoped(ref, cmd.Metadata().IdempotencyKey)}
	return l.retry(ctx, func(now time.Time) (Answer, bool, error) {
		for c.confirm = false; ; c.confirm = true {
			c.now = now
			dev, cust, done, err := l.loadDevice(ctx, &c)
			if done || err != nil {
				return c.answer, false, err
			}
			parts, err := l.decideDevice(&c, dev, cust)
			if err != nil && !c.current && !c.confirm {
				continue // a refusal stands only on the current device
			}
			if err != nil {
				return Answer{}, false, err
			}
			return l.append(ctx, c.key, c.command, now, parts)
		}
	})
}

// deviceAttempt is one try of a device command: what it acts on and with
// which meta, and the remembered answer when an earlier try under its key
// was stored.
type deviceAttempt struct {
	ref     events.AggregateRef
	cmd     aggregates.DeviceCommand
	command string // the command's fingerprint
	key     string // its idempotency key, scoped to ref ([scoped])
	confirm bool   // load the device confirmed current, not as cached
	current bool   // the device was loaded confirmed current
	now     time.Time
	meta    aggregates.Meta
	answer  Answer
}

// loadDevice loads the device of c (as cached unless c.confirm: the
// append's compare-and-set rejects a stale one) and, when the command acts
// on its customer too, the customer, confirmed current (it may be only
// read); done when a remembered answer settles c.
func (l *Ledger) loadDevice(ctx context.Context, c *deviceAttempt) (dev loaded[aggregates.Device], cust *loaded[aggregates.Customer], done bool, err error) {
	if dev, c.current, err = l.devices.cached(ctx, c.ref, c.confirm); err != nil {
		return dev, nil, false, err
	}
	c.meta = c.cmd.Metadata()
	c.meta.EventID = l.eventID(c.key)
	if c.answer, done, err = l.devices.answered(ctx, dev, c.ref, c.key, c.command, c.meta.EventID, c.now); done || err != nil {
		return dev, nil, done, err
	}
	custNo := aggregates.ActingCustomer(dev.snap.State, c.cmd, &l.cfg.Policy)
	if custNo == "" {
		return dev, nil, false, nil
	}
	cu, err := l.customers.load(ctx, events.CustomerRef(custNo))
	if err != nil {
		return dev, nil, false, err
	}
	if c.answer, done, err = cu.recall(c.key, c.command); done || err != nil {
		return dev, nil, done, err
	}
	return dev, &cu, false, nil
}

// decideDevice decides c on the loaded device (and customer) and returns
// each aggregate's part of the append.
func (l *Ledger) decideDevice(c *deviceAttempt, dev loaded[aggregates.Device], cust *loaded[aggregates.Customer]) ([]part, error) {
	var custState *aggregates.Customer
	if cust != nil {
		custState = &cust.snap.State
	}
	evs, err := dev.snap.State.Decide(aggregates.WithMeta(c.cmd, c.meta, custState), c.now, &l.cfg.Policy)
	if err != nil {
		return nil, err
	}
	devEvs, custEvs := split(c.ref, evs)
	dw, err := l.devices.writing(dev, devEvs)
	if err != nil {
		return nil, err
	}
	if len(custEvs) == 0 {
		return []part{dw}, nil
	}
	cw, err := l.customers.writing(*cust, custEvs)
	if err != nil {
		return nil, err
	}
	return []part{dw, cw}, nil
}

// Customer decides cmd on customer customerNo and appends its events, as
// [Ledger.Device] does. A mobile issuance that replaces the customer's
// hardware OTP at home (R-ONE-OTP) also loads that device and appends both
// aggregates' events in one atomic batch.
func (l *Ledger) Customer(ctx context.Context, customerNo string, cmd aggregates.CustomerCommand) (a Answer, err error) {
	ref := events.CustomerRef(customerNo)
	if err := ref.Validate(); err != nil {
		return Answer{}, err
	}
	ctx, span := startCommand(ctx, "ledger.Customer", ref, cmd)
	defer func() { endCommand(span, err) }()
	command, key := fingerprint(cmd), scoped(ref, cmd.Metadata().IdempotencyKey)
	return l.retry(ctx, func(now time.Time) (Answer, bool, error) {
		for confirm := false; ; confirm = true {
			c, current, err := l.customers.cached(ctx, ref, confirm)
			if err != nil {
				return Answer{}, false, err
			}
			meta := cmd.Metadata()
			meta.EventID = l.eventID(key)
			if a, ok, err := l.customers.answered(ctx, c, ref, key, command, meta.EventID, now); ok || err != nil {
				return a, false, err
			}
			parts, a, done, err := l.decideCustomer(ctx, ref, c, aggregates.WithCustomerMeta(cmd, meta), key, command, now)
			if done {
				return a, false, err
			}
			if err != nil && !current && !confirm {
				continue // a refusal stands only on the current customer
			}
			if err != nil {
				return Answer{}, false, err
			}
			return l.append(ctx, key, command, now, parts)
		}
	})
}

// retry runs attempt until it succeeds, is refused, or has conflicted
// MaxAttempts times, waiting a jittered backoff between attempts.
func (l *Ledger) retry(ctx context.Context, attempt func(now time.Time) (Answer, bool, error)) (Answer, error) {
	for n := 1; ; n++ {
		a, conflicted, err := attempt(l.cfg.Now())
		if !conflicted {
			return a, err
		}
		if n == l.cfg.MaxAttempts {
			return Answer{}, ErrConflict
		}
		t := time.NewTimer(l.cfg.Backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return Answer{}, ctx.Err()
		case <-t.C:
		}
	}
}

// writing is what the append needs of one aggregate's part: its events,
// its version before them and the sequence its compare-and-set expects.
type writing struct {
	ref    events.AggregateRef
	evs    []events.Event
	from   uint64 // the aggregate's version before
	expect uint64
}

// part is one aggregate's part of an append. record encodes its message
// (with the snapshot after it); once the append's outcome is known, stored
// caches the aggregate at its sequence and stale drops it from the cache.
type part interface {
	data() *writing
	record(key, command string, pos int, answer []Event, now time.Time) (journal.Record, error)
	stored(seq uint64)
	stale()
}

// write is a [part] of an aggregate of kind S.
type write[S aggregates.State[S]] struct {
	writing
	store *store[S]
	base  loaded[S] // the aggregate as loaded
	head  string    // its chain's head after evs
	next  snapshot[S]
}

func (s *store[S]) writing(l loaded[S], evs []events.Event) (*write[S], error) {
	evs, head, err := events.Chain(l.snap.LastHash, evs)
	if err != nil {
		return nil, err
	}
	return &write[S]{writing: writing{ref: evs[0].Aggregate, evs: evs, from: l.snap.State.AggregateVersion(), expect: l.seq},
		store: s, base: l, head: head}, nil
}

func (w *write[S]) data() *writing { return &w.writing }

func (w *write[S]) record(key, command string, pos int, answer []Event, now time.Time) (journal.Record, error) {
	w.next = w.base.next(aggregates.Fold(w.base.snap.State, w.evs, time.Time{}), w.head, key, command, pos, answer, now)
	state, err := marshal(w.next)
	return journal.Record{Commit: events.Commit{Events: w.evs}, Expect: w.expect, MsgID: w.evs[0].ID.String(), State: state}, err
}

func (w *write[S]) stored(seq uint64) {
	w.store.cache.put(w.ref, loaded[S]{seq: seq, snap: settled(w.next, seq)})
}

func (w *write[S]) stale() { w.store.cache.remove(w.ref) }

// append writes the aggregates' records in one message or one atomic batch.
// It reports a conflict (to retry) after dropping the stale cache entries.
func (l *Ledger) append(ctx context.Context, key, command string, now time.Time, parts []part) (Answer, bool, error) {
	var answer []Event // sequences relative to the first message
	for i, p := range parts {
		w := p.data()
		for k, e := range w.evs {
			answer = append(answer, Event{ID: e.ID, Type: e.Type(), Sequence: uint64(i), Aggregate: w.ref, Version: w.from + uint64(k) + 1})
		}
	}
	recs := make([]journal.Record, len(parts))
	for i, p := range parts {
		var err error
		if recs[i], err = p.record(key, command, i, answer, now); err != nil {
			return Answer{}, false, err
		}
	}
	seqs, err := l.j.Append(ctx, recs...)
	if errors.Is(err, journal.ErrConflict) || errors.Is(err, journal.ErrDuplicate) {
		for _, p := range parts {
			p.stale()
		}
		l.conflicts.Add(1)
		return Answer{}, true, nil
	}
	if err != nil {
		return Answer{}, false, err
	}
	l.appends.Add(1)
	for i, p := range parts {
		p.stored(seqs[i])
	}
	for i := range answer {
		answer[i].Sequence += seqs[0]
	}
	return Answer{Events: answer}, false, nil
}

// DeviceAsOf returns the device's state as of stream sequence upTo (0: the
// end) and instant t (zero: now), replaying its events, and the sequence of
// the last message folded (0: the device has none).
func (l *Ledger) DeviceAsOf(ctx context.Context, vendor, serial string, upTo uint64, t time.Time) (aggregates.Device, uint64, error) {
	return l.devices.asOf(ctx, events.DeviceRef(vendor, serial), upTo, t)
}

// CustomerAsOf is [Ledger.DeviceAsOf] for a customer.
func (l *Ledger) CustomerAsOf(ctx context.Context, customerNo string, upTo uint64, t time.Time) (aggregates.Customer, uint64, error) {
	return l.customers.asOf(ctx, events.CustomerRef(customerNo), upTo, t)
}

// LoadDevice returns the device's current state the way commands load it
// (cache or one snapshot lookup) and the sequence of its last message.
func (l *Ledger) LoadDevice(ctx context.Context, vendor, serial string) (aggregates.Device, uint64, error) {
	d, err := l.devices.load(ctx, events.DeviceRef(vendor, serial))
	return d.snap.State, d.seq, err
}

// LoadCustomer is [Ledger.LoadDevice] for a customer.
func (l *Ledger) LoadCustomer(ctx context.Context, customerNo string) (aggregates.Customer, uint64, error) {
	c, err := l.customers.load(ctx, events.CustomerRef(customerNo))
	return c.snap.State, c.seq, err
}

// split separates the events of ref from the others (the customer's part of a
// home registration or cancellation).
func split(ref events.AggregateRef, evs []events.Event) (mine, others []events.Event) {
	for _, e := range evs {
		if e.Aggregate == ref {
			mine = append(mine, e)
		} else {
			others = append(others, e)
		}
	}
	return mine, others
}

// fingerprint identifies a command by its content (type and fields, the
// idempotency key among them): the same key with another fingerprint is
// another command. The ids the ledger derives are set later.
func fingerprint(cmd any) string {
	data, _ := json.Marshal(cmd)
	h := sha256.Sum256(append([]byte(fmt.Sprintf("%T\n", cmd)), data...))
	return hex.EncodeToString(h[:16])
}

// answered returns the answer remembered for key by aggregate l, looking in
// its history when its recent answers may have dropped it.
func (s *store[S]) answered(ctx context.Context, l loaded[S], ref events.AggregateRef, key, command string, eventID uuid.UUID, now time.Time) (Answer, bool, error) {
	a, ok, err := l.recall(key, command)
	if key == "" || ok || err != nil || !l.evicted(now) {
		return a, ok, err
	}
	return s.find(ctx, ref, l.seq, key, command, eventID)
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return b, nil
}
