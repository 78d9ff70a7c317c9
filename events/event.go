package events

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AggregateKind names the kind of aggregate an event belongs to.
type AggregateKind string

// Aggregate kinds.
const (
	KindDevice   AggregateKind = "device"
	KindCustomer AggregateKind = "customer"
	// KindPerson is a real-name number's claim (R-ONE-PERSON): its key is the
	// number's keyed fingerprint, never the number.
	KindPerson AggregateKind = "person"
)

// AggregateRef identifies one aggregate instance. A device's key is
// "<vendor>.<serial>", a customer's is the customer number.
type AggregateRef struct {
	Kind AggregateKind `json:"kind"`
	Key  string        `json:"key"`
}

// DeviceRef returns the reference of the device vendor/serial.
func DeviceRef(vendor, serial string) AggregateRef {
	return AggregateRef{Kind: KindDevice, Key: vendor + "." + serial}
}

// CustomerRef returns the reference of the customer customerNo.
func CustomerRef(customerNo string) AggregateRef {
	return AggregateRef{Kind: KindCustomer, Key: customerNo}
}

// PersonRef returns the reference of the person whose real-name number has
// fingerprint fp (R-ONE-PERSON).
func PersonRef(fp string) AggregateRef {
	return AggregateRef{Kind: KindPerson, Key: fp}
}

// DeviceKey splits a device reference's key into vendor and serial.
func (r AggregateRef) DeviceKey() (vendor, serial string, ok bool) {
	if r.Kind != KindDevice {
		return "", "", false
	}
	vendor, serial, ok = strings.Cut(r.Key, ".")
	return vendor, serial, ok
}

// Validate reports whether r is a well-formed device, customer or key reference.
func (r AggregateRef) Validate() error {
	switch r.Kind {
	case KindDevice:
		v, s, ok := r.DeviceKey()
		if !ok || !ValidVendor(v) || !ValidSerial(s) {
			return fieldErr("key", "must be <vendor>.<serial> with valid codes")
		}
	case KindCustomer:
		if !ValidCustomerNo(r.Key) {
			return CustomerNoCode.Refusal("key")
		}
	case KindPerson:
		if !validFingerprint(r.Key) {
			return fieldErr("key", "must be a real-name fingerprint: 64 lower-case hex digits")
		}
	case KindKey, KindLookup:
		if !ValidKeyID(r.Key) {
			return KeyIDCode.Refusal("key")
		}
	default:
		return fieldErr("kind", "must be device, customer, key or lookup")
	}
	return nil
}

func (r AggregateRef) String() string { return string(r.Kind) + " " + r.Key }

// Actor is who acted: a role and an opaque id (never a name).
type Actor struct {
	Role Role   `json:"role"`
	ID   string `json:"id,omitempty"`
}

// Event is one fact in the ledger: the envelope of domain.md §3 and a payload.
// Events are values; nothing in the ledger ever changes one after it is built.
type Event struct {
	ID             uuid.UUID
	OccurredAt     time.Time
	RecordedAt     time.Time
	Aggregate      AggregateRef
	Institution    string
	Channel        Channel
	OriginChannel  OriginChannel // with ChannelCenter only
	Actor          Actor
	Staff          string     // the employee who processed a branch action
	Principal      *Principal // the authenticated caller (nil in events from before it was kept)
	Documents      []Document // papers presented for a branch action
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	// PrevHash is the Hash of the aggregate's previous event ("" for its
	// first), and Hash this event's own ([Chain]): a chain per aggregate
	// that makes any edit, removal or insertion evident.
	PrevHash string
	Hash     string
	Payload  Payload
	// Stored is, for a chained event (one with a Hash) read at an older
	// schema version, that version and the payload as written; Payload is
	// then its upcast. Such an event encodes as it was written, so that it
	// still hashes to its Hash: an old version in the log is never
	// rewritten. Nil for an event at its type's current version, and for an
	// unchained one (a feed's input), which encodes at the current version.
	Stored *StoredPayload
}

// StoredPayload is an event's payload as the journal holds it, at an older
// schema version than its type's current one.
type StoredPayload struct {
	Version int
	JSON    []byte // compact
}

// Type returns the event's type, taken from its payload.
func (e Event) Type() Type { return e.Payload.EventType() }

// Validate checks the envelope and the payload and returns the first problem
// as a [*FieldError] naming its JSON field.
func (e Event) Validate() error {
	switch {
	case e.ID == uuid.Nil:
		return fieldErr("id", "required")
	case e.OccurredAt.IsZero():
		return fieldErr("occurred_at", "required")
	case e.RecordedAt.IsZero():
		return fieldErr("recorded_at", "required")
	case !ValidInstitution(e.Institution):
		return InstitutionCode.Refusal("institution")
	case !e.Channel.Valid() && !(e.Channel == ChannelAdmin && ownRecord(e.Aggregate.Kind)):
		return fieldErr("channel", "unknown channel")
	case ownRecord(e.Aggregate.Kind) && e.Channel != ChannelAdmin:
		return fieldErr("channel", "key and look-up events use channel ADMIN")
	case !e.OriginChannel.Valid():
		return fieldErr("origin_channel", "must be BRANCH or ONLINE")
	case e.OriginChannel != "" && e.Channel != ChannelCenter:
		return fieldErr("origin_channel", "allowed with channel CENTER only")
	case !e.Actor.Role.Valid():
		return fieldErr("actor.role", "unknown role")
	case e.Actor.ID != "" && !ValidActorID(e.Actor.ID):
		return ActorIDCode.Refusal("actor.id")
	case e.PrevHash != "" && !validFingerprint(e.PrevHash):
		return fieldErr("prev_hash", "must be 64 lower-case hex digits")
	case e.Hash != "" && !validFingerprint(e.Hash):
		return fieldErr("hash", "must be 64 lower-case hex digits")
	case e.Staff != "" && !ValidActorID(e.Staff):
		return ActorIDCode.Refusal("staff")
	case e.Payload == nil:
		return fieldErr("payload", "required")
	}
	if err := e.Aggregate.Validate(); err != nil {
		return prefixed("aggregate", err)
	}
	if e.Principal != nil {
		if err := e.Principal.Validate(); err != nil {
			return prefixed("principal", err)
		}
	}
	for i, d := range e.Documents {
		if !d.Valid() {
			return fieldErr("documents["+itoa(i)+"]", "unknown document")
		}
	}
	if err := e.Payload.Validate(); err != nil {
		return prefixed("payload", err)
	}
	return nil
}

// Approvable reports whether e is a branch OTP transaction that R-APPROVAL
// requires a branch manager to approve (지점장 전결). Approvals and customer
// profiles are not OTP transactions; the customer's copy of a home
// registration or cancellation (caused by the device's event), and the
// revocation of the mobile OTP a home registration replaces, are approved
// through the device event and are not themselves approvable.
func (e Event) Approvable() bool {
	if e.Channel != ChannelBranch || e.Type() == TypeApproved || e.Type() == TypeCustomerProfiled || e.Type() == TypePersonClaimed {
		return false
	}
	if e.Aggregate.Kind == KindCustomer && (e.Type() == TypeRegistered || e.Type() == TypeCancelled) {
		return false
	}
	if r, ok := e.Payload.(MobileRevoked); ok && r.Reason == RevokeReplacedByHardware {
		return false // part of the home registration that replaced it, approved through the device
	}
	return true
}

func itoa(i int) string { return strconv.Itoa(i) }
