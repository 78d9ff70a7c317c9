package projections

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
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

// CustomerDevice is a row of the 2376 per-customer list.
type CustomerDevice struct {
	CustomerNo string     `json:"customer_no"`
	Kind       string     `json:"kind"` // HARDWARE or MOBILE
	MediumID   string     `json:"medium_id"`
	Status     string     `json:"status"` // ACTIVE, CANCELLED, REVOKED
	Since      time.Time  `json:"since"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	UpdatedSeq uint64     `json:"-"`
}

// Media is a row of the 2373 customer media history.
type Media struct {
	CustomerNo  string    `json:"customer_no"`
	Seq         uint64    `json:"sequence"`
	Idx         int       `json:"index"`
	Kind        string    `json:"kind"`
	MediumID    string    `json:"medium_id"`
	Action      string    `json:"action"` // REGISTERED, CANCELLED, ISSUED, REVOKED
	Reason      string    `json:"reason,omitempty"`
	Institution string    `json:"institution"`
	Channel     string    `json:"channel"`
	OccurredAt  time.Time `json:"occurred_at"`
}

// Institution is a row of the 2376 per-device institutions view.
type Institution struct {
	Vendor        string     `json:"vendor"`
	Serial        string     `json:"serial"`
	Institution   string     `json:"institution"`
	CustomerNo    string     `json:"customer_no,omitempty"`
	RegisteredAt  time.Time  `json:"registered_at"`
	WarrantyFrom  string     `json:"warranty_from,omitempty"`
	WarrantyTo    string     `json:"warranty_to,omitempty"`
	InAccident    bool       `json:"in_accident"`
	AccidentSince *time.Time `json:"accident_since,omitempty"`
	UpdatedSeq    uint64     `json:"-"`
}

// History is a row of the 2376 per-device history.
type History struct {
	Vendor      string          `json:"-"`
	Serial      string          `json:"-"`
	Seq         uint64          `json:"sequence"`
	Idx         int             `json:"index"`
	EventID     uuid.UUID       `json:"id"`
	Type        string          `json:"type"`
	OccurredAt  time.Time       `json:"occurred_at"`
	RecordedAt  time.Time       `json:"recorded_at"`
	Institution string          `json:"institution"`
	Channel     string          `json:"channel"`
	ActorRole   string          `json:"actor_role"`
	ActorID     string          `json:"actor_id,omitempty"`
	Staff       string          `json:"staff,omitempty"`
	Payload     json.RawMessage `json:"payload"`
}

// Errors is a row of the 2376 per-device error count.
type Errors struct {
	Vendor      string     `json:"vendor"`
	Serial      string     `json:"serial"`
	Count       int        `json:"count"`
	Locked      bool       `json:"locked"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastResetAt *time.Time `json:"last_reset_at,omitempty"`
	UpdatedSeq  uint64     `json:"-"`
}

// Mobile is the active mobile OTP of a customer.
type Mobile struct {
	CustomerNo  string     `json:"customer_no"`
	GeneratorNo string     `json:"generator_no"`
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

// InstitutionDevice is a row of the per-institution view: a registration
// with its device's error state.
type InstitutionDevice struct {
	Institution
	Count  int  `json:"error_count"`
	Locked bool `json:"locked"`
}
