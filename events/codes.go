package events

// Channel is where an action was taken (api.md, domain.md §5).
type Channel string

// The channels of api.md. CENTER is the shared OTP centre's feed of actions
// taken at other institutions; AUTH is the authentication service reporting a
// failed OTP.
const (
	ChannelBranch    Channel = "BRANCH"
	ChannelPhone     Channel = "PHONE"
	ChannelODS       Channel = "ODS"
	ChannelHTS       Channel = "HTS"
	ChannelWTS       Channel = "WTS"
	ChannelMTS       Channel = "MTS"
	ChannelMobileWeb Channel = "MOBILE_WEB"
	ChannelHomepage  Channel = "HOMEPAGE"
	ChannelCenter    Channel = "CENTER"
	ChannelAuth      Channel = "AUTH"
	ChannelCore      Channel = "CORE" // the firm's customer master: profiles only (R-PROFILE)
)

// Valid reports whether c is one of the channels of api.md.
func (c Channel) Valid() bool {
	switch c {
	case ChannelBranch, ChannelPhone, ChannelODS, ChannelHTS, ChannelWTS, ChannelMTS,
		ChannelMobileWeb, ChannelHomepage, ChannelCenter, ChannelAuth, ChannelCore:
		return true
	}
	return false
}

// Online reports whether c is one of the online channels of domain.md §5.
func (c Channel) Online() bool {
	switch c {
	case ChannelHTS, ChannelWTS, ChannelMTS, ChannelMobileWeb, ChannelHomepage:
		return true
	}
	return false
}

// OriginChannel is, for an event arriving through [ChannelCenter], how the
// action was taken at the other institution.
type OriginChannel string

// Origin channels of the centre feed.
const (
	OriginBranch OriginChannel = "BRANCH"
	OriginOnline OriginChannel = "ONLINE"
)

// Valid reports whether o is empty or one of the origin channels.
func (o OriginChannel) Valid() bool { return o == "" || o == OriginBranch || o == OriginOnline }

// Role is who acts (api.md actor.role).
type Role string

// Actor roles. SELF is the customer in person or online, AGENT a proxy (대리인),
// REPRESENTATIVE a corporation's representative, STAFF an employee, SYSTEM a
// machine (the centre feed or the authentication service).
const (
	RoleSelf           Role = "SELF"
	RoleAgent          Role = "AGENT"
	RoleRepresentative Role = "REPRESENTATIVE"
	RoleStaff          Role = "STAFF"
	RoleSystem         Role = "SYSTEM"
)

// Valid reports whether r is one of the roles of api.md.
func (r Role) Valid() bool {
	switch r {
	case RoleSelf, RoleAgent, RoleRepresentative, RoleStaff, RoleSystem:
		return true
	}
	return false
}

// Document is a paper presented for a branch action (domain.md §6).
type Document string

// Documents of domain.md §6.
const (
	DocRealNameID               Document = "REAL_NAME_ID"
	DocBusinessRegistration     Document = "BUSINESS_REGISTRATION"
	DocPowerOfAttorney          Document = "POWER_OF_ATTORNEY"
	DocCorporateSealCertificate Document = "CORPORATE_SEAL_CERTIFICATE"
	DocProcessingForm           Document = "PROCESSING_FORM"
	DocSealOrSignature          Document = "SEAL_OR_SIGNATURE"
)

// Valid reports whether d is one of the documents of api.md.
func (d Document) Valid() bool {
	switch d {
	case DocRealNameID, DocBusinessRegistration, DocPowerOfAttorney, DocCorporateSealCertificate,
		DocProcessingForm, DocSealOrSignature:
		return true
	}
	return false
}

// span reports whether s has between lo and hi bytes, each allowed by ok.
// The code patterns are simple classes, checked without a regexp engine
// because they run on every command.
func span(s string, lo, hi int, ok func(c byte) bool) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func digit(c byte) bool        { return c >= '0' && c <= '9' }
func digitOrUpper(c byte) bool { return digit(c) || c >= 'A' && c <= 'Z' }
func lowerHex(c byte) bool     { return digit(c) || c >= 'a' && c <= 'f' }
func idChar(c byte) bool {
	return digitOrUpper(c) || c >= 'a' && c <= 'z' || c == '.' || c == '_' || c == '-'
}

// A Code is one identifier pattern of the contract: its check and the
// message naming it, in one place for every layer that refuses a value.
type Code struct {
	Pattern string            // as api.md writes it
	valid   func(string) bool // the check (TestCodesMatchTheirPatterns: the same language)
}

// The identifier patterns.
var (
	VendorCode      = Code{"^[0-9A-Z]{2,4}$", ValidVendor}
	SerialCode      = Code{"^[0-9A-Z]{6,20}$", ValidSerial}
	CustomerNoCode  = Code{"^[0-9A-Z]{4,20}$", ValidCustomerNo}
	AccountNoCode   = Code{"^[0-9]{8,14}$", ValidAccountNo}
	InstitutionCode = Code{"^[0-9A-Z]{2,8}$", ValidInstitution}
	ActorIDCode     = Code{"^[0-9A-Za-z._-]{1,64}$", ValidActorID}
	KeyIDCode       = Code{"^[0-9A-Za-z_-]{1,64}$", ValidKeyID}
	GeneratorNoCode = Code{"^[0-9A-Z]{8,20}$", ValidGeneratorNo}
)

// Refusal is the error for field holding a value off the pattern.
func (c Code) Refusal(field string) *FieldError {
	return &FieldError{Field: field, Reason: "must match " + c.Pattern}
}

// ValidVendor reports whether s matches the vendor code pattern ^[0-9A-Z]{2,4}$.
func ValidVendor(s string) bool { return span(s, 2, 4, digitOrUpper) }

// ValidSerial reports whether s matches the serial pattern ^[0-9A-Z]{6,20}$.
func ValidSerial(s string) bool { return span(s, 6, 20, digitOrUpper) }

// ValidCustomerNo reports whether s matches the customer number pattern ^[0-9A-Z]{4,20}$.
func ValidCustomerNo(s string) bool { return span(s, 4, 20, digitOrUpper) }

// ValidAccountNo reports whether s matches the account number pattern ^[0-9]{8,14}$.
func ValidAccountNo(s string) bool { return span(s, 8, 14, digit) }

// ValidInstitution reports whether s matches the institution code pattern ^[0-9A-Z]{2,8}$.
func ValidInstitution(s string) bool { return span(s, 2, 8, digitOrUpper) }
