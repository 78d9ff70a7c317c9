package projections

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Customer is a row of the customer look-up view (2373).
type Customer struct {
	CustomerNo     string   `json:"customer_no" db:"customer_no"`
	Type           string   `json:"customer_type" db:"customer_type"`
	Nationality    string   `json:"nationality" db:"nationality"`
	RealNameFP     string   `json:"real_name_fingerprint" db:"real_name_fp"`
	RealNameMasked string   `json:"real_name_masked" db:"real_name_masked"`
	Accounts       []string `json:"accounts" db:"accounts"`
	UpdatedSeq     uint64   `json:"-" db:"updated_seq"`
}

// Teller statuses of the 2376 per-customer list: what a teller must know of
// a medium. The stored status is ACTIVE, CANCELLED or REVOKED; an active
// medium's teller status is read with its device's or mobile OTP's state.
const (
	StatusActive      = "ACTIVE"
	StatusCancelled   = "CANCELLED"
	StatusRevoked     = "REVOKED"
	StatusAccident    = "IN_ACCIDENT" // hardware: in accident at AccidentAt
	StatusDevLocked   = "LOCKED"      // hardware: error count at the limit (R-HW-LOCK)
	StatusExpired     = "EXPIRED"     // mobile only: validity ended (R-MOB-VALIDITY); a hardware warranty's end is WarrantyEnded
	StatusPINLocked   = "PIN_LOCKED"  // mobile: PIN errors at the limit (R-MOB-PIN-LOCK)
	IssueStatusIssued = "ISSUED"      // 2373 "교부": in force
	IssueStatusEnded  = "ENDED"       // cancelled or revoked
)

// CustomerDevice is a row of the 2376 per-customer list.
type CustomerDevice struct {
	CustomerNo string   `json:"customer_no" db:"customer_no"`
	Kind       string   `json:"kind" db:"kind"` // HARDWARE or MOBILE
	MediumID   string   `json:"medium_id" db:"medium_id"`
	Status     string   `json:"status" db:"status"` // a teller status (StatusActive …)
	AccidentAt []string `json:"accident_institutions,omitempty" db:"-"`
	WarrantyTo string   `json:"warranty_to,omitempty" db:"-"` // hardware, from its registration at home
	// WarrantyEnded says a hardware device is past its warranty (the day
	// after warranty_to in Korea time). It is shown, never enforced: the
	// device stays ACTIVE while it works (R-HW-VALIDITY).
	WarrantyEnded bool       `json:"warranty_ended,omitempty" db:"-"`
	ValidUntil    *time.Time `json:"valid_until,omitempty" db:"-"` // mobile
	Since         time.Time  `json:"since" db:"since"`
	EndedAt       *time.Time `json:"ended_at,omitempty" db:"ended_at"`
	UpdatedSeq    uint64     `json:"-" db:"updated_seq"`
}

// mediumState is what the teller status of an active medium reads besides
// its row: the device's or the mobile OTP's state.
type mediumState struct {
	locked     bool // device locked, or mobile PIN-locked
	accidentAt []string
	warrantyTo string
	validUntil *time.Time
}

// settle sets the row's teller status at time at from the stored status and
// the medium's state: in accident before locked before expired (a mobile
// OTP's validity). A hardware device's warranty never changes its status
// (R-HW-VALIDITY): its end is WarrantyEnded, beside whatever status it has.
func (c *CustomerDevice) settle(st mediumState, at time.Time) {
	if c.Status != StatusActive {
		return
	}
	c.AccidentAt, c.WarrantyTo, c.ValidUntil = st.accidentAt, st.warrantyTo, st.validUntil
	c.WarrantyEnded = c.Kind == KindHardware && WarrantyEnded(st.warrantyTo, at)
	switch {
	case c.Kind == KindHardware && len(st.accidentAt) > 0:
		c.Status = StatusAccident
	case c.Kind == KindHardware && st.locked:
		c.Status = StatusDevLocked
	case c.Kind == KindMobile && st.locked:
		c.Status = StatusPINLocked
	case c.Kind == KindMobile && st.validUntil != nil && !at.Before(*st.validUntil):
		c.Status = StatusExpired
	}
}

// korea is Korea Standard Time, UTC+9 all year (no daylight saving since
// 1988): a warranty's dates are Korean calendar dates.
var korea = time.FixedZone("KST", 9*60*60)

// WarrantyEnded reports whether a warranty ending on date to (YYYY-MM-DD,
// the last day covered; "" for none given) has ended at instant at: whether
// at is on a later day in Korea.
func WarrantyEnded(to string, at time.Time) bool {
	return to != "" && at.In(korea).Format(time.DateOnly) > to
}

// Media is a row of the 2373 customer media history: one medium issued or
// registered for the customer, with its issue status.
type Media struct {
	CustomerNo      string     `json:"customer_no" db:"customer_no"`
	Seq             uint64     `json:"sequence" db:"seq"`
	Idx             int        `json:"index" db:"idx"`
	Kind            string     `json:"kind" db:"kind"`
	MediumID        string     `json:"medium_id" db:"medium_id"`
	GeneratorNumber string     `json:"generator_number" db:"generator_number"` // the device's serial or the mobile OTP's number
	IssueStatus     string     `json:"issue_status" db:"issue_status"`         // ISSUED (교부) or ENDED
	Institution     string     `json:"institution" db:"institution"`
	Channel         string     `json:"channel" db:"channel"`
	IssuedAt        time.Time  `json:"issued_at" db:"issued_at"`
	EndedAt         *time.Time `json:"ended_at,omitempty" db:"ended_at"`
	EndReason       string     `json:"end_reason,omitempty" db:"end_reason"`
}

// Institution is a row of the 2376 per-device institutions view: the
// device's last registration at one institution, kept once cancelled.
type Institution struct {
	Vendor        string     `json:"vendor" db:"vendor"`
	Serial        string     `json:"serial" db:"serial"`
	Institution   string     `json:"institution" db:"institution"`
	CustomerNo    string     `json:"customer_no,omitempty" db:"customer_no"`
	RegisteredAt  time.Time  `json:"registered_at" db:"registered_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty" db:"ended_at"` // cancelled then
	CancelReason  string     `json:"cancel_reason,omitempty" db:"cancel_reason"`
	WarrantyFrom  string     `json:"warranty_from,omitempty" db:"warranty_from"`
	WarrantyTo    string     `json:"warranty_to,omitempty" db:"warranty_to"`
	InAccident    bool       `json:"in_accident" db:"in_accident"` // a cancellation does not end it (R-HW-LOST-BLOCKS)
	AccidentSince *time.Time `json:"accident_since,omitempty" db:"accident_since"`
	RecoveredAt   *time.Time `json:"recovered_at,omitempty" db:"recovered_at"` // this institution's last recovery
	// RecoveredInBranch says whether that recovery was made in person.
	RecoveredInBranch bool `json:"recovered_in_branch" db:"recovered_in_branch"`
	// BranchRecovered is the device's: whether an in-branch recovery has
	// happened at any institution since the last loss report, so whether
	// an online recovery at home is open (R-HW-RECOVER-ONLINE).
	BranchRecovered bool   `json:"branch_recovered_since_report" db:"branch_recovered"`
	UpdatedSeq      uint64 `json:"-" db:"updated_seq"`
}

// Active reports whether the registration has not been cancelled.
func (i Institution) Active() bool { return i.EndedAt == nil }

// History is a row of the 2376 per-device history.
type History struct {
	Vendor        string            `json:"-" db:"vendor"`
	Serial        string            `json:"-" db:"serial"`
	Seq           uint64            `json:"sequence" db:"seq"`
	Idx           int               `json:"index" db:"idx"`
	EventID       uuid.UUID         `json:"id" db:"event_id"`
	Type          string            `json:"type" db:"type"`
	OccurredAt    time.Time         `json:"occurred_at" db:"occurred_at"`
	RecordedAt    time.Time         `json:"recorded_at" db:"recorded_at"`
	Institution   string            `json:"institution" db:"institution"`
	Channel       string            `json:"channel" db:"channel"`
	OriginChannel string            `json:"origin_channel,omitempty" db:"origin_channel"` // the centre feed's channel at the other institution
	Actor         events.Actor      `json:"actor" db:"-"`
	Principal     *events.Principal `json:"principal,omitempty" db:"-"` // who sent it (authenticated)
	Staff         string            `json:"staff,omitempty" db:"staff"`
	Documents     []string          `json:"documents" db:"documents"`
	Approval      *HistoryApproval  `json:"approval,omitempty" db:"-"`
	Payload       json.RawMessage   `json:"payload" db:"-"`
}

// HistoryApproval is a branch manager's approval of a history row (R-APPROVAL).
type HistoryApproval struct {
	Approver   string    `json:"approver"`
	ApprovedAt time.Time `json:"approved_at"`
}

// Errors is a row of the 2376 per-device error count.
type Errors struct {
	Vendor      string     `json:"vendor" db:"vendor"`
	Serial      string     `json:"serial" db:"serial"`
	Count       int        `json:"count" db:"count"`
	Locked      bool       `json:"locked" db:"locked"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty" db:"last_error_at"`
	LastResetAt *time.Time `json:"last_reset_at,omitempty" db:"last_reset_at"`
	// BranchRecovered is shown in the per-device institutions view.
	BranchRecovered bool   `json:"-" db:"branch_recovered"`
	UpdatedSeq      uint64 `json:"-" db:"updated_seq"`
}

// Mobile is the active mobile OTP of a customer.
type Mobile struct {
	CustomerNo  string     `json:"customer_no" db:"customer_no"`
	GeneratorNo string     `json:"generator_number" db:"generator_no"`
	Status      string     `json:"status" db:"-"` // ACTIVE, PIN_LOCKED or EXPIRED at the time of the answer
	PhoneMasked string     `json:"phone_masked" db:"phone_masked"`
	IssuedAt    time.Time  `json:"issued_at" db:"issued_at"`
	ValidUntil  time.Time  `json:"valid_until" db:"valid_until"`
	Errors      int        `json:"errors" db:"errors"`
	Locked      bool       `json:"locked" db:"locked"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty" db:"last_error_at"`
	LastResetAt *time.Time `json:"last_reset_at,omitempty" db:"last_reset_at"`
	UpdatedSeq  uint64     `json:"-" db:"updated_seq"`
}

// Approval is a branch event awaiting approval.
type Approval struct {
	EventID       uuid.UUID `json:"event_id" db:"event_id"`
	Seq           uint64    `json:"sequence" db:"seq"`
	Idx           int       `json:"index" db:"idx"`
	AggregateKind string    `json:"aggregate_kind" db:"aggregate_kind"`
	AggregateKey  string    `json:"aggregate_key" db:"aggregate_key"`
	Type          string    `json:"type" db:"type"`
	Institution   string    `json:"institution" db:"institution"`
	Staff         string    `json:"staff" db:"staff"`
	OccurredAt    time.Time `json:"occurred_at" db:"occurred_at"`
}

// Quarantined is a message the projector could not decode or apply.
type Quarantined struct {
	Seq     uint64 `json:"sequence" db:"seq"`
	Subject string `json:"subject" db:"subject"`
	Error   string `json:"error" db:"error"`
}

// settle sets the mobile OTP's status at time at.
func (m *Mobile) settle(at time.Time) {
	switch {
	case m.Locked:
		m.Status = StatusPINLocked
	case !at.Before(m.ValidUntil):
		m.Status = StatusExpired
	default:
		m.Status = StatusActive
	}
}

// InstitutionDevice is a row of the per-institution view: a registration
// with its device's error state.
type InstitutionDevice struct {
	Institution
	Count  int  `json:"error_count" db:"count"`
	Locked bool `json:"locked" db:"locked"`
}
