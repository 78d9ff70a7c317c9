package events

import "regexp"

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
)

// Valid reports whether c is one of the channels of api.md.
func (c Channel) Valid() bool {
	switch c {
	case ChannelBranch, ChannelPhone, ChannelODS, ChannelHTS, ChannelWTS, ChannelMTS,
		ChannelMobileWeb, ChannelHomepage, ChannelCenter, ChannelAuth:
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

var (
	vendorRE      = regexp.MustCompile(`^[0-9A-Z]{2,4}$`)
	serialRE      = regexp.MustCompile(`^[0-9A-Z]{6,20}$`)
	customerNoRE  = regexp.MustCompile(`^[0-9A-Z]{4,20}$`)
	accountNoRE   = regexp.MustCompile(`^[0-9]{8,14}$`)
	institutionRE = regexp.MustCompile(`^[0-9A-Z]{2,8}$`)
)

// ValidVendor reports whether s matches the vendor code pattern ^[0-9A-Z]{2,4}$.
func ValidVendor(s string) bool { return vendorRE.MatchString(s) }

// ValidSerial reports whether s matches the serial pattern ^[0-9A-Z]{6,20}$.
func ValidSerial(s string) bool { return serialRE.MatchString(s) }

// ValidCustomerNo reports whether s matches the customer number pattern ^[0-9A-Z]{4,20}$.
func ValidCustomerNo(s string) bool { return customerNoRE.MatchString(s) }

// ValidAccountNo reports whether s matches the account number pattern ^[0-9]{8,14}$.
func ValidAccountNo(s string) bool { return accountNoRE.MatchString(s) }

// ValidInstitution reports whether s matches the institution code pattern ^[0-9A-Z]{2,8}$.
func ValidInstitution(s string) bool { return institutionRE.MatchString(s) }
