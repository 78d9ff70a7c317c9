package aggregates

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// world is the property test's ledger: states, the log, and an independent
// model of the accidents (R-HW-LOST-ALL, R-HW-RECOVER-EACH, R-HW-LOST-BLOCKS:
// a report opens them, only a recovery closes one).
type world struct {
	devices   map[string]Device
	customers map[string]Customer
	accidents map[string]map[string]bool // device -> institutions put in accident and not yet out
	// registered is the model's own record of where each device is
	// registered (institution -> customer at home), so that a loss report's
	// reach is computed here, never read from the event Decide produced.
	registered map[string]map[string]string
	// persons are the real-name claims the ledger would load with a
	// profile; profiledAs is the model's own record of which real-name
	// fingerprint each customer number was profiled with, read from the
	// customer_profiled events (R-ONE-PERSON).
	persons    map[string]Person
	profiledAs map[string]string
	log        []events.Event
}

var (
	propInsts     = []string{home, instKB, instSH}
	propSerials   = []string{"SERIAL0001", "SERIAL0002", "SERIAL0003"}
	propCustomers = []string{"C0001", "C0002", "C0003", "C0004"}
	// propPersons are two people's real-name fingerprints: with four
	// customer numbers, each person is tried under two or more of them.
	propPersons  = []string{rnFP, "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"}
	propChannels = []events.Channel{events.ChannelBranch, events.ChannelPhone, events.ChannelODS, events.ChannelHTS,
		events.ChannelWTS, events.ChannelMTS, events.ChannelMobileWeb, events.ChannelHomepage, events.ChannelCenter, events.ChannelAuth,
		events.ChannelCore}
	propDocs = []events.Document{events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney,
		events.DocCorporateSealCertificate, events.DocProcessingForm, events.DocSealOrSignature}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomMeta(r *rand.Rand, id uuid.UUID) Meta {
	m := Meta{EventID: id, Institution: home, Channel: pick(r, propChannels), Actor: events.Actor{Role: events.RoleSelf, ID: "CUST1"}}
	switch r.IntN(10) {
	case 0:
		m.Actor.Role = events.RoleAgent
	case 1:
		m.Actor.Role = events.RoleRepresentative
	case 2, 3:
		m.Channel = events.ChannelAuth
		m.Actor.Role = events.RoleSystem
	}
	if m.Channel == events.ChannelCenter {
		m.Institution = pick(r, propInsts[1:])
		m.OriginChannel = pick(r, []events.OriginChannel{"", events.OriginBranch, events.OriginOnline})
		m.Actor.Role = events.RoleSystem
	}
	if m.Channel == events.ChannelBranch {
		m.Staff = pick(r, []string{"S1", "S2"})
		m.Documents = propDocs
		if r.IntN(5) == 0 {
			m.Documents = propDocs[r.IntN(4):]
		}
	}
	if r.IntN(4) == 0 {
		m.CustomerType = events.Corporate
	}
	return m
}

// named returns the customer number a customer-made command names: often
// none (the device's customer at home decides), else one of the customers.
func named(r *rand.Rand, no string) string {
	if r.IntN(2) == 0 {
		return ""
	}
	return no
}

// plausible returns m moved to one of insts the way it would arrive there:
// through the centre for another institution, in branch or online at home.
func plausible(r *rand.Rand, m Meta, insts []string) Meta {
	m.Institution = pick(r, insts)
	m.Channel, m.Actor.Role, m.Staff, m.Documents = events.ChannelCenter, events.RoleSystem, "", nil
	m.OriginChannel = pick(r, []events.OriginChannel{events.OriginBranch, events.OriginOnline})
	if m.Institution == home {
		m.Channel, m.OriginChannel = pick(r, []events.Channel{events.ChannelBranch, events.ChannelMobileWeb, events.ChannelHTS}), ""
		m.Actor.Role, m.Staff, m.Documents = events.RoleSelf, "S1", propDocs
	}
	return m
}

func (w *world) step(t *testing.T, r *rand.Rand, at time.Time, p *Policy, n int) {
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint(n)))
	m := randomMeta(r, id)
	serial, custNo := pick(r, propSerials), pick(r, propCustomers)
	d, c := w.devices[serial], w.customers[custNo]
	var evs []events.Event
	var err error
	var decided func() ([]events.Event, error)
	switch k := r.IntN(14); {
	case k < 5: // device commands, errors most often
		var cmd DeviceCommand
		switch k {
		case 0:
			cmd = Register{Meta: m, CustomerNo: custNo, Customer: &c}
		case 1:
			cmd = Cancel{Meta: m, CustomerNo: named(r, custNo)}
		case 2:
			cmd = ReportLoss{Meta: m, Reason: events.LossLost, CustomerNo: named(r, custNo)}
			if d.InAccident() {
				switch r.IntN(4) {
				case 0: // a second report, as drawn
				case 1: // a plausible cancellation, which must not end the accident
					if len(d.Registrations) > 0 {
						cmd = Cancel{Meta: plausible(r, m, slices.Sorted(maps.Keys(d.Registrations))), CustomerNo: named(r, custNo)}
					}
				default: // a plausible recovery at an institution in accident
					cmd = Recover{Meta: plausible(r, m, slices.Sorted(maps.Keys(d.Accident))), CustomerNo: named(r, custNo)}
				}
			}
		case 3:
			cmd = ResetErrors{Meta: m, CustomerNo: named(r, custNo)}
		case 4:
			if len(d.Pending) > 0 {
				cmd = Approve{Meta: m, Target: slices.SortedFunc(maps.Keys(d.Pending), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })[0], Approver: pick(r, []string{"S1", "M9"})}
			} else {
				cmd = IncrementError{Meta: m}
			}
		}
		if no := ActingCustomer(d, cmd, p); no != "" { // what the ledger loads
			cust := w.customers[no]
			cmd = WithMeta(cmd, cmd.Metadata(), &cust)
		}
		decided = func() ([]events.Event, error) { return d.Decide(cmd, at, p) }
	case k < 8:
		m.Channel, m.Institution, m.Actor.Role, m.OriginChannel = events.ChannelAuth, home, events.RoleSystem, ""
		decided = func() ([]events.Event, error) { return d.Decide(IncrementError{Meta: m}, at, p) }
	default:
		var cmd CustomerCommand
		switch k {
		case 8:
			if r.IntN(2) == 0 { // often the customer master, as in production
				m.Channel, m.Institution, m.Actor.Role, m.OriginChannel, m.Staff, m.Documents = events.ChannelCore, home, events.RoleSystem, "", "", nil
			}
			fp := pick(r, propPersons)
			person, ok := w.persons[fp] // what the ledger loads
			if !ok {
				person = NewPerson(fp)
			}
			cmd = SetProfile{Meta: m, Person: &person, Type: pick(r, []events.CustomerType{events.Individual, events.Individual, events.Corporate}),
				Nationality: pick(r, []events.Nationality{events.Korean, events.Korean, events.NonKorean}), RealNameFP: fp, RealNameMasked: "900101-1******"}
		case 9, 10:
			cmd = IssueMobile{Meta: m, GeneratorNo: fmt.Sprintf("MOTP%04d", n%10000), PhoneFP: pick(r, []string{phoneA, phoneB}), PhoneMasked: "****5678",
				Verification: events.Verification{HomeAccount: true, PhoneIdentity: r.IntN(4) > 0, OneWonTransfer: true}}
		case 11:
			if r.IntN(2) == 0 { // mostly the customer on MTS
				m.Channel, m.Institution, m.Actor.Role, m.OriginChannel = events.ChannelMTS, home, events.RoleSelf, ""
			}
			cmd = RevokeMobile{Meta: m, GeneratorNo: pick(r, []string{c.Mobile.GeneratorNo, c.Mobile.GeneratorNo, "MOTP9999"})}
		case 12:
			cmd = IncrementMobileError{Meta: m}
		case 13:
			cmd = ResetMobileErrors{Meta: m}
		}
		decided = func() ([]events.Event, error) { return c.Decide(cmd, at, p) }
	}
	before := deepCopy(w)
	if evs, err = decided(); err != nil {
		return
	}
	if again, _ := decided(); !reflect.DeepEqual(evs, again) {
		t.Fatalf("step %d: decide is not deterministic", n)
	}
	if !reflect.DeepEqual(before, deepCopy(w)) {
		t.Fatalf("step %d: decide changed a state", n)
	}
	for _, e := range evs {
		if _, serial, ok := e.Aggregate.DeviceKey(); ok && e.Type() == events.TypeRegistered && len(w.accidents[serial]) > 0 {
			t.Fatalf("step %d: device %s registered at %s while its accident at %v is open (R-HW-LOST-BLOCKS)",
				n, serial, e.Institution, slices.Sorted(maps.Keys(w.accidents[serial])))
		}
	}
	for _, e := range evs {
		w.apply(e)
	}
	w.check(t, p, n, evs[0]) // after the whole commit: a home registration is two events
}

func (w *world) apply(e events.Event) {
	w.log = append(w.log, e)
	switch e.Aggregate.Kind {
	case events.KindDevice:
		_, serial, _ := e.Aggregate.DeviceKey()
		prev := w.devices[serial]
		snapshot := deepCopyDevice(prev)
		w.devices[serial] = prev.Evolve(e)
		if !reflect.DeepEqual(snapshot, prev) {
			panic("Evolve changed its receiver's maps")
		}
		acc, regs := maps.Clone(w.accidents[serial]), maps.Clone(w.registered[serial])
		if regs == nil {
			regs = map[string]string{}
		}
		switch p := e.Payload.(type) {
		case events.Registered:
			regs[e.Institution] = p.CustomerNo
		case events.Cancelled:
			delete(regs, e.Institution)
		case events.ReportedLost: // every institution registered now (R-HW-LOST-ALL), added to those in accident
			if acc == nil {
				acc = map[string]bool{}
			}
			for inst := range regs {
				acc[inst] = true
			}
			if got := slices.Sorted(maps.Keys(regs)); !slices.Equal(got, p.Institutions) {
				panic(fmt.Sprintf("loss report of %s names %v, the device is registered at %v", serial, p.Institutions, got))
			}
		case events.Recovered:
			delete(acc, e.Institution)
		}
		w.accidents[serial], w.registered[serial] = acc, regs
	case events.KindCustomer:
		w.customers[e.Aggregate.Key] = w.customers[e.Aggregate.Key].Evolve(e)
		if p, ok := e.Payload.(events.CustomerProfiled); ok {
			w.profiledAs[e.Aggregate.Key] = p.RealNameFingerprint
		}
	case events.KindPerson:
		person, ok := w.persons[e.Aggregate.Key]
		if !ok {
			person = NewPerson(e.Aggregate.Key)
		}
		w.persons[e.Aggregate.Key] = person.Evolve(e)
	}
}

func (w *world) check(t *testing.T, p *Policy, n int, e events.Event) {
	t.Helper()
	homeOTPs := map[string]int{}
	for serial, d := range w.devices {
		if d.ErrorCount < 0 || d.ErrorCount > p.DeviceErrorLimit || d.Locked != (d.ErrorCount == p.DeviceErrorLimit) {
			t.Fatalf("step %d (%s): device %s count %d locked %v", n, e.Type(), serial, d.ErrorCount, d.Locked)
		}
		want := w.accidents[serial]
		if len(want) == 0 {
			want = nil
		}
		if !maps.Equal(d.Accident, want) {
			t.Fatalf("step %d (%s): device %s accident %v, model %v", n, e.Type(), serial, d.Accident, want)
		}
		if got, model := slices.Sorted(maps.Keys(d.Registrations)), slices.Sorted(maps.Keys(w.registered[serial])); !slices.Equal(got, model) {
			t.Fatalf("step %d (%s): device %s registered at %v, model %v", n, e.Type(), serial, got, model)
		}
		if no, ok := d.HomeCustomer(p); ok {
			homeOTPs[no]++
			if c := w.customers[no]; !c.Hardware.Active || c.Hardware.Serial != serial {
				t.Fatalf("step %d: device %s registered at home for %s, customer shows %+v", n, serial, no, c.Hardware)
			}
		}
	}
	personOTPs, personNos := map[string]int{}, map[string][]string{}
	for no, c := range w.customers {
		active := homeOTPs[no]
		if c.Mobile.Active {
			active++
		}
		if fp, ok := w.profiledAs[no]; ok {
			personOTPs[fp] += active
			personNos[fp] = append(personNos[fp], no)
		}
		if active > 1 {
			t.Fatalf("step %d (%s): customer %s has %d active OTPs at home (R-ONE-OTP)", n, e.Type(), no, active)
		}
		if c.Mobile.Errors < 0 || c.Mobile.Errors > p.MobilePINLimit || c.Mobile.Locked != (c.Mobile.Errors == p.MobilePINLimit) {
			t.Fatalf("step %d: customer %s PIN count %d locked %v", n, no, c.Mobile.Errors, c.Mobile.Locked)
		}
	}
	for fp, nos := range personNos {
		if len(nos) > 1 || personOTPs[fp] > 1 {
			t.Fatalf("step %d (%s): one person profiled under %v holds %d OTPs (R-ONE-PERSON)", n, e.Type(), nos, personOTPs[fp])
		}
		if w.persons[fp].CustomerNo != nos[0] {
			t.Fatalf("step %d (%s): the claim names %q, the person was profiled as %s", n, e.Type(), w.persons[fp].CustomerNo, nos[0])
		}
	}
}

func deepCopyDevice(d Device) Device {
	d.Registrations, d.Accident, d.Pending = maps.Clone(d.Registrations), maps.Clone(d.Accident), maps.Clone(d.Pending)
	return d
}

func deepCopy(w *world) world {
	out := world{devices: map[string]Device{}, customers: map[string]Customer{}, persons: maps.Clone(w.persons)}
	for k, d := range w.devices {
		out.devices[k] = deepCopyDevice(d)
	}
	for k, c := range w.customers {
		c.Pending = maps.Clone(c.Pending)
		out.customers[k] = c
	}
	return out
}

// TestPropertyInvariants runs thousands of random command sequences over three
// devices, two customers and three institutions and checks the invariants
// after every accepted event; at the end, the log folded from scratch gives
// the same states (evolve is deterministic and Fold is the state).
func TestPropertyInvariants(t *testing.T) {
	t.Parallel()
	const sequences, steps = 3000, 90
	p := DefaultPolicy(home)
	accepted := map[events.Type]int{}
	for seq := range sequences {
		r := rand.New(rand.NewPCG(uint64(seq), 0x07b1ed6e))
		w := &world{devices: map[string]Device{}, customers: map[string]Customer{}, accidents: map[string]map[string]bool{},
			registered: map[string]map[string]string{}, persons: map[string]Person{}, profiledAs: map[string]string{}}
		for _, s := range propSerials {
			w.devices[s] = NewDevice("OTP", s)
		}
		for _, c := range propCustomers {
			w.customers[c] = NewCustomer(c)
		}
		at := now
		for n := range steps {
			at = at.Add(time.Duration(r.IntN(240)) * time.Minute)
			w.step(t, r, at, &p, seq*steps+n)
		}
		for _, e := range w.log {
			accepted[e.Type()]++
		}
		for _, s := range propSerials {
			evs := slices.DeleteFunc(slices.Clone(w.log), func(e events.Event) bool { return e.Aggregate != events.DeviceRef("OTP", s) })
			if got := Fold(NewDevice("OTP", s), evs, time.Time{}); !reflect.DeepEqual(got, w.devices[s]) {
				t.Fatalf("sequence %d: refold of %s differs", seq, s)
			}
		}
		for _, no := range propCustomers {
			evs := slices.DeleteFunc(slices.Clone(w.log), func(e events.Event) bool { return e.Aggregate != events.CustomerRef(no) })
			if got := Fold(NewCustomer(no), evs, time.Time{}); !reflect.DeepEqual(got, w.customers[no]) {
				t.Fatalf("sequence %d: refold of customer %s differs", seq, no)
			}
		}
		for _, fp := range propPersons {
			evs := slices.DeleteFunc(slices.Clone(w.log), func(e events.Event) bool { return e.Aggregate != events.PersonRef(fp) })
			if got, want := Fold(NewPerson(fp), evs, time.Time{}), w.persons[fp]; len(evs) > 0 && got != want {
				t.Fatalf("sequence %d: refold of person %s differs", seq, fp[:8])
			}
		}
	}
	for _, typ := range events.Types() {
		if typ == events.TypeKeyCreated || typ == events.TypeKeyRevoked || typ == events.TypeLookedUp {
			continue // the ledger's own records, not domain aggregates (internal/access)
		}
		if accepted[typ] < 20 {
			t.Errorf("only %d accepted %s events: the generator does not exercise it", accepted[typ], typ)
		}
	}
	t.Logf("accepted events by type: %v", accepted)
}
