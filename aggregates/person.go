package aggregates

import (
	"slices"
	"strings"
	"time"

	"github.com/otpledger/otpledger/events"
)

// Person is the claim of one real-name number, keyed by its fingerprint
// (R-ONE-PERSON): the customer number it belongs to. A customer's first
// profile appends the claim (person_claimed) in the same atomic batch as
// customer_profiled, with compare-and-set on both, so two customer numbers
// can never both claim one real-name number, however they race. A value,
// like [Customer].
type Person struct {
	Ref        events.AggregateRef `json:"ref,omitzero"`
	Version    uint64              `json:"version,omitzero"`
	CustomerNo string              `json:"customer_no,omitzero"` // "" while unclaimed
}

// NewPerson returns the state of a real-name number (by its fingerprint fp)
// the ledger has not seen yet.
func NewPerson(fp string) Person { return Person{Ref: events.PersonRef(fp)} }

// AggregateVersion returns the number of events folded into p.
func (p Person) AggregateVersion() uint64 { return p.Version }

// Evolve returns the state after event e; it applies facts and never fails.
func (p Person) Evolve(e events.Event) Person {
	p.Version++
	if c, ok := e.Payload.(events.PersonClaimed); ok {
		p.CustomerNo = c.CustomerNo
	}
	return p
}

// profileDocuments are what a branch must list for a profile (R-PROFILE): the
// real-name ID and the processing form; no approval follows, a profile not
// being an OTP transaction.
var profileDocuments = []events.Document{events.DocRealNameID, events.DocProcessingForm}

// admitProfile applies R-PROFILE's channels: profiles come from the customer
// master (CORE) or a branch (teller, business hours, the documents of
// [profileDocuments]), at the home institution.
func admitProfile(m Meta, now time.Time, p *Policy) error {
	if err := m.validate(p); err != nil {
		return err
	}
	switch {
	case m.Institution != p.HomeInstitution:
		return refuse(RuleChannel, "customer profiles belong to the home institution %s", p.HomeInstitution)
	case m.Channel != events.ChannelCore && m.Channel != events.ChannelBranch:
		return refuse(RuleProfile, "profiles come from the customer master (CORE) or a branch, not channel %s", m.Channel)
	case m.Channel == events.ChannelBranch && !p.BusinessTime(now):
		return refuse(RuleHours, "branch actions only on business days within business hours")
	}
	if m.Channel != events.ChannelBranch {
		return nil
	}
	var missing []string
	for _, d := range profileDocuments {
		if !slices.Contains(m.Documents, d) {
			missing = append(missing, string(d))
		}
	}
	if len(missing) > 0 {
		return refuse(RuleDocs, "missing documents: %s", strings.Join(missing, ", "))
	}
	return nil
}

// claim applies R-ONE-PERSON and R-PROFILE's fixed fields to a profile of c
// and returns the claim to append with it (none when c already holds it).
func (c Customer) claim(cmd SetProfile, now time.Time) ([]events.Event, error) {
	if cmd.Person == nil || cmd.Person.Ref != events.PersonRef(cmd.RealNameFP) {
		return nil, ErrPersonState
	}
	switch holder := cmd.Person.CustomerNo; {
	case c.Profile.Known && c.Profile.Type != cmd.Type:
		return nil, refuse(RuleProfile, "a customer number's type never changes (%s on record): a corporation is another customer", c.Profile.Type)
	case c.Profile.Known && c.Profile.RealNameFP != cmd.RealNameFP:
		return nil, refuse(RuleProfile, "a customer number's real-name number never changes")
	case holder != "" && holder != c.Ref.Key:
		return nil, refuse(RuleOnePerson, "this real-name number is customer %s's; one person holds one OTP through one customer number", holder)
	case holder == c.Ref.Key:
		return nil, nil
	}
	return []events.Event{cmd.envelope(1, cmd.Person.Ref, now, events.PersonClaimed{CustomerNo: c.Ref.Key})}, nil
}

// ClaimRealName claims the real-name number of a customer profiled before
// profiles claimed theirs (R-ONE-PERSON), from the customer master (CORE):
// until then another customer number could still claim it. Person must hold
// the claim of the customer's real-name fingerprint. It is refused with
// [ErrNoProfile] when the customer has no profile, [ErrClaimed] when the
// customer holds the claim already, and R-ONE-PERSON, naming the holder,
// when another customer number does (a duplicate from before the rule).
type ClaimRealName struct {
	Meta
	Person *Person
}

func (ClaimRealName) customerCommand() {}

func (c Customer) claimRealName(cmd ClaimRealName, now time.Time, p *Policy) ([]events.Event, error) {
	if err := admitProfile(cmd.Meta, now, p); err != nil {
		return nil, err
	}
	switch {
	case !c.Profile.Known:
		return nil, ErrNoProfile
	case cmd.Person == nil || cmd.Person.Ref != events.PersonRef(c.Profile.RealNameFP):
		return nil, ErrPersonState
	case cmd.Person.CustomerNo == c.Ref.Key:
		return nil, ErrClaimed
	case cmd.Person.CustomerNo != "":
		return nil, refuse(RuleOnePerson, "this real-name number is customer %s's too, profiled before the rule: one of them must be corrected", cmd.Person.CustomerNo)
	}
	return []events.Event{cmd.envelope(0, cmd.Person.Ref, now, events.PersonClaimed{CustomerNo: c.Ref.Key})}, nil
}
