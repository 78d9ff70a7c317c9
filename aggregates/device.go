package aggregates

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Registration is a device's active registration at one institution.
type Registration struct {
	CustomerNo        string    `json:"customer_no,omitzero"` // set at the home institution
	Since             time.Time `json:"since,omitzero"`
	WarrantyFrom      string    `json:"warranty_from,omitzero"`
	WarrantyTo        string    `json:"warranty_to,omitzero"`
	ResponseCodeGiven bool      `json:"response_code_given,omitzero"`
}

// Device is a hardware OTP device's state: a fold of its events. It is a value:
// [Device.Evolve] returns a new Device and never changes the one it is called
// on, so states may be cached and shared between goroutines.
type Device struct {
	Ref           events.AggregateRef     `json:"ref,omitzero"`
	Version       uint64                  `json:"version,omitzero"` // number of events folded
	Registrations map[string]Registration `json:"registrations,omitzero"`
	ErrorCount    int                     `json:"error_count,omitzero"`
	Locked        bool                    `json:"locked,omitzero"`
	LastErrorAt   time.Time               `json:"last_error_at,omitzero"`
	LastResetAt   time.Time               `json:"last_reset_at,omitzero"`
	// Accident holds the institutions where the device is in accident and has
	// not recovered (R-HW-LOST-ALL, R-HW-RECOVER-EACH).
	Accident        map[string]bool `json:"accident,omitzero"`
	AccidentSince   time.Time       `json:"accident_since,omitzero"`
	BranchRecovered bool            `json:"branch_recovered,omitzero"` // an in-branch recovery since the loss report (R-HW-RECOVER-ONLINE)
	// Pending maps each branch event awaiting approval to its staff member.
	Pending map[uuid.UUID]string `json:"pending,omitzero"`
}

// NewDevice returns the state of a device the ledger has not seen yet.
func NewDevice(vendor, serial string) Device {
	return Device{Ref: events.DeviceRef(vendor, serial)}
}

// AggregateVersion returns the number of events folded into d.
func (d Device) AggregateVersion() uint64 { return d.Version }

// Known reports whether the device has any event.
func (d Device) Known() bool { return d.Version > 0 }

// InAccident reports whether the device is in accident at any institution.
func (d Device) InAccident() bool { return len(d.Accident) > 0 }

// HomeCustomer returns the customer of the device's registration at home, if any.
func (d Device) HomeCustomer(p *Policy) (string, bool) {
	r, ok := d.Registrations[p.HomeInstitution]
	return r.CustomerNo, ok && r.CustomerNo != ""
}

// DeviceCommand is a command on a device: [Register], [Cancel], [ReportLoss],
// [Recover], [IncrementError], [ResetErrors] or [Approve].
type DeviceCommand interface {
	Metadata() Meta
	deviceCommand()
}

// Register registers the device at Meta.Institution (2372). At the home
// institution CustomerNo is required and Customer must hold that customer's
// state (R-ONE-OTP: a second hardware OTP is refused, an active mobile OTP
// is revoked with it); the decision then yields events for each aggregate.
type Register struct {
	Meta
	CustomerNo        string
	ResponseCodeGiven bool
	WarrantyFrom      string
	WarrantyTo        string
	Customer          *Customer
}

// Cancel cancels the registration at Meta.Institution (2372). At the home
// institution Customer must hold the registered customer's state; CustomerNo,
// when given, must name that customer.
type Cancel struct {
	Meta
	Reason     events.CancelReason // default CUSTOMER_REQUEST
	CustomerNo string
	Customer   *Customer
}

// ReportLoss reports the device lost at Meta.Institution (2374).
//
// The device commands a customer makes (any channel but CENTER and AUTH)
// name the customer they are for: the device's customer at home, or, for a
// device not registered at home, CustomerNo. Customer, when set, holds that
// customer's state: its profile's type decides R-AGENT and R-DOCS
// (Meta.CustomerType only when no profile is on record); see [ActingCustomer].
type ReportLoss struct {
	Meta
	Reason     events.LossReason
	CustomerNo string
	Customer   *Customer
}

// Recover ends the accident at Meta.Institution (2374); see [ReportLoss] for
// CustomerNo and Customer.
type Recover struct {
	Meta
	CustomerNo string
	Customer   *Customer
}

// IncrementError records one failed authentication with the device.
type IncrementError struct{ Meta }

// ResetErrors resets the device's error count (2375); see [ReportLoss] for
// CustomerNo and Customer.
type ResetErrors struct {
	Meta
	CustomerNo string
	Customer   *Customer
}

// Approve records a branch manager's approval of the aggregate's branch
// event EventID (R-APPROVAL). Approver is the manager's staff id.
type Approve struct {
	Meta
	Target   uuid.UUID
	Approver string
}

func (Register) deviceCommand()       {}
func (Cancel) deviceCommand()         {}
func (ReportLoss) deviceCommand()     {}
func (Recover) deviceCommand()        {}
func (IncrementError) deviceCommand() {}
func (ResetErrors) deviceCommand()    {}
func (Approve) deviceCommand()        {}

// Decide validates c against the device's state d and the policy at time now
// and returns the events it produces, or why it is refused: a [*RuleError]
// naming the rule, a [*events.FieldError] for malformed input, or
// [ErrCustomerState]. It never changes d. A home registration or
// cancellation also yields the customer's event (its Aggregate says so), and
// a home registration the revocation of the customer's mobile OTP it
// replaces (R-ONE-OTP).
func (d Device) Decide(c DeviceCommand, now time.Time, p *Policy) ([]events.Event, error) {
	if _, isRegister := c.(Register); !isRegister && !d.Known() {
		return nil, refuse(RuleHWNoIssue, "device %s is not registered anywhere in the ledger; hardware OTP enters only by registration", d.Ref.Key)
	}
	if err := p.checkOccurredAt(c.Metadata().OccurredAt, now); err != nil {
		return nil, err
	}
	var evs []events.Event
	var err error
	switch c := c.(type) {
	case Register:
		evs, err = d.register(c, now, p)
	case Cancel:
		evs, err = d.cancel(c, now, p)
	case ReportLoss:
		evs, err = d.reportLoss(c, now, p)
	case Recover:
		evs, err = d.recover(c, now, p)
	case IncrementError:
		evs, err = d.incrementError(c, now, p)
	case ResetErrors:
		evs, err = d.resetErrors(c, now, p)
	case Approve:
		evs, err = decideApproval(d.Ref, d.Pending, c, now)
	}
	if err != nil {
		return nil, err
	}
	return validated(evs)
}

func (d Device) admit(a Action, m Meta, ct events.CustomerType, now time.Time, p *Policy) error {
	if err := p.admit(a, m, ct, now); err != nil {
		return err
	}
	return p.checkDocs(a, m, ct)
}

// ActingCustomer returns the number of the customer whose state Decide needs
// for cmd on d ("" for none): the registering customer of a home
// registration; for an action a customer makes at home, the device's
// customer at home or, when it has none, the one the command names.
func ActingCustomer(d Device, cmd DeviceCommand, p *Policy) string {
	m := cmd.Metadata()
	if r, ok := cmd.(Register); ok {
		if m.Institution == p.HomeInstitution && events.ValidCustomerNo(r.CustomerNo) {
			return r.CustomerNo
		}
		return ""
	}
	if !m.customerMade() || m.Institution != p.HomeInstitution {
		return ""
	}
	if no, ok := d.HomeCustomer(p); ok {
		return no
	}
	no, _ := customerOf(cmd)
	if !events.ValidCustomerNo(no) {
		return ""
	}
	return no
}

// customerOf returns the customer a command names and the state it carries.
func customerOf(cmd DeviceCommand) (string, *Customer) {
	switch c := cmd.(type) {
	case Register:
		return c.CustomerNo, c.Customer
	case Cancel:
		return c.CustomerNo, c.Customer
	case ReportLoss:
		return c.CustomerNo, c.Customer
	case Recover:
		return c.CustomerNo, c.Customer
	case ResetErrors:
		return c.CustomerNo, c.Customer
	}
	return "", nil
}

// acting resolves who a customer-made action is for and that customer's
// type: the device's customer at home (a command naming another is
// refused), or the customer the command names, which is then required so
// that every 2374/2375 action is attributable. The profile on record
// decides the type; Meta.CustomerType only stands in when there is none.
// Actions of the centre and the authentication service name no customer.
func (d Device) acting(cmd DeviceCommand, p *Policy) (string, events.CustomerType, error) {
	m := cmd.Metadata()
	if !m.customerMade() || m.Institution != p.HomeInstitution {
		return "", m.CustomerType, nil // the centre's, the authentication service's, or refused by R-CHANNEL
	}
	named, c := customerOf(cmd)
	no, registered := d.HomeCustomer(p)
	switch {
	case named != "" && !events.ValidCustomerNo(named):
		return "", "", events.CustomerNoCode.Refusal("customer_no")
	case registered && named != "" && named != no:
		return "", "", &events.FieldError{Field: "customer_no", Reason: "is not the customer the device is registered to at " + p.HomeInstitution}
	case !registered && named == "":
		return "", "", &events.FieldError{Field: "customer_no", Reason: "required: the device has no registration at " + p.HomeInstitution + " that names its customer"}
	case !registered:
		no = named
	}
	ct, err := customerType(c, no, m)
	return no, ct, err
}

// customerType returns the type of customer no: its profile's when c holds
// it, otherwise what the command says ("" = unknown, an individual).
func customerType(c *Customer, no string, m Meta) (events.CustomerType, error) {
	if c == nil {
		return m.CustomerType, nil
	}
	if c.Ref != events.CustomerRef(no) {
		return "", ErrCustomerState
	}
	if c.Profile.Known {
		return c.Profile.Type, nil
	}
	return m.CustomerType, nil
}

func (d Device) register(c Register, now time.Time, p *Policy) ([]events.Event, error) {
	home := c.Institution == p.HomeInstitution
	ct, _ := customerType(c.Customer, c.CustomerNo, c.Meta) // a mismatched state is refused below
	if err := d.admit(ActionRegister, c.Meta, ct, now, p); err != nil {
		return nil, err
	}
	if home && c.CustomerNo == "" {
		return nil, &events.FieldError{Field: "customer_no", Reason: "required at the home institution"}
	}
	if home && (c.Customer == nil || c.Customer.Ref != events.CustomerRef(c.CustomerNo)) {
		return nil, ErrCustomerState
	}
	if c.WarrantyFrom != "" && c.WarrantyTo != "" && c.WarrantyFrom > c.WarrantyTo {
		return nil, refuse(RuleHWValidity, "warranty ends before it starts")
	}
	if _, ok := d.Registrations[c.Institution]; ok {
		return nil, refuse(RuleHWOnePerInstitution, "device is already registered at %s", c.Institution)
	}
	if d.InAccident() {
		return nil, refuse(RuleHWLostBlocks, "device is in accident at %s; every one must recover (사고해지) before it is registered again", strings.Join(slices.Sorted(maps.Keys(d.Accident)), ", "))
	}
	if d.Locked && c.online() {
		return nil, refuse(RuleHWLockedOnline, "device is locked after %d errors; register in branch or reset first", d.ErrorCount)
	}
	vendor, serial, _ := d.Ref.DeviceKey()
	payload := events.Registered{Vendor: vendor, Serial: serial, CustomerNo: c.CustomerNo,
		WarrantyFrom: c.WarrantyFrom, WarrantyTo: c.WarrantyTo, ResponseCodeGiven: c.ResponseCodeGiven}
	dev := c.envelope(0, d.Ref, now, payload)
	if !home {
		return []events.Event{dev}, nil
	}
	if err := c.Customer.oneHardware(); err != nil {
		return nil, err
	}
	cust := c.envelope(1, c.Customer.Ref, now, payload)
	cust.CausationID = dev.ID.String()
	mob := c.Customer.Mobile
	if !mob.Active {
		return []events.Event{dev, cust}, nil
	}
	// R-ONE-OTP: the hardware OTP replaces the mobile one in the same append.
	revoked := c.envelope(2, c.Customer.Ref, now, events.MobileRevoked{GeneratorNo: mob.GeneratorNo, Reason: events.RevokeReplacedByHardware})
	revoked.CausationID = dev.ID.String()
	return []events.Event{dev, revoked, cust}, nil
}

func (d Device) cancel(c Cancel, now time.Time, p *Policy) ([]events.Event, error) {
	reg, ok := d.Registrations[c.Institution]
	home := c.Institution == p.HomeInstitution
	if !ok {
		if err := p.admit(ActionCancel, c.Meta, c.CustomerType, now); err != nil {
			return nil, err
		}
		return nil, refuse(RuleHWOnePerInstitution, "device is not registered at %s", c.Institution)
	}
	if home && c.Customer == nil {
		// The ledger loads the customer only for a cancellation the channel
		// may make at home: whoever may not (the centre) is refused by rule.
		if err := p.admit(ActionCancel, c.Meta, c.CustomerType, now); err != nil {
			return nil, err
		}
		return nil, ErrCustomerState
	}
	if home && c.Customer.Ref != events.CustomerRef(reg.CustomerNo) {
		return nil, ErrCustomerState
	}
	_, ct, err := d.acting(c, p)
	if err != nil {
		return nil, err
	}
	if err := d.admit(ActionCancel, c.Meta, ct, now, p); err != nil {
		return nil, err
	}
	if d.Locked && c.online() {
		return nil, refuse(RuleHWLockedOnline, "device is locked after %d errors; cancel in branch or reset first", d.ErrorCount)
	}
	reason := c.Reason
	switch reason {
	case "":
		reason = events.CancelCustomerRequest
	case events.CancelReplacedByMobile:
		return nil, &events.FieldError{Field: "reason", Reason: "REPLACED_BY_MOBILE is recorded by the ledger when a mobile OTP replaces the registration"}
	}
	vendor, serial, _ := d.Ref.DeviceKey()
	payload := events.Cancelled{Vendor: vendor, Serial: serial, CustomerNo: reg.CustomerNo, Reason: reason}
	dev := c.envelope(0, d.Ref, now, payload)
	if !home {
		return []events.Event{dev}, nil
	}
	cust := c.envelope(1, c.Customer.Ref, now, payload)
	cust.CausationID = dev.ID.String()
	return []events.Event{dev, cust}, nil
}

func (d Device) reportLoss(c ReportLoss, now time.Time, p *Policy) ([]events.Event, error) {
	no, ct, err := d.acting(c, p)
	if err != nil {
		return nil, err
	}
	if err := d.admit(ActionLossReport, c.Meta, ct, now, p); err != nil {
		return nil, err
	}
	if len(d.Registrations) == 0 {
		return nil, refuse(RuleHWLostAll, "device is registered nowhere; there is no institution to put in accident")
	}
	insts := slices.Sorted(maps.Keys(d.Registrations))
	return []events.Event{c.envelope(0, d.Ref, now, events.ReportedLost{Reason: c.Reason, Institutions: insts, CustomerNo: no})}, nil
}

func (d Device) recover(c Recover, now time.Time, p *Policy) ([]events.Event, error) {
	no, ct, err := d.acting(c, p)
	if err != nil {
		return nil, err
	}
	if err := d.admit(ActionRecovery, c.Meta, ct, now, p); err != nil {
		return nil, err
	}
	if !d.Accident[c.Institution] {
		return nil, refuse(RuleHWRecoverEach, "device is not in accident at %s", c.Institution)
	}
	if c.Institution == p.HomeInstitution && c.Channel.Online() && !d.BranchRecovered {
		return nil, refuse(RuleHWRecoverOnline, "online recovery needs an in-branch recovery at some institution first")
	}
	return []events.Event{c.envelope(0, d.Ref, now, events.Recovered{InBranch: c.inBranch(), CustomerNo: no})}, nil
}

func (d Device) incrementError(c IncrementError, now time.Time, p *Policy) ([]events.Event, error) {
	if err := d.admit(ActionErrorIncrement, c.Meta, c.CustomerType, now, p); err != nil {
		return nil, err
	}
	switch {
	case len(d.Registrations) == 0:
		return nil, refuse(RuleHWDiscarded, "device is registered nowhere; errors count only while a registration is active")
	case d.InAccident():
		return nil, refuse(RuleHWLostBlocks, "device is in accident")
	case d.Locked:
		return nil, refuse(RuleHWLock, "device is locked at %d errors", d.ErrorCount)
	}
	n := d.ErrorCount + 1
	return []events.Event{c.envelope(0, d.Ref, now, events.ErrorIncremented{CountAfter: n, Locked: n >= p.DeviceErrorLimit})}, nil
}

func (d Device) resetErrors(c ResetErrors, now time.Time, p *Policy) ([]events.Event, error) {
	no, ct, err := d.acting(c, p)
	if err != nil {
		return nil, err
	}
	if err := d.admit(ActionErrorReset, c.Meta, ct, now, p); err != nil {
		return nil, err
	}
	if _, ok := d.Registrations[c.Institution]; !ok {
		return nil, refuse(RuleHWResetAll, "device is not registered at %s, which cannot reset it", c.Institution)
	}
	return []events.Event{c.envelope(0, d.Ref, now, events.ErrorReset{CountBefore: d.ErrorCount, CustomerNo: no})}, nil
}

// decideApproval applies R-APPROVAL for either aggregate.
func decideApproval(ref events.AggregateRef, pending map[uuid.UUID]string, c Approve, now time.Time) ([]events.Event, error) {
	if !events.ValidActorID(c.Approver) {
		return nil, events.ActorIDCode.Refusal("approver")
	}
	staff, ok := pending[c.Target]
	switch {
	case !ok:
		return nil, refuse(RuleApproval, "event is not a branch event of %s awaiting approval", ref)
	case staff == c.Approver:
		return nil, refuse(RuleApproval, "the staff member who processed an event cannot approve it")
	}
	m := c.Meta
	m.CausationID = c.Target.String()
	return []events.Event{m.envelope(0, ref, now, events.Approved{EventID: c.Target, Approver: c.Approver})}, nil
}

// Evolve returns the state after event e. It applies facts and never fails:
// an event of another aggregate or an unknown type only counts the version.
func (d Device) Evolve(e events.Event) Device {
	d.Version++
	if e.Approvable() {
		d.Pending = with(d.Pending, e.ID, e.Staff)
	}
	switch p := e.Payload.(type) {
	case events.Registered:
		d.Registrations = with(d.Registrations, e.Institution, Registration{CustomerNo: p.CustomerNo, Since: e.OccurredAt,
			WarrantyFrom: p.WarrantyFrom, WarrantyTo: p.WarrantyTo, ResponseCodeGiven: p.ResponseCodeGiven})
	case events.Cancelled:
		// R-HW-LOST-BLOCKS: a cancellation never ends an accident; only a
		// recovery at that institution does.
		d.Registrations = without(d.Registrations, e.Institution)
	case events.ReportedLost:
		// A report during an accident adds the institutions registered
		// since; those already in accident stay so. Either way the next
		// online recovery needs a new in-branch one (R-HW-RECOVER-ONLINE).
		if !d.InAccident() {
			d.AccidentSince = e.OccurredAt
		}
		acc := maps.Clone(d.Accident)
		if acc == nil {
			acc = make(map[string]bool, len(p.Institutions))
		}
		for _, inst := range p.Institutions {
			acc[inst] = true
		}
		d.Accident, d.BranchRecovered = acc, false
	case events.Recovered:
		d.BranchRecovered = d.BranchRecovered || p.InBranch
		d.leaveAccident(e.Institution)
	case events.ErrorIncremented:
		d.ErrorCount, d.Locked, d.LastErrorAt = p.CountAfter, p.Locked, e.OccurredAt
	case events.ErrorReset:
		d.ErrorCount, d.Locked, d.LastResetAt = 0, false, e.OccurredAt
	case events.Approved:
		d.Pending = without(d.Pending, p.EventID)
	}
	return d
}

func (d *Device) leaveAccident(inst string) {
	if !d.Accident[inst] {
		return
	}
	d.Accident = without(d.Accident, inst)
	if len(d.Accident) == 0 {
		d.Accident, d.AccidentSince, d.BranchRecovered = nil, time.Time{}, false
	}
}

// with returns a copy of m with k set to v (copy-on-write keeps states immutable).
func with[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	out := make(map[K]V, len(m)+1)
	maps.Copy(out, m)
	out[k] = v
	return out
}

// without returns a copy of m without k, or nil when that leaves it empty.
func without[K comparable, V any](m map[K]V, k K) map[K]V {
	if _, ok := m[k]; !ok {
		return m
	}
	if len(m) == 1 {
		return nil
	}
	out := make(map[K]V, len(m)-1)
	for kk, v := range m {
		if kk != k {
			out[kk] = v
		}
	}
	return out
}
