// Package streamgen generates realistic journal content for tests and
// benchmarks: random but valid command sequences over many devices and
// customers, decided by the real aggregates, mostly error increments, with
// registrations (home and centre), loss reports, recoveries, resets, mobile
// issue, reissue and revocation, profiles and approvals.
package streamgen

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/fixture"
)

// Config sizes a generated stream.
type Config struct {
	Events    int    // at least this many events
	Devices   int    // default 1,000
	Customers int    // default 400
	Seed      uint64 // same seed, same stream
	Home      string // default IBKS
	// Track records the state of this device after each of its events.
	Track string
}

// Moment is a tracked device's state from an instant on.
type Moment struct {
	At    time.Time
	State aggregates.Device
}

// Start is the generated stream's first instant: Monday 2026-11-23 09:00 Seoul.
var Start = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// Stream is a generated stream: its commits in order, and the states the
// aggregates reached.
type Stream struct {
	Commits   []events.Commit
	Events    int
	Devices   map[string]aggregates.Device
	Customers map[string]aggregates.Customer
	Persons   map[string]aggregates.Person // real-name claims, by fingerprint
	Timeline  []Moment                     // the tracked device's states, in order
}

var institutions = []string{"KB001", "SH002", "WR003", "HN004"}

// Serial is the serial number of generated device i (vendor "OTP").
func Serial(i int) string { return fmt.Sprintf("GEN%07d", i) }

// Generate decides random commands until cfg.Events events were accepted
// and keeps the commits.
func Generate(cfg Config) *Stream {
	s := &Stream{}
	_ = generate(cfg, s, func(c events.Commit) error {
		s.Commits = append(s.Commits, c)
		return nil
	})
	return s
}

// PublishGenerated generates like [Generate] and publishes each commit as
// it is decided, with the state header the ledger writes (so that the
// ledger loads these aggregates with one lookup). It keeps the aggregates'
// states but not the commits: memory stays flat for millions of events.
func PublishGenerated(ctx context.Context, j *journal.Journal, cfg Config) (*Stream, error) {
	s := &Stream{}
	b, err := j.Bulk(ctx)
	if err != nil {
		return nil, err
	}
	err = generate(cfg, s, func(c events.Commit) error {
		var state []byte
		var err error
		last := c.Events[len(c.Events)-1]
		if _, serial, ok := last.Aggregate.DeviceKey(); ok {
			state, err = ledger.Snapshot(s.Devices[serial], last.Hash)
		} else if last.Aggregate.Kind == events.KindPerson {
			state, err = ledger.Snapshot(s.Persons[last.Aggregate.Key], last.Hash)
		} else {
			state, err = ledger.Snapshot(s.Customers[last.Aggregate.Key], last.Hash)
		}
		if err != nil {
			return err
		}
		_, err = b.Add(ctx, journal.Record{Commit: c, State: state})
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, b.Flush(ctx)
}

// generator draws a stream's commands and records their events.
type generator struct {
	cfg   Config
	s     *Stream
	p     aggregates.Policy
	r     *rand.Rand
	heads map[events.AggregateRef]string // each aggregate's chain head
	emit  func(events.Commit) error
}

func generate(cfg Config, s *Stream, emit func(events.Commit) error) error {
	if cfg.Devices == 0 {
		cfg.Devices = 1000
	}
	if cfg.Customers == 0 {
		cfg.Customers = 400
	}
	if cfg.Home == "" {
		cfg.Home = "IBKS"
	}
	g := &generator{cfg: cfg, s: s, p: aggregates.DefaultPolicy(cfg.Home), r: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		heads: map[events.AggregateRef]string{}, emit: emit}
	s.Devices, s.Customers, s.Persons = map[string]aggregates.Device{}, map[string]aggregates.Customer{}, map[string]aggregates.Person{}
	for i := range cfg.Devices {
		s.Devices[Serial(i)] = aggregates.NewDevice("OTP", Serial(i))
	}
	for i := range cfg.Customers {
		s.Customers[customerNo(i)] = aggregates.NewCustomer(customerNo(i))
	}
	now := Start
	for n := 0; s.Events < cfg.Events; n++ {
		now = now.Add(50 * time.Millisecond)
		evs, err := g.decide(n, now)
		if err != nil || len(evs) == 0 {
			continue
		}
		if err := g.record(evs); err != nil {
			return err
		}
		s.Events += len(evs)
	}
	return nil
}

func customerNo(i int) string { return fmt.Sprintf("GC%05d", i) }

// metas are the metas of one step's command, each with the principal the
// API would have authenticated.
type metas struct {
	branch, center, auth aggregates.Meta
	online               func(events.Channel) aggregates.Meta
}

func (g *generator) metas(id uuid.UUID) metas {
	staff := fmt.Sprintf("S%d", g.r.IntN(5))
	return metas{
		online: func(ch events.Channel) aggregates.Meta {
			return aggregates.Meta{EventID: id, Institution: g.cfg.Home, Channel: ch, Actor: events.Actor{Role: events.RoleSelf, ID: "WEB"},
				Principal: &events.Principal{ID: "WEB", Role: events.RoleProducer, Method: events.MethodMTLS}}
		},
		branch: aggregates.Meta{EventID: id, Institution: g.cfg.Home, Channel: events.ChannelBranch, Actor: events.Actor{Role: events.RoleSelf, ID: "CUST"},
			Staff: staff, Documents: fixture.BranchDocuments, Principal: &events.Principal{ID: staff, Role: events.RoleTeller, Method: events.MethodAPIKey}},
		center: aggregates.Meta{EventID: id, Institution: institutions[g.r.IntN(len(institutions))], Channel: events.ChannelCenter,
			OriginChannel: []events.OriginChannel{events.OriginBranch, events.OriginOnline}[g.r.IntN(2)], Actor: events.Actor{Role: events.RoleSystem, ID: "CENTER"},
			Principal: &events.Principal{ID: "CENTER", Role: events.RoleProducer, Method: events.MethodMTLS}},
		auth: aggregates.Meta{EventID: id, Institution: g.cfg.Home, Channel: events.ChannelAuth, Actor: events.Actor{Role: events.RoleSystem, ID: "AUTH"},
			Principal: &events.Principal{ID: "AUTH", Role: events.RoleProducer, Method: events.MethodMTLS}},
	}
}

// decide draws step n's command on a random device or customer and decides
// it at now; a refusal is skipped by the caller.
func (g *generator) decide(n int, now time.Time) ([]events.Event, error) {
	r, p := g.r, &g.p
	m := g.metas(uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%d/%d", g.cfg.Seed, n)))
	dk, ck := Serial(r.IntN(g.cfg.Devices)), customerNo(r.IntN(g.cfg.Customers))
	d, c := g.s.Devices[dk], g.s.Customers[ck]
	switch k := r.IntN(100); {
	case k < 45:
		return d.Decide(aggregates.IncrementError{Meta: m.auth}, now, p)
	case k < 55:
		return d.Decide(aggregates.Register{Meta: m.center}, now, p)
	case k < 62:
		return d.Decide(aggregates.Register{Meta: m.branch, CustomerNo: ck, Customer: &c}, now, p)
	case k < 66:
		if no, ok := d.HomeCustomer(p); ok {
			hc := g.s.Customers[no]
			return d.Decide(aggregates.Cancel{Meta: m.branch, Customer: &hc}, now, p)
		}
		return d.Decide(aggregates.Cancel{Meta: m.center}, now, p)
	case k < 70:
		return d.Decide(aggregates.ReportLoss{Meta: m.online(events.ChannelPhone), Reason: events.LossLost}, now, p)
	case k < 76:
		meta := m.center
		for _, inst := range slices.Sorted(maps.Keys(d.Accident)) { // sorted: the same seed, the same stream
			meta.Institution = inst
			if inst == g.cfg.Home {
				meta = m.branch
			}
			break
		}
		return d.Decide(aggregates.Recover{Meta: meta}, now, p)
	case k < 82:
		return d.Decide(aggregates.ResetErrors{Meta: m.online(events.ChannelMobileWeb)}, now, p)
	case k < 86:
		fp := c.Profile.RealNameFP // a profile's real-name number never changes (R-PROFILE)
		if fp == "" {
			fp = fmt.Sprintf("%064x", r.Uint64())
		}
		person, ok := g.s.Persons[fp]
		if !ok {
			person = aggregates.NewPerson(fp)
		}
		return c.Decide(aggregates.SetProfile{Meta: m.branch, Person: &person, Type: events.Individual, Nationality: events.Korean,
			RealNameFP: fp, RealNameMasked: "900101-1******", Accounts: []string{fmt.Sprintf("%011d", r.IntN(1e9))}}, now, p)
	case k < 91:
		return c.Decide(aggregates.IssueMobile{Meta: m.online(events.ChannelMTS), GeneratorNo: fmt.Sprintf("MG%08d", n%1e8),
			PhoneFP: fmt.Sprintf("%064x", r.IntN(3)), PhoneMasked: "*******1234",
			Verification: events.Verification{HomeAccount: true, PhoneIdentity: true, OneWonTransfer: true}}, now, p)
	case k < 93:
		return c.Decide(aggregates.RevokeMobile{Meta: m.online(events.ChannelMTS)}, now, p)
	case k < 97:
		return c.Decide(aggregates.IncrementMobileError{Meta: m.auth}, now, p)
	}
	for _, target := range slices.SortedFunc(maps.Keys(d.Pending), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }) {
		return d.Decide(aggregates.Approve{Meta: m.branch, Target: target, Approver: "M1"}, now, p)
	}
	return nil, nil
}

// record chains and emits evs, one commit per aggregate, and folds them into
// the stream's aggregates.
func (g *generator) record(evs []events.Event) error {
	for len(evs) > 0 {
		n := 1
		for n < len(evs) && evs[n].Aggregate == evs[0].Aggregate {
			n++
		}
		ref := evs[0].Aggregate
		chained, head, err := events.Chain(g.heads[ref], evs[:n])
		if err != nil {
			return err
		}
		g.heads[ref] = head
		for _, e := range chained {
			g.evolve(e)
		}
		if err := g.emit(events.Commit{Events: chained}); err != nil {
			return err
		}
		evs = evs[n:]
	}
	return nil
}

// evolve folds e into its aggregate, and records the tracked device's
// moments.
func (g *generator) evolve(e events.Event) {
	s := g.s
	switch e.Aggregate.Kind {
	case events.KindDevice:
		_, sr, _ := e.Aggregate.DeviceKey()
		s.Devices[sr] = s.Devices[sr].Evolve(e)
		if sr == g.cfg.Track {
			s.Timeline = append(s.Timeline, Moment{At: e.OccurredAt, State: s.Devices[sr]})
		}
	case events.KindCustomer:
		s.Customers[e.Aggregate.Key] = s.Customers[e.Aggregate.Key].Evolve(e)
	case events.KindPerson:
		person, ok := s.Persons[e.Aggregate.Key]
		if !ok {
			person = aggregates.NewPerson(e.Aggregate.Key)
		}
		s.Persons[e.Aggregate.Key] = person.Evolve(e)
	}
}

// Publish appends the commits to the journal in order (a bulk append,
// without state headers), waiting for every acknowledgement.
func Publish(ctx context.Context, j *journal.Journal, commits []events.Commit) error {
	b, err := j.Bulk(ctx)
	if err != nil {
		return err
	}
	for _, c := range commits {
		if _, err := b.Add(ctx, journal.Record{Commit: c}); err != nil {
			return err
		}
	}
	return b.Flush(ctx)
}
