package aggregates

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Profile is a customer's profile as last recorded (customer_profiled).
type Profile struct {
	Known          bool                `json:"known,omitzero"`
	Type           events.CustomerType `json:"type,omitzero"`
	Nationality    events.Nationality  `json:"nationality,omitzero"`
	RealNameFP     string              `json:"real_name_fp,omitzero"`
	RealNameMasked string              `json:"real_name_masked,omitzero"`
	Accounts       []string            `json:"accounts,omitzero"`
}

// UnmarshalJSON reads a profile, upcasting the residency of the snapshots
// written before profiles said nationality (events.Residency.Nationality),
// so that those snapshots still load with one look-up.
func (p *Profile) UnmarshalJSON(data []byte) error {
	type plain Profile
	var v struct {
		plain
		Residency events.Residency `json:"residency"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*p = Profile(v.plain)
	if p.Nationality == "" {
		p.Nationality = v.Residency.Nationality()
	}
	return nil
}

// HardwareOTP is the customer's active hardware registration at home.
type HardwareOTP struct {
	Active bool      `json:"active,omitzero"`
	Vendor string    `json:"vendor,omitzero"`
	Serial string    `json:"serial,omitzero"`
	Since  time.Time `json:"since,omitzero"`
}

// MobileOTP is the customer's mobile OTP (R-MOB-*).
type MobileOTP struct {
	Active      bool      `json:"active,omitzero"`
	GeneratorNo string    `json:"generator_no,omitzero"`
	PhoneFP     string    `json:"phone_fp,omitzero"`
	PhoneMasked string    `json:"phone_masked,omitzero"`
	IssuedAt    time.Time `json:"issued_at,omitzero"`
	ValidUntil  time.Time `json:"valid_until,omitzero"`
	Errors      int       `json:"errors,omitzero"`
	Locked      bool      `json:"locked,omitzero"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	LastResetAt time.Time `json:"last_reset_at,omitzero"`
}

// Expired reports whether the mobile OTP is past its validity at t (R-MOB-VALIDITY).
func (m MobileOTP) Expired(t time.Time) bool { return !t.Before(m.ValidUntil) }

// Customer is a home-institution customer's state: a fold of its events, a
// value like [Device].
type Customer struct {
	Ref      events.AggregateRef  `json:"ref,omitzero"`
	Version  uint64               `json:"version,omitzero"`
	Profile  Profile              `json:"profile,omitzero"`
	Hardware HardwareOTP          `json:"hardware,omitzero"`
	Mobile   MobileOTP            `json:"mobile,omitzero"`
	Pending  map[uuid.UUID]string `json:"pending,omitzero"`
}

// NewCustomer returns the state of a customer the ledger has not seen yet.
func NewCustomer(customerNo string) Customer {
	return Customer{Ref: events.CustomerRef(customerNo)}
}

// AggregateVersion returns the number of events folded into c.
func (c Customer) AggregateVersion() uint64 { return c.Version }

// Known reports whether the customer has any event.
func (c Customer) Known() bool { return c.Version > 0 }

// oneHardware applies R-ONE-OTP to a home registration: a second hardware
// OTP at home is refused (the customer cancels the first, 2372); an active
// mobile OTP is not an obstacle but is replaced ([Device.Decide]).
func (c Customer) oneHardware() error {
	if c.Hardware.Active {
		return refuse(RuleOneOTP, "customer already has hardware OTP %s.%s at home; cancel it first", c.Hardware.Vendor, c.Hardware.Serial)
	}
	return nil
}

// ReplacedDevice returns the device whose state Decide needs for cmd on c:
// the hardware OTP registered at home that a mobile issuance replaces
// (R-ONE-OTP); ok is false when cmd needs none.
func ReplacedDevice(c Customer, cmd CustomerCommand) (vendor, serial string, ok bool) {
	if _, issue := cmd.(IssueMobile); !issue || !c.Hardware.Active {
		return "", "", false
	}
	return c.Hardware.Vendor, c.Hardware.Serial, true
}

// CustomerCommand is a command on a customer: [SetProfile], [IssueMobile],
// [RevokeMobile], [IncrementMobileError], [ResetMobileErrors] or [Approve].
type CustomerCommand interface {
	Metadata() Meta
	customerCommand()
}

// SetProfile records the customer's profile (R-PROFILE). RealNameFP and
// RealNameMasked come from package pii; the clear number never reaches the
// aggregate. Person must hold the claim of RealNameFP (R-ONE-PERSON): the
// customer's first profile claims it in the same commit.
type SetProfile struct {
	Meta
	Person         *Person
	Type           events.CustomerType
	Nationality    events.Nationality
	RealNameFP     string
	RealNameMasked string
	Accounts       []string
}

// IssueMobile issues a mobile OTP on one phone; on another phone, or to
// replace a locked or expired one, it revokes the old one in the same commit
// (R-MOB-ONE-PHONE). To a customer with a hardware OTP registered at home it
// also cancels that registration (R-ONE-OTP): Device must then hold that
// device's state (see [ReplacedDevice]), and the decision yields events for
// both aggregates.
type IssueMobile struct {
	Meta
	GeneratorNo  string
	PhoneFP      string
	PhoneMasked  string
	Verification events.Verification
	Device       *Device `json:"-"` // state, not content: the command's fingerprint leaves it out
}

// RevokeMobile revokes the customer's mobile OTP (A013). GeneratorNo names
// the mobile OTP it revokes (R-MOB-REVOKE-CHANNEL): a stale screen never
// revokes a newer one.
type RevokeMobile struct {
	Meta
	GeneratorNo string
	Reason      events.RevokeReason // default CUSTOMER_REQUEST
}

// IncrementMobileError records one failed mobile PIN entry.
type IncrementMobileError struct{ Meta }

// ResetMobileErrors reports a successful PIN entry: the count goes back to 0
// (R-MOB-PIN-LOCK: channel AUTH only, never when locked).
type ResetMobileErrors struct{ Meta }

func (SetProfile) customerCommand()           {}
func (IssueMobile) customerCommand()          {}
func (RevokeMobile) customerCommand()         {}
func (IncrementMobileError) customerCommand() {}
func (ResetMobileErrors) customerCommand()    {}
func (Approve) customerCommand()              {}

// Decide validates cmd against the customer's state c and returns the events
// it produces, or why it is refused ([*RuleError], [*events.FieldError],
// [ErrNoMobileOTP] or [ErrDeviceState]). It never changes c. A mobile
// issuance that replaces the hardware OTP at home also yields the device's
// event (its Aggregate says so).
func (c Customer) Decide(cmd CustomerCommand, now time.Time, p *Policy) ([]events.Event, error) {
	if err := p.checkOccurredAt(cmd.Metadata().OccurredAt, now); err != nil {
		return nil, err
	}
	var evs []events.Event
	var err error
	switch cmd := cmd.(type) {
	case SetProfile:
		evs, err = c.setProfile(cmd, now, p)
	case ClaimRealName:
		evs, err = c.claimRealName(cmd, now, p)
	case IssueMobile:
		evs, err = c.issueMobile(cmd, now, p)
	case RevokeMobile:
		evs, err = c.revokeMobile(cmd, now, p)
	case IncrementMobileError:
		evs, err = c.incrementMobileError(cmd, now, p)
	case ResetMobileErrors:
		evs, err = c.resetMobileErrors(cmd, now, p)
	case Approve:
		evs, err = decideApproval(c.Ref, c.Pending, cmd, now)
	}
	if err != nil {
		return nil, err
	}
	return validated(evs)
}

func (c Customer) setProfile(cmd SetProfile, now time.Time, p *Policy) ([]events.Event, error) {
	if err := admitProfile(cmd.Meta, now, p); err != nil {
		return nil, err
	}
	profiled := cmd.envelope(0, c.Ref, now, events.CustomerProfiled{CustomerType: cmd.Type,
		Nationality: cmd.Nationality, RealNameFingerprint: cmd.RealNameFP, RealNameMasked: cmd.RealNameMasked,
		Accounts: cmd.Accounts})
	if err := profiled.Validate(); err != nil {
		return nil, err
	}
	claimed, err := c.claim(cmd, now)
	if err != nil {
		return nil, err
	}
	return append([]events.Event{profiled}, claimed...), nil
}

// admitMobile applies the shared rules to a mobile action and then requires
// an active mobile OTP.
func (c Customer) admitMobile(a Action, m Meta, now time.Time, p *Policy) error {
	if err := p.admit(a, m, c.Profile.Type, now); err != nil {
		return err
	}
	if err := p.checkDocs(a, m, c.Profile.Type); err != nil {
		return err
	}
	if !c.Mobile.Active {
		return ErrNoMobileOTP
	}
	return nil
}

func (c Customer) issueMobile(cmd IssueMobile, now time.Time, p *Policy) ([]events.Event, error) {
	if err := p.admit(ActionMobileIssue, cmd.Meta, c.Profile.Type, now); err != nil {
		return nil, err
	}
	switch {
	case !c.Profile.Known:
		return nil, refuse(RuleMobEligible, "mobile OTP needs the customer's profile on record")
	case c.Profile.Type != events.Individual || c.Profile.Nationality != events.Korean:
		return nil, refuse(RuleMobEligible, "mobile OTP is for individual customers who are Korean nationals (내국인 개인고객) only")
	case !cmd.Verification.Complete():
		return nil, refuse(RuleMobVerify, "non-face-to-face issuance needs home-account and phone-identity verification and a 1-won transfer or OTP/security-card authentication")
	}
	v := cmd.Verification
	issued := events.MobileIssued{GeneratorNo: cmd.GeneratorNo, PhoneFingerprint: cmd.PhoneFP,
		PhoneMasked: cmd.PhoneMasked, ValidUntil: p.MobileValidUntil(now).UTC(), Verification: &v}
	if c.Hardware.Active {
		return c.replaceHardware(cmd, now, p, issued)
	}
	if !c.Mobile.Active {
		return []events.Event{cmd.envelope(0, c.Ref, now, issued)}, nil
	}
	var reason events.RevokeReason
	switch {
	case c.Mobile.PhoneFP != cmd.PhoneFP:
		reason = events.RevokeSuperseded
	case c.Mobile.Locked:
		reason = events.RevokeLocked
	case c.Mobile.Expired(now):
		reason = events.RevokeExpired
	default:
		return nil, refuse(RuleMobOnePhone, "mobile OTP %s is already active on this phone", c.Mobile.GeneratorNo)
	}
	revoked := events.MobileRevoked{GeneratorNo: c.Mobile.GeneratorNo, Reason: reason}
	return []events.Event{cmd.envelope(0, c.Ref, now, revoked), cmd.envelope(1, c.Ref, now, issued)}, nil
}

// replaceHardware issues the mobile OTP that replaces the customer's hardware
// OTP at home (R-ONE-OTP): the home registration's cancellation on the
// customer and on the device (reason REPLACED_BY_MOBILE; its other
// institutions keep it), then the issuance. A device in accident blocks it
// (R-HW-LOST-BLOCKS: an accident ends only by a recovery).
func (c Customer) replaceHardware(cmd IssueMobile, now time.Time, p *Policy, issued events.MobileIssued) ([]events.Event, error) {
	d := cmd.Device
	if d == nil || d.Ref != events.DeviceRef(c.Hardware.Vendor, c.Hardware.Serial) {
		return nil, ErrDeviceState
	}
	if r, ok := d.Registrations[p.HomeInstitution]; !ok || r.CustomerNo != c.Ref.Key {
		return nil, ErrDeviceState
	}
	if d.InAccident() {
		return nil, refuse(RuleHWLostBlocks, "hardware OTP %s.%s is in accident at %s; it must recover (사고해지) before a mobile OTP replaces it",
			c.Hardware.Vendor, c.Hardware.Serial, strings.Join(slices.Sorted(maps.Keys(d.Accident)), ", "))
	}
	ended := events.Cancelled{Vendor: c.Hardware.Vendor, Serial: c.Hardware.Serial, CustomerNo: c.Ref.Key, Reason: events.CancelReplacedByMobile}
	cust := cmd.envelope(0, c.Ref, now, ended)
	dev := cmd.envelope(1, d.Ref, now, ended)
	dev.CausationID = cust.ID.String()
	return []events.Event{cust, dev, cmd.envelope(2, c.Ref, now, issued)}, nil
}

func (c Customer) revokeMobile(cmd RevokeMobile, now time.Time, p *Policy) ([]events.Event, error) {
	if err := c.admitMobile(ActionMobileRevoke, cmd.Meta, now, p); err != nil {
		return nil, err
	}
	switch {
	case cmd.GeneratorNo == "":
		return nil, &events.FieldError{Field: "generator_number", Reason: "required: the mobile OTP to revoke (2373)"}
	case cmd.GeneratorNo != c.Mobile.GeneratorNo:
		return nil, refuse(RuleMobRevokeChannel, "generator number is not the customer's current mobile OTP (a newer one was issued); read 2373 again")
	case cmd.Reason == events.RevokeReplacedByHardware:
		return nil, &events.FieldError{Field: "reason", Reason: "REPLACED_BY_HARDWARE is recorded by the ledger when a hardware registration replaces the mobile OTP"}
	}
	reason := cmd.Reason
	if reason == "" {
		reason = events.RevokeCustomerRequest
	}
	return []events.Event{cmd.envelope(0, c.Ref, now, events.MobileRevoked{GeneratorNo: c.Mobile.GeneratorNo, Reason: reason})}, nil
}

func (c Customer) incrementMobileError(cmd IncrementMobileError, now time.Time, p *Policy) ([]events.Event, error) {
	if err := c.admitMobile(ActionMobileErrorIncrem, cmd.Meta, now, p); err != nil {
		return nil, err
	}
	if c.Mobile.Locked {
		return nil, refuse(RuleMobPINLock, "mobile OTP is locked at %d PIN errors; only reissue is possible", c.Mobile.Errors)
	}
	n := c.Mobile.Errors + 1
	return []events.Event{cmd.envelope(0, c.Ref, now, events.ErrorIncremented{CountAfter: n, Locked: n >= p.MobilePINLimit})}, nil
}

func (c Customer) resetMobileErrors(cmd ResetMobileErrors, now time.Time, p *Policy) ([]events.Event, error) {
	if err := c.admitMobile(ActionMobileErrorReset, cmd.Meta, now, p); err != nil {
		return nil, err
	}
	switch {
	case c.Mobile.Locked:
		return nil, refuse(RuleMobPINLock, "a locked mobile OTP cannot be reset; reissue it")
	case c.Mobile.Expired(now):
		return nil, refuse(RuleMobValidity, "mobile OTP expired; reissue it")
	}
	return []events.Event{cmd.envelope(0, c.Ref, now, events.ErrorReset{CountBefore: c.Mobile.Errors})}, nil
}

// Evolve returns the state after event e; it applies facts and never fails.
func (c Customer) Evolve(e events.Event) Customer {
	c.Version++
	if e.Approvable() {
		c.Pending = with(c.Pending, e.ID, e.Staff)
	}
	switch p := e.Payload.(type) {
	case events.CustomerProfiled:
		c.Profile = Profile{Known: true, Type: p.CustomerType, Nationality: p.Nationality,
			RealNameFP: p.RealNameFingerprint, RealNameMasked: p.RealNameMasked, Accounts: p.Accounts}
	case events.Registered:
		c.Hardware = HardwareOTP{Active: true, Vendor: p.Vendor, Serial: p.Serial, Since: e.OccurredAt}
	case events.Cancelled:
		if c.Hardware.Vendor == p.Vendor && c.Hardware.Serial == p.Serial {
			c.Hardware = HardwareOTP{}
		}
	case events.MobileIssued:
		c.Mobile = MobileOTP{Active: true, GeneratorNo: p.GeneratorNo, PhoneFP: p.PhoneFingerprint,
			PhoneMasked: p.PhoneMasked, IssuedAt: e.OccurredAt, ValidUntil: p.ValidUntil}
	case events.MobileRevoked:
		c.Mobile = MobileOTP{}
	case events.ErrorIncremented:
		c.Mobile.Errors, c.Mobile.Locked, c.Mobile.LastErrorAt = p.CountAfter, p.Locked, e.OccurredAt
	case events.ErrorReset:
		c.Mobile.Errors, c.Mobile.Locked, c.Mobile.LastResetAt = 0, false, e.OccurredAt
	case events.Approved:
		c.Pending = without(c.Pending, p.EventID)
	}
	return c
}
