package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// List is the answer of a list query: its items, the cursor of the next
// page ("" at the end) and the stream sequence the answer reflects.
type List[T any] struct {
	Items        []T    `json:"items"`
	NextCursor   string `json:"next_cursor,omitempty"`
	AsOfSequence uint64 `json:"as_of_sequence"`
}

// Page asks for one page of a list: at most Limit items (0: the server's
// default) after Cursor (a previous answer's NextCursor; "" from the start).
type Page struct {
	Limit  int
	Cursor string
}

// Read says how fresh an answer must be: MinSequence makes the server wait
// (boundedly) until its views reach that stream sequence, e.g. a command's
// [Answer.Last] (read your writes).
type Read struct {
	MinSequence uint64
	Page
}

func (r Read) query(extra url.Values) string {
	q := url.Values{}
	for k, v := range extra {
		if v[0] != "" {
			q[k] = v
		}
	}
	if r.MinSequence > 0 {
		q.Set("min_sequence", strconv.FormatUint(r.MinSequence, 10))
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Cursor != "" {
		q.Set("cursor", r.Cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func get[T any](ctx context.Context, c *Client, path string, r Read, extra url.Values) (T, error) {
	var out T
	err := c.do(ctx, http.MethodGet, path+r.query(extra), "", nil, &out)
	return out, err
}

// Customer is a customer found by real-name or account number.
type Customer struct {
	CustomerNo     string   `json:"customer_no"`
	Type           string   `json:"customer_type"`
	Nationality    string   `json:"nationality"`
	RealNameMasked string   `json:"real_name_masked"`
	Accounts       []string `json:"accounts"`
}

// FindCustomers looks customers up by real-name number or account number
// (one of them; teller, manager or auditor). The server records the look-up
// under the client's principal and never keeps the number.
func (c *Client) FindCustomers(ctx context.Context, realNameNumber, accountNo string) (List[Customer], error) {
	return get[List[Customer]](ctx, c, "/v1/customers", Read{}, url.Values{"real_name_number": {realNameNumber}, "account_no": {accountNo}})
}

// CustomerDevice is a row of screen 2376's per-customer list.
type CustomerDevice struct {
	Kind       string   `json:"kind"` // HARDWARE or MOBILE
	MediumID   string   `json:"medium_id"`
	Status     string   `json:"status"` // ACTIVE, IN_ACCIDENT, LOCKED, EXPIRED (mobile only), PIN_LOCKED, CANCELLED, REVOKED
	AccidentAt []string `json:"accident_institutions,omitempty"`
	WarrantyTo string   `json:"warranty_to,omitempty"`
	// WarrantyEnded: a hardware device past its warranty, shown and never
	// enforced (R-HW-VALIDITY): its status stays ACTIVE while it works.
	WarrantyEnded bool       `json:"warranty_ended,omitempty"`
	ValidUntil    *time.Time `json:"valid_until,omitempty"`
	Since         time.Time  `json:"since"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
}

// CustomerDevices returns a customer's OTP media with their teller status.
func (c *Client) CustomerDevices(ctx context.Context, customerNo string, r Read) (List[CustomerDevice], error) {
	return get[List[CustomerDevice]](ctx, c, cust(customerNo)+"/devices", r, nil)
}

// Media is a row of screen 2373, the customer's media history.
type Media struct {
	Sequence        uint64     `json:"sequence"`
	Kind            string     `json:"kind"`
	MediumID        string     `json:"medium_id"`
	GeneratorNumber string     `json:"generator_number"`
	IssueStatus     string     `json:"issue_status"` // ISSUED or ENDED
	Institution     string     `json:"institution"`
	Channel         string     `json:"channel"`
	IssuedAt        time.Time  `json:"issued_at"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	EndReason       string     `json:"end_reason,omitempty"`
}

// CustomerMedia returns a customer's media history; kind "" for both,
// HARDWARE or MOBILE for one.
func (c *Client) CustomerMedia(ctx context.Context, customerNo, kind string, r Read) (List[Media], error) {
	return get[List[Media]](ctx, c, cust(customerNo)+"/media", r, url.Values{"kind": {kind}})
}

// MobileOTP is a customer's mobile OTP in force.
type MobileOTP struct {
	GeneratorNumber string     `json:"generator_number"`
	Status          string     `json:"status"` // ACTIVE, PIN_LOCKED or EXPIRED
	PhoneMasked     string     `json:"phone_masked"`
	IssuedAt        time.Time  `json:"issued_at"`
	ValidUntil      time.Time  `json:"valid_until"`
	Errors          int        `json:"errors"`
	Locked          bool       `json:"locked"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	LastResetAt     *time.Time `json:"last_reset_at,omitempty"`
	AsOfSequence    uint64     `json:"as_of_sequence"`
}

// MobileOTP returns the customer's mobile OTP in force (an *Error with
// Status 404 when there is none).
func (c *Client) MobileOTP(ctx context.Context, customerNo string, r Read) (MobileOTP, error) {
	return get[MobileOTP](ctx, c, cust(customerNo)+"/mobile-otp", r, nil)
}

// DeviceState is a device's state from the ledger, now or as of an instant.
type DeviceState struct {
	Version       uint64                     `json:"version"`
	Registrations map[string]json.RawMessage `json:"registrations"`
	ErrorCount    int                        `json:"error_count"`
	Locked        bool                       `json:"locked"`
	InAccidentAt  []string                   `json:"in_accident_at"`
	AsOf          *time.Time                 `json:"as_of,omitempty"`
	AsOfSequence  uint64                     `json:"as_of_sequence"`
}

// Device returns a device's state now (asOf zero) or as of an instant.
func (c *Client) Device(ctx context.Context, vendor, serial string, asOf time.Time) (DeviceState, error) {
	at := ""
	if !asOf.IsZero() {
		at = asOf.Format(time.RFC3339Nano)
	}
	return get[DeviceState](ctx, c, dev(vendor, serial), Read{}, url.Values{"as_of": {at}})
}

// Institution is a row of screen 2376's per-device institutions.
type Institution struct {
	Institution       string     `json:"institution"`
	CustomerNo        string     `json:"customer_no,omitempty"`
	RegisteredAt      time.Time  `json:"registered_at"`
	EndedAt           *time.Time `json:"ended_at,omitempty"`
	CancelReason      string     `json:"cancel_reason,omitempty"`
	WarrantyFrom      string     `json:"warranty_from,omitempty"`
	WarrantyTo        string     `json:"warranty_to,omitempty"`
	InAccident        bool       `json:"in_accident"`
	AccidentSince     *time.Time `json:"accident_since,omitempty"`
	RecoveredAt       *time.Time `json:"recovered_at,omitempty"`
	RecoveredInBranch bool       `json:"recovered_in_branch"`
	BranchRecovered   bool       `json:"branch_recovered_since_report"`
}

// DeviceInstitutions returns the institutions a device is or was registered at.
func (c *Client) DeviceInstitutions(ctx context.Context, vendor, serial string, r Read) (List[Institution], error) {
	return get[List[Institution]](ctx, c, dev(vendor, serial)+"/institutions", r, nil)
}

// HistoryItem is a row of screen 2376's per-device history.
type HistoryItem struct {
	Sequence      uint64          `json:"sequence"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	OccurredAt    time.Time       `json:"occurred_at"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Institution   string          `json:"institution"`
	Channel       string          `json:"channel"`
	OriginChannel string          `json:"origin_channel,omitempty"`
	Actor         Actor           `json:"actor"`
	Principal     *Principal      `json:"principal,omitempty"`
	Staff         string          `json:"staff,omitempty"`
	Documents     []string        `json:"documents"`
	Approval      *Approval       `json:"approval,omitempty"`
	Payload       json.RawMessage `json:"payload"`
}

// Principal is who sent an event, as the server authenticated it.
type Principal struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	Method string `json:"method"`
}

// Approval is a manager's approval of a branch event.
type Approval struct {
	Approver   string    `json:"approver"`
	ApprovedAt time.Time `json:"approved_at"`
}

// DeviceHistory returns a device's events, oldest first, one page at a time.
func (c *Client) DeviceHistory(ctx context.Context, vendor, serial string, r Read) (List[HistoryItem], error) {
	return get[List[HistoryItem]](ctx, c, dev(vendor, serial)+"/history", r, nil)
}

// InstitutionDevice is a device registered at an institution, with its
// error count.
type InstitutionDevice struct {
	Vendor string `json:"vendor"`
	Serial string `json:"serial"`
	Institution
	ErrorCount int  `json:"error_count"`
	Locked     bool `json:"locked"`
}

// InstitutionDevices lists the devices registered at an institution;
// status "" for all, IN_ACCIDENT or LOCKED for those.
func (c *Client) InstitutionDevices(ctx context.Context, code, status string, r Read) (List[InstitutionDevice], error) {
	return get[List[InstitutionDevice]](ctx, c, "/v1/institutions/"+url.PathEscape(code)+"/devices", r, url.Values{"status": {status}})
}

// PendingApproval is a branch event awaiting a manager's approval.
type PendingApproval struct {
	EventID       string    `json:"event_id"`
	Sequence      uint64    `json:"sequence"`
	AggregateKind string    `json:"aggregate_kind"`
	AggregateKey  string    `json:"aggregate_key"`
	Type          string    `json:"type"`
	Institution   string    `json:"institution"`
	Staff         string    `json:"staff"`
	OccurredAt    time.Time `json:"occurred_at"`
}

// PendingApprovals lists the branch events awaiting approval.
func (c *Client) PendingApprovals(ctx context.Context, r Read) (List[PendingApproval], error) {
	return get[List[PendingApproval]](ctx, c, "/v1/approvals/pending", r, nil)
}
