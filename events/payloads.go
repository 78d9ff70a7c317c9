package events

import (
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Type is the stable name of an event type. A name is never reused for a
// different shape: a new shape is a new schema version with an [Upcaster].
type Type string

// The event types of domain.md §3, plus customer_profiled (the customer profile
// that R-MOB-ELIGIBLE, R-AGENT and R-DOCS read) and approved (R-APPROVAL).
const (
	TypeCustomerProfiled Type = "customer_profiled"
	TypePersonClaimed    Type = "person_claimed"
	TypeRegistered       Type = "registered"
	TypeCancelled        Type = "cancelled"
	TypeReportedLost     Type = "reported_lost"
	TypeRecovered        Type = "recovered"
	TypeErrorIncremented Type = "error_incremented"
	TypeErrorReset       Type = "error_reset"
	TypeMobileIssued     Type = "mobile_issued"
	TypeMobileRevoked    Type = "mobile_revoked"
	TypeApproved         Type = "approved"
)

// Payload is the type-specific part of an event. Validate reports the first
// missing or malformed field as a [*FieldError] relative to the payload.
type Payload interface {
	EventType() Type
	Validate() error
}

// CustomerType is a customer's legal form.
type CustomerType string

// Customer types.
const (
	Individual CustomerType = "INDIVIDUAL"
	Corporate  CustomerType = "CORPORATE"
)

// Nationality says whether a customer is a Korean national (내국인) or a
// foreigner: R-MOB-ELIGIBLE reads nationality, not residence.
type Nationality string

// Nationalities.
const (
	Korean    Nationality = "KOREAN"
	NonKorean Nationality = "FOREIGN"
)

// Residency is what customer_profiled version 1 said instead of
// [Nationality]; readers upcast it ([Residency.Nationality]) and the HTTP API
// still reads it.
type Residency string

// Residencies.
const (
	Domestic Residency = "DOMESTIC"
	Foreign  Residency = "FOREIGN"
)

// Nationality returns r's upcast (DOMESTIC → KOREAN, FOREIGN → FOREIGN), or
// "" for anything else.
func (r Residency) Nationality() Nationality {
	switch r {
	case Domestic:
		return Korean
	case Foreign:
		return NonKorean
	}
	return ""
}

// CustomerProfiled records (or replaces) a home-institution customer's
// profile. The real-name number is kept only as a keyed fingerprint and a mask.
type CustomerProfiled struct {
	CustomerType        CustomerType `json:"customer_type"`
	Nationality         Nationality  `json:"nationality"`
	RealNameFingerprint string       `json:"real_name_fingerprint"`
	RealNameMasked      string       `json:"real_name_masked"`
	Accounts            []string     `json:"accounts,omitempty"`
}

// PersonClaimed records, on a person (the aggregate of one real-name
// fingerprint), the customer number its real-name number belongs to
// (R-ONE-PERSON). It is appended with that customer's first profile, in one
// atomic batch, and never again for the person.
type PersonClaimed struct {
	CustomerNo string `json:"customer_no"`
}

// Registered records a hardware device's registration at the event's
// institution (2372). At the home institution it is appended to both the
// device and the customer, in one atomic batch.
type Registered struct {
	Vendor            string `json:"vendor"`
	Serial            string `json:"serial"`
	CustomerNo        string `json:"customer_no,omitempty"`
	WarrantyFrom      string `json:"warranty_from,omitempty"` // YYYY-MM-DD
	WarrantyTo        string `json:"warranty_to,omitempty"`   // YYYY-MM-DD
	ResponseCodeGiven bool   `json:"response_code_given"`
}

// CancelReason says why a registration was cancelled.
type CancelReason string

// Cancel reasons.
const (
	CancelCustomerRequest CancelReason = "CUSTOMER_REQUEST"
	CancelDiscarded       CancelReason = "DISCARDED"
	CancelReplaced        CancelReason = "REPLACED"
	CancelOther           CancelReason = "OTHER"
	// CancelReplacedByMobile ends a home registration in the same append as
	// the mobile OTP issued to replace it (R-ONE-OTP); only the ledger
	// records it, never a cancel command.
	CancelReplacedByMobile CancelReason = "REPLACED_BY_MOBILE"
)

// Cancelled records a registration's cancellation at the event's institution.
type Cancelled struct {
	Vendor     string       `json:"vendor"`
	Serial     string       `json:"serial"`
	CustomerNo string       `json:"customer_no,omitempty"`
	Reason     CancelReason `json:"reason"`
}

// LossReason classifies an accident report.
type LossReason string

// Loss reasons.
const (
	LossLost    LossReason = "LOST"
	LossStolen  LossReason = "STOLEN"
	LossDamaged LossReason = "DAMAGED"
	LossOther   LossReason = "OTHER"
)

// ReportedLost records a loss report made at the event's institution; it puts
// the device in accident at every institution in Institutions (R-HW-LOST-ALL).
// CustomerNo names the home customer who reported it (empty for a report
// fed by the centre, and in events recorded before it was kept). Reason is
// empty when the report gave none (it is optional).
type ReportedLost struct {
	Reason       LossReason `json:"reason"`
	Institutions []string   `json:"institutions"`
	CustomerNo   string     `json:"customer_no,omitempty"`
}

// Recovered records the end of the accident at the event's institution.
// InBranch is true for a recovery made in person (R-HW-RECOVER-ONLINE);
// CustomerNo as in [ReportedLost].
type Recovered struct {
	InBranch   bool   `json:"in_branch"`
	CustomerNo string `json:"customer_no,omitempty"`
}

// ErrorIncremented records one failed authentication, with the count after it
// and whether that count locked the medium (R-HW-LOCK, R-MOB-PIN-LOCK).
type ErrorIncremented struct {
	CountAfter int  `json:"count_after"`
	Locked     bool `json:"locked"`
}

// ErrorReset records an error-count reset (2375) and the count before it;
// for a device, CustomerNo as in [ReportedLost].
type ErrorReset struct {
	CountBefore int    `json:"count_before"`
	CustomerNo  string `json:"customer_no,omitempty"`
}

// Verification is the evidence of a non-face-to-face mobile OTP issuance (R-MOB-VERIFY).
type Verification struct {
	HomeAccount       bool `json:"home_account"`
	PhoneIdentity     bool `json:"phone_identity"`
	OneWonTransfer    bool `json:"one_won_transfer"`
	OTPOrSecurityCard bool `json:"otp_or_security_card"`
}

// Complete reports whether v satisfies R-MOB-VERIFY: home account and phone
// identity, and one of a 1-won transfer or an OTP/security-card authentication.
func (v Verification) Complete() bool {
	return v.HomeAccount && v.PhoneIdentity && (v.OneWonTransfer || v.OTPOrSecurityCard)
}

// MobileIssued records a mobile OTP issued to the customer on one phone.
type MobileIssued struct {
	GeneratorNo      string        `json:"generator_no"`
	PhoneFingerprint string        `json:"phone_fingerprint"`
	PhoneMasked      string        `json:"phone_masked"`
	ValidUntil       time.Time     `json:"valid_until"`
	Verification     *Verification `json:"verification,omitempty"`
}

// RevokeReason says why a mobile OTP was revoked.
type RevokeReason string

// Revoke reasons (domain.md §3).
const (
	RevokeCustomerRequest RevokeReason = "CUSTOMER_REQUEST"
	RevokeSuperseded      RevokeReason = "SUPERSEDED"
	RevokeLocked          RevokeReason = "LOCKED"
	RevokeExpired         RevokeReason = "EXPIRED"
	// RevokeReplacedByHardware ends a mobile OTP in the same append as the
	// home hardware registration that replaces it (R-ONE-OTP); only the
	// ledger records it, never a revocation command.
	RevokeReplacedByHardware RevokeReason = "REPLACED_BY_HARDWARE"
)

// MobileRevoked records the end of a mobile OTP.
type MobileRevoked struct {
	GeneratorNo string       `json:"generator_no"`
	Reason      RevokeReason `json:"reason"`
}

// Approved records a branch manager's approval of an earlier branch event of
// the same aggregate (R-APPROVAL).
type Approved struct {
	EventID  uuid.UUID `json:"event_id"`
	Approver string    `json:"approver"`
}

func (CustomerProfiled) EventType() Type { return TypeCustomerProfiled }
func (PersonClaimed) EventType() Type    { return TypePersonClaimed }
func (Registered) EventType() Type       { return TypeRegistered }
func (Cancelled) EventType() Type        { return TypeCancelled }
func (ReportedLost) EventType() Type     { return TypeReportedLost }
func (Recovered) EventType() Type        { return TypeRecovered }
func (ErrorIncremented) EventType() Type { return TypeErrorIncremented }
func (ErrorReset) EventType() Type       { return TypeErrorReset }
func (MobileIssued) EventType() Type     { return TypeMobileIssued }
func (MobileRevoked) EventType() Type    { return TypeMobileRevoked }
func (Approved) EventType() Type         { return TypeApproved }

var (
	maskedRE = regexp.MustCompile(`^[0-9A-Za-z-]*\*[0-9A-Za-z*-]*$`)
	dateRE   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// validFingerprint reports whether s is a keyed fingerprint: 64 lower-case hex digits.
func validFingerprint(s string) bool { return span(s, 64, 64, lowerHex) }

// ValidActorID reports whether s is a well-formed actor, staff or approver id
// (^[0-9A-Za-z._-]{1,64}$): opaque identifiers, never names, so that they
// carry no personal data.
func ValidActorID(s string) bool { return span(s, 1, 64, idChar) }

// ValidGeneratorNo reports whether s is a well-formed mobile generator number
// (^[0-9A-Z]{8,20}$).
func ValidGeneratorNo(s string) bool { return span(s, 8, 20, digitOrUpper) }

func validDate(s string) bool {
	if !dateRE.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func (p CustomerProfiled) Validate() error {
	switch {
	case p.CustomerType != Individual && p.CustomerType != Corporate:
		return fieldErr("customer_type", "must be INDIVIDUAL or CORPORATE")
	case p.Nationality != Korean && p.Nationality != NonKorean:
		return fieldErr("nationality", "must be KOREAN or FOREIGN")
	case !validFingerprint(p.RealNameFingerprint):
		return fieldErr("real_name_fingerprint", "must be 64 lower-case hex digits")
	case !maskedRE.MatchString(p.RealNameMasked):
		return fieldErr("real_name_masked", "must be a masked form")
	}
	for i, a := range p.Accounts {
		if !ValidAccountNo(a) {
			return AccountNoCode.Refusal("accounts[" + itoa(i) + "]")
		}
	}
	return nil
}

func (p PersonClaimed) Validate() error {
	if !ValidCustomerNo(p.CustomerNo) {
		return CustomerNoCode.Refusal("customer_no")
	}
	return nil
}

func validateDeviceKey(vendor, serial string) error {
	if !ValidVendor(vendor) {
		return VendorCode.Refusal("vendor")
	}
	if !ValidSerial(serial) {
		return SerialCode.Refusal("serial")
	}
	return nil
}

func (p Registered) Validate() error {
	if err := validateDeviceKey(p.Vendor, p.Serial); err != nil {
		return err
	}
	if err := validOptionalCustomer(p.CustomerNo); err != nil {
		return err
	}
	switch {
	case p.WarrantyFrom != "" && !validDate(p.WarrantyFrom):
		return fieldErr("warranty_from", "must be a date YYYY-MM-DD")
	case p.WarrantyTo != "" && !validDate(p.WarrantyTo):
		return fieldErr("warranty_to", "must be a date YYYY-MM-DD")
	}
	return nil
}

func (p Cancelled) Validate() error {
	if err := validateDeviceKey(p.Vendor, p.Serial); err != nil {
		return err
	}
	if err := validOptionalCustomer(p.CustomerNo); err != nil {
		return err
	}
	if !p.Reason.Valid() {
		return fieldErr("reason", "must be CUSTOMER_REQUEST, DISCARDED, REPLACED, OTHER or REPLACED_BY_MOBILE")
	}
	return nil
}

// Valid reports whether r is one of the cancel reasons.
func (r CancelReason) Valid() bool {
	switch r {
	case CancelCustomerRequest, CancelDiscarded, CancelReplaced, CancelOther, CancelReplacedByMobile:
		return true
	}
	return false
}

// Valid reports whether r is one of the loss reasons.
func (r LossReason) Valid() bool {
	switch r {
	case LossLost, LossStolen, LossDamaged, LossOther:
		return true
	}
	return false
}

// Valid reports whether r is one of the revoke reasons.
func (r RevokeReason) Valid() bool {
	switch r {
	case RevokeCustomerRequest, RevokeSuperseded, RevokeLocked, RevokeExpired, RevokeReplacedByHardware:
		return true
	}
	return false
}

// Validate checks the report; its reason is optional (screen 2374 collects
// none, domain.md decisions of 2026-12-03) and, when given, one of the four.
func (p ReportedLost) Validate() error {
	if p.Reason != "" && !p.Reason.Valid() {
		return fieldErr("reason", "must be LOST, STOLEN, DAMAGED or OTHER")
	}
	if len(p.Institutions) == 0 {
		return fieldErr("institutions", "required")
	}
	for i, inst := range p.Institutions {
		if !ValidInstitution(inst) {
			return InstitutionCode.Refusal("institutions[" + itoa(i) + "]")
		}
	}
	return validOptionalCustomer(p.CustomerNo)
}

func (p Recovered) Validate() error { return validOptionalCustomer(p.CustomerNo) }

func validOptionalCustomer(no string) error {
	if no != "" && !ValidCustomerNo(no) {
		return CustomerNoCode.Refusal("customer_no")
	}
	return nil
}

func (p ErrorIncremented) Validate() error {
	if p.CountAfter < 1 {
		return fieldErr("count_after", "must be at least 1")
	}
	return nil
}

func (p ErrorReset) Validate() error {
	if p.CountBefore < 0 {
		return fieldErr("count_before", "must not be negative")
	}
	return validOptionalCustomer(p.CustomerNo)
}

func (p MobileIssued) Validate() error {
	switch {
	case !ValidGeneratorNo(p.GeneratorNo):
		return GeneratorNoCode.Refusal("generator_no")
	case !validFingerprint(p.PhoneFingerprint):
		return fieldErr("phone_fingerprint", "must be 64 lower-case hex digits")
	case !maskedRE.MatchString(p.PhoneMasked):
		return fieldErr("phone_masked", "must be a masked form")
	case p.ValidUntil.IsZero():
		return fieldErr("valid_until", "required")
	}
	return nil
}

func (p MobileRevoked) Validate() error {
	switch {
	case !ValidGeneratorNo(p.GeneratorNo):
		return GeneratorNoCode.Refusal("generator_no")
	case !p.Reason.Valid():
		return fieldErr("reason", "must be CUSTOMER_REQUEST, SUPERSEDED, LOCKED, EXPIRED or REPLACED_BY_HARDWARE")
	}
	return nil
}

func (p Approved) Validate() error {
	switch {
	case p.EventID == uuid.Nil:
		return fieldErr("event_id", "required")
	case !ValidActorID(p.Approver):
		return ActorIDCode.Refusal("approver")
	}
	return nil
}
