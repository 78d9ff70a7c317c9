package events

import (
	"strings"
	"time"
)

// PrincipalRole is what an authenticated caller may do (api.md "Identity
// and access"). It is not an [Actor]'s role: the actor is who the action is
// for (the customer, an agent, the centre), the principal who sent it.
type PrincipalRole string

// Principal roles.
const (
	RoleTeller   PrincipalRole = "teller"
	RoleManager  PrincipalRole = "manager"
	RoleProducer PrincipalRole = "producer"
	RoleAuditor  PrincipalRole = "auditor"
	RoleOperator PrincipalRole = "operator"
	RoleAdmin    PrincipalRole = "admin"
)

// PrincipalRoles lists every principal role.
var PrincipalRoles = []PrincipalRole{RoleTeller, RoleManager, RoleProducer, RoleAuditor, RoleOperator, RoleAdmin}

// Valid reports whether r is a principal role.
func (r PrincipalRole) Valid() bool {
	for _, v := range PrincipalRoles {
		if r == v {
			return true
		}
	}
	return false
}

// AuthMethod says how a principal authenticated.
type AuthMethod string

// Authentication methods. Bootstrap is the ledger itself creating the first
// admin key of an empty journal.
const (
	MethodAPIKey    AuthMethod = "api_key"
	MethodOIDC      AuthMethod = "oidc"
	MethodMTLS      AuthMethod = "mtls"
	MethodBootstrap AuthMethod = "bootstrap"
)

// Principal is the authenticated caller an event was appended for; every
// event appended through the API records it beside the actor the body names.
type Principal struct {
	ID     string        `json:"id"`
	Role   PrincipalRole `json:"role"`
	Method AuthMethod    `json:"method"`
}

// Validate checks p.
func (p Principal) Validate() error {
	switch {
	case !ValidActorID(p.ID):
		return ActorIDCode.Refusal("id")
	case !p.Role.Valid():
		return fieldErr("role", "unknown role")
	}
	switch p.Method {
	case MethodAPIKey, MethodOIDC, MethodMTLS, MethodBootstrap:
		return nil
	}
	return fieldErr("method", "must be api_key, oidc, mtls or bootstrap")
}

// KindKey is the aggregate of an API key: its creation and revocation are
// events of the journal like any other, so every server sharing the journal
// sees them and an auditor can replay who granted what.
const KindKey AggregateKind = "key"

// ValidKeyID reports whether s is a well-formed API key id
// (^[0-9A-Za-z_-]{1,64}$): an actor id without dots, since it is a token of
// the key's journal subject. The key's principal acts under this id.
func ValidKeyID(s string) bool { return ValidActorID(s) && !strings.Contains(s, ".") }

// KeyRef returns the aggregate reference of API key id.
func KeyRef(id string) AggregateRef { return AggregateRef{Kind: KindKey, Key: id} }

// KindLookup is the aggregate of one principal's personal-data look-ups:
// who found which customers, and when (never the number looked up). It is
// the access log an auditor lists ('otpledger history lookup <id>').
const KindLookup AggregateKind = "lookup"

// LookupRef returns the aggregate reference of principal id's look-ups.
func LookupRef(id string) AggregateRef { return AggregateRef{Kind: KindLookup, Key: id} }

// ChannelAdmin is the channel of the ledger's own records (keys, the
// look-up log): never a business action, and no command of domain.md may
// use it.
const ChannelAdmin Channel = "ADMIN"

// ownRecord reports whether kind is one of the ledger's own records, which
// use [ChannelAdmin].
func ownRecord(kind AggregateKind) bool { return kind == KindKey || kind == KindLookup }

// Key and look-up event types.
const (
	TypeKeyCreated Type = "key_created"
	TypeKeyRevoked Type = "key_revoked"
	TypeLookedUp   Type = "personal_data_looked_up"
)

// LookedUp records a personal-data look-up (find customers by real-name or
// account number): by which key (real_name_number or account_no) and the
// customers found. The value looked up is never recorded.
type LookedUp struct {
	Query     string   `json:"query"`
	Customers []string `json:"customers"`
}

func (LookedUp) EventType() Type { return TypeLookedUp }

func (p LookedUp) Validate() error {
	if p.Query != "real_name_number" && p.Query != "account_no" {
		return fieldErr("query", "must be real_name_number or account_no")
	}
	for i, c := range p.Customers {
		if !ValidCustomerNo(c) {
			return CustomerNoCode.Refusal("customers[" + itoa(i) + "]")
		}
	}
	return nil
}

// KeyCreated records an API key: its role, a producer's channels, when it
// expires, and the SHA-256 of its token (the token itself is shown once to
// whoever created it and never stored). CertSubject and CertIssuer (the
// base64 of their DER) and optionally CertSHA256 (the hex SHA-256 of its
// public key) bind a client certificate to the key (mutual TLS; the
// access package checks them when a key is created).
type KeyCreated struct {
	Role        PrincipalRole `json:"role"`
	Channels    []Channel     `json:"channels,omitempty"`
	ExpiresAt   *time.Time    `json:"expires_at,omitempty"`
	TokenHash   string        `json:"token_hash"`
	CertSubject string        `json:"cert_subject,omitempty"`
	CertIssuer  string        `json:"cert_issuer,omitempty"`
	CertSHA256  string        `json:"cert_sha256,omitempty"`
}

// KeyRevoked records the revocation of an API key.
type KeyRevoked struct{}

func (KeyCreated) EventType() Type { return TypeKeyCreated }
func (KeyRevoked) EventType() Type { return TypeKeyRevoked }

func (p KeyCreated) Validate() error {
	switch {
	case !p.Role.Valid():
		return fieldErr("role", "must be teller, manager, producer, auditor, operator or admin")
	case !validFingerprint(p.TokenHash):
		return fieldErr("token_hash", "must be 64 lower-case hex digits")
	case p.Role == RoleProducer && len(p.Channels) == 0:
		return fieldErr("channels", "a producer needs the channels it may use")
	case p.Role != RoleProducer && len(p.Channels) > 0:
		return fieldErr("channels", "only a producer has channels")
	case len(p.CertSubject) > 1024 || strings.ContainsAny(p.CertSubject, "\n\r"):
		return fieldErr("cert_subject", "at most 1024 characters on one line")
	case len(p.CertIssuer) > 1024 || strings.ContainsAny(p.CertIssuer, "\n\r"):
		return fieldErr("cert_issuer", "at most 1024 characters on one line")
	case p.CertSHA256 != "" && !validFingerprint(p.CertSHA256):
		return fieldErr("cert_sha256", "must be 64 lower-case hex digits")
	}
	for i, c := range p.Channels {
		if !c.Valid() || c == ChannelBranch {
			return fieldErr("channels["+itoa(i)+"]", "must be a channel other than BRANCH (branches act through tellers)")
		}
	}
	return nil
}

func (KeyRevoked) Validate() error { return nil }
