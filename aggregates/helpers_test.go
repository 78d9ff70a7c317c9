package aggregates

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

const (
	home   = "IBKS"
	instKB = "KB001"
	instSH = "SH002"
	custNo = "C0001"
	phoneA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	phoneB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	rnFP   = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
)

var (
	// now is Wednesday 2026-11-25 10:00 in Seoul: within business hours.
	now        = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)
	evening    = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)  // 17:00 KST
	closing    = time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)  // 16:00 KST, closed
	opening    = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)  // 09:00 KST, open
	saturday   = time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)  // Saturday 10:00 KST
	sundayLate = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC) // Sunday 23:00 KST
	// yearEnd is Thursday 2026-12-31 10:00 KST, the market's year-end closing
	// day; substitute2027 Monday 2027-10-11 10:00 KST, Hangul Day's substitute.
	yearEnd        = time.Date(2026, 12, 31, 1, 0, 0, 0, time.UTC)
	substitute2027 = time.Date(2027, 10, 11, 1, 0, 0, 0, time.UTC)
	devRef         = events.DeviceRef("OTP", "000111222333")
	custRef        = events.CustomerRef(custNo)
	policy         = DefaultPolicy(home)
	cmdID          = uuid.MustParse("00000000-0000-4000-8000-00000000c0de")
)

// fact builds a given event (a fact already in the ledger) an hour before now.
func fact(ref events.AggregateRef, inst string, ch events.Channel, p events.Payload) events.Event {
	e := events.Event{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("%v%v%T%v", ref, inst, p, p))),
		OccurredAt: now.Add(-time.Hour), RecordedAt: now.Add(-time.Hour), Aggregate: ref, Institution: inst,
		Channel: ch, Actor: events.Actor{Role: events.RoleSystem}, Payload: p}
	if ch == events.ChannelBranch {
		e.Actor, e.Staff = events.Actor{Role: events.RoleSelf}, "S100"
	}
	return e
}

func channelAt(inst string) events.Channel {
	if inst == home {
		return events.ChannelBranch
	}
	return events.ChannelCenter
}

// Device facts.
func reg(inst string) events.Event {
	p := events.Registered{Vendor: "OTP", Serial: "000111222333"}
	if inst == home {
		p.CustomerNo = custNo
	}
	return fact(devRef, inst, channelAt(inst), p)
}

func cancelled(inst string) events.Event {
	return fact(devRef, inst, channelAt(inst), events.Cancelled{Vendor: "OTP", Serial: "000111222333", Reason: events.CancelCustomerRequest})
}

func lost(insts ...string) events.Event {
	return fact(devRef, home, events.ChannelPhone, events.ReportedLost{Reason: events.LossLost, Institutions: insts})
}

func recovered(inst string, inBranch bool) events.Event {
	return fact(devRef, inst, events.ChannelCenter, events.Recovered{InBranch: inBranch})
}

func errs(n, limit int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = fact(devRef, home, events.ChannelAuth, events.ErrorIncremented{CountAfter: i + 1, Locked: i+1 >= limit})
	}
	return out
}

// Customer facts.
func profiled(t events.CustomerType, n events.Nationality) events.Event {
	return fact(custRef, home, events.ChannelBranch, events.CustomerProfiled{CustomerType: t, Nationality: n,
		RealNameFingerprint: rnFP, RealNameMasked: "900101-1******"})
}

func hwMirror(serial string) events.Event {
	return fact(custRef, home, events.ChannelBranch, events.Registered{Vendor: "OTP", Serial: serial, CustomerNo: custNo})
}

func hwMirrorCancelled(serial string) events.Event {
	return fact(custRef, home, events.ChannelBranch, events.Cancelled{Vendor: "OTP", Serial: serial, CustomerNo: custNo, Reason: events.CancelCustomerRequest})
}

func mobileIssued(phone string, validUntil time.Time) events.Event {
	return fact(custRef, home, events.ChannelMTS, events.MobileIssued{GeneratorNo: "MOTP0001", PhoneFingerprint: phone,
		PhoneMasked: "*******1234", ValidUntil: validUntil})
}

func pinErrs(n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = fact(custRef, home, events.ChannelAuth, events.ErrorIncremented{CountAfter: i + 1, Locked: i+1 >= 5})
	}
	return out
}

func flat(parts ...any) []events.Event {
	var out []events.Event
	for _, p := range parts {
		switch p := p.(type) {
		case events.Event:
			out = append(out, p)
		case []events.Event:
			out = append(out, p...)
		}
	}
	return out
}

// Metas.
var branchDocs = []events.Document{events.DocRealNameID, events.DocProcessingForm, events.DocSealOrSignature}

func branch() Meta {
	return Meta{EventID: cmdID, Institution: home, Channel: events.ChannelBranch,
		Actor: events.Actor{Role: events.RoleSelf, ID: "CUST1"}, Staff: "S100", Documents: branchDocs}
}

func online(ch events.Channel) Meta {
	return Meta{EventID: cmdID, Institution: home, Channel: ch, Actor: events.Actor{Role: events.RoleSelf, ID: "CUST1"}}
}

func center(inst string, origin events.OriginChannel) Meta {
	return Meta{EventID: cmdID, Institution: inst, Channel: events.ChannelCenter, OriginChannel: origin,
		Actor: events.Actor{Role: events.RoleSystem, ID: "CENTER"}}
}

func auth() Meta {
	return Meta{EventID: cmdID, Institution: home, Channel: events.ChannelAuth, Actor: events.Actor{Role: events.RoleSystem, ID: "AUTH"}}
}

func agent(docs ...events.Document) Meta {
	m := branch()
	m.Actor = events.Actor{Role: events.RoleAgent, ID: "AGENT1"}
	m.Documents = append(docs, events.DocProcessingForm, events.DocSealOrSignature)
	return m
}

func representative(docs ...events.Document) Meta {
	m := agent(docs...)
	m.Actor.Role = events.RoleRepresentative
	return m
}

func withDocs(m Meta, docs ...events.Document) Meta {
	m.Documents = docs
	return m
}

func corporate(m Meta) Meta {
	m.CustomerType = events.Corporate
	return m
}

// ruleCase is one row of a rule table: given facts, when a command at a time,
// then either the event types or the refusing rule.
type ruleCase[S any, C any] struct {
	name   string // starts with the rule id the row exercises
	given  []events.Event
	when   C
	at     time.Time // default now
	policy *Policy   // default the manual's
	want   []events.Type
	rule   RuleID // refusal expected, "" for acceptance
	check  func(t *testing.T, s S, evs []events.Event)
}

// runRules runs rule tables for either aggregate: it folds given, decides,
// and checks the refusal or the events (valid, deterministic, and folding).
func runRules[S State[S], C any](t *testing.T, zero S, decide func(S, C, time.Time, *Policy) ([]events.Event, error), cases []ruleCase[S, C]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Fold(zero, tc.given, time.Time{})
			at, p := tc.at, tc.policy
			if at.IsZero() {
				at = now
			}
			if p == nil {
				p = &policy
			}
			evs, err := decide(s, tc.when, at, p)
			if tc.rule != "" {
				if got := RuleOf(err); got != tc.rule {
					t.Fatalf("want refusal %s, got events %v err %v", tc.rule, types(evs), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want %v, refused: %v", tc.want, err)
			}
			if diff := cmp.Diff(tc.want, types(evs)); diff != "" {
				t.Fatalf("event types (-want +got):\n%s", diff)
			}
			again, _ := decide(s, tc.when, at, p)
			first, _ := json.Marshal(evs)
			second, _ := json.Marshal(again)
			if diff := cmp.Diff(string(first), string(second)); diff != "" {
				t.Fatalf("decide is not deterministic:\n%s", diff)
			}
			own := 0
			for i, e := range evs {
				if err := e.Validate(); err != nil {
					t.Fatalf("invalid event: %v", err)
				}
				if i == 0 && e.ID != cmdID {
					t.Fatalf("the first event's id is %v, not the command's %v", e.ID, cmdID)
				}
				if i > 0 && (e.ID == cmdID || e.ID == evs[i-1].ID) {
					t.Fatalf("event %d reuses an id", i)
				}
				if e.Aggregate == evs[0].Aggregate {
					own++
				}
			}
			if after := Fold(s, only(evs[0].Aggregate, evs), time.Time{}); after.AggregateVersion() != s.AggregateVersion()+uint64(own) {
				t.Fatalf("version %d after %d events on %d", after.AggregateVersion(), own, s.AggregateVersion())
			}
			if tc.check != nil {
				tc.check(t, s, evs)
			}
		})
	}
}

func types(evs []events.Event) []events.Type {
	var out []events.Type
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

// only returns the events of evs that belong to ref.
func only(ref events.AggregateRef, evs []events.Event) []events.Event {
	var out []events.Event
	for _, e := range evs {
		if e.Aggregate == ref {
			out = append(out, e)
		}
	}
	return out
}
