package projections

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Customer is a row of the customer look-up view (2373).
type Customer struct {
	CustomerNo     string   `json:"customer_no"`
	Type           string   `json:"customer_type"`
	Residency      string   `json:"residency"`
	RealNameFP     string   `json:"real_name_fingerprint"`
	RealNameMasked string   `json:"real_name_masked"`
	Accounts       []string `json:"accounts"`
	UpdatedSeq     uint64   `json:"-"`
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
	StatusExpired     = "EXPIRED"     // warranty ended (hardware, shown only) or validity ended (mobile)
	StatusPINLocked   = "PIN_LOCKED"  // mobile: PIN errors at the limit (R-MOB-PIN-LOCK)
	IssueStatusIssued = "ISSUED"      // 2373 "교부": in force
	IssueStatusEnded  = "ENDED"       // cancelled or revoked
)

// CustomerDevice is a row of the 2376 per-customer list.
type CustomerDevice struct {
	CustomerNo string     `json:"customer_no"`
	Kind       string     `json:"kind"` // HARDWARE or MOBILE
	MediumID   string     `json:"medium_id"`
	Status     string     `json:"status"` // a teller status (StatusActive …)
	AccidentAt []string   `json:"accident_institutions,omitempty"`
	WarrantyTo string     `json:"warranty_to,omitempty"` // hardware, from its registration at home
	ValidUntil *time.Time `json:"valid_until,omitempty"` // mobile
	Since      time.Time  `json:"since"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	UpdatedSeq uint64     `json:"-"`
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
// the medium's state: in accident before locked before expired.
func (c *CustomerDevice) settle(st mediumState, at time.Time) {
	if c.Status != StatusActive {
		return
	}
	c.AccidentAt, c.WarrantyTo, c.ValidUntil = st.accidentAt, st.warrantyTo, st.validUntil
	switch {
	case c.Kind == KindHardware && len(st.accidentAt) > 0:
		c.Status = StatusAccident
	case c.Kind == KindHardware && st.locked:
		c.Status = StatusDevLocked
	case c.Kind == KindMobile && st.locked:
		c.Status = StatusPINLocked
	case st.warrantyTo != "" && at.UTC().Format(time.DateOnly) > st.warrantyTo,
		st.validUntil != nil && !at.Before(*st.validUntil):
		c.Status = StatusExpired
	}
}

// Media is a row of the 2373 customer media history: one medium issued or
// registered for the customer, with its issue status.
type Media struct {
	CustomerNo      string     `json:"customer_no"`
	Seq             uint64     `json:"sequence"`
	Idx             int        `json:"index"`
	Kind            string     `json:"kind"`
	MediumID        string     `json:"medium_id"`
	GeneratorNumber string     `json:"generator_number"` // the device's serial or the mobile OTP's number
	IssueStatus     string     `json:"issue_status"`     // ISSUED (교부) or ENDED
	Institution     string     `json:"institution"`
	Channel         string     `json:"channel"`
	IssuedAt        time.Time  `json:"issued_at"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	EndReason       string     `json:"end_reason,omitempty"`
}

// Institution is a row of the 2376 per-device institutions view: the
// device's last registration at one institution, kept once cancelled.
type Institution struct {
	Vendor        string     `json:"vendor"`
	Serial        string     `json:"serial"`
	Institution   string     `json:"institution"`
	CustomerNo    string     `json:"customer_no,omitempty"`
	RegisteredAt  time.Time  `json:"registered_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"` // cancelled then
	CancelReason  string     `json:"cancel_reason,omitempty"`
	WarrantyFrom  string     `json:"warranty_from,omitempty"`
	WarrantyTo    string     `json:"warranty_to,omitempty"`
	InAccident    bool       `json:"in_accident"` // a cancellation does not end it (R-HW-LOST-BLOCKS)
	AccidentSince *time.Time `json:"accident_since,omitempty"`
	RecoveredAt   *time.Time `json:"recovered_at,omitempty"` // this institution's last recovery
	// RecoveredInBranch says whether that recovery was made in person.
	RecoveredInBranch bool `json:"recovered_in_branch"`
	// BranchRecovered is the device's: whether an in-branch recovery has
	// happened at any institution since the last loss report, so whether
	// an online recovery at home is open (R-HW-RECOVER-ONLINE).
	BranchRecovered bool   `json:"branch_recovered_since_report"`
	UpdatedSeq      uint64 `json:"-"`
}

// Active reports whether the registration has not been cancelled.
func (i Institution) Active() bool { return i.EndedAt == nil }

// History is a row of the 2376 per-device history.
type History struct {
	Vendor        string            `json:"-"`
	Serial        string            `json:"-"`
	Seq           uint64            `json:"sequence"`
	Idx           int               `json:"index"`
	EventID       uuid.UUID         `json:"id"`
	Type          string            `json:"type"`
	OccurredAt    time.Time         `json:"occurred_at"`
	RecordedAt    time.Time         `json:"recorded_at"`
	Institution   string            `json:"institution"`
	Channel       string            `json:"channel"`
	OriginChannel string            `json:"origin_channel,omitempty"` // the centre feed's channel at the other institution
	Actor         events.Actor      `json:"actor"`
	Principal     *events.Principal `json:"principal,omitempty"` // who sent it (authenticated)
	Staff         string            `json:"staff,omitempty"`
	Documents     []string          `json:"documents"`
	Approval      *HistoryApproval  `json:"approval,omitempty"`
	Payload       json.RawMessage   `json:"payload"`
}

// HistoryApproval is a branch manager's approval of a history row (R-APPROVAL).
type HistoryApproval struct {
	Approver   string    `json:"approver"`
	ApprovedAt time.Time `json:"approved_at"`
}

// Errors is a row of the 2376 per-device error count.
type Errors struct {
	Vendor      string     `json:"vendor"`
	Serial      string     `json:"serial"`
	Count       int        `json:"count"`
	Locked      bool       `json:"locked"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastResetAt *time.Time `json:"last_reset_at,omitempty"`
	// BranchRecovered is shown in the per-device institutions view.
	BranchRecovered bool   `json:"-"`
	UpdatedSeq      uint64 `json:"-"`
}

// Mobile is the active mobile OTP of a customer.
type Mobile struct {
	CustomerNo  string     `json:"customer_no"`
	GeneratorNo string     `json:"generator_number"`
	Status      string     `json:"status"` // ACTIVE, PIN_LOCKED or EXPIRED at the time of the answer
	PhoneMasked string     `json:"phone_masked"`
	IssuedAt    time.Time  `json:"issued_at"`
	ValidUntil  time.Time  `json:"valid_until"`
	Errors      int        `json:"errors"`
	Locked      bool       `json:"locked"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastResetAt *time.Time `json:"last_reset_at,omitempty"`
	UpdatedSeq  uint64     `json:"-"`
}

// Approval is a branch event awaiting approval.
type Approval struct {
	EventID       uuid.UUID `json:"event_id"`
	Seq           uint64    `json:"sequence"`
	Idx           int       `json:"index"`
	AggregateKind string    `json:"aggregate_kind"`
	AggregateKey  string    `json:"aggregate_key"`
	Type          string    `json:"type"`
	Institution   string    `json:"institution"`
	Staff         string    `json:"staff"`
	OccurredAt    time.Time `json:"occurred_at"`
}

// Quarantined is a message the projector could not decode or apply.
type Quarantined struct {
	Seq     uint64 `json:"sequence"`
	Subject string `json:"subject"`
	Error   string `json:"error"`
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
	Count  int  `json:"error_count"`
	Locked bool `json:"locked"`
}
