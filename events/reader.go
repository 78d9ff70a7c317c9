package events

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// reader decodes the journal's own JSON in one pass without reflection: the
// fold of every view, the live projector and the ledger's cold loads decode
// every message, and encoding/json's reflective decoding was 70 % of a fold.
//
// It accepts a subset of what the strict decoder accepts — the shapes
// [EncodeCommit] writes, in any key order and with any whitespace — and
// declines everything else (escapes, non-ASCII, null, case-folded keys,
// numbers with fractions or exponents): a declined body is decoded again by
// the strict decoder, which accepts it or names its problem. What it accepts,
// it decodes exactly as the strict decoder does (FuzzDecodeCommit checks).
//
// A reader fails at the first surprise and stays failed; its methods then
// return zero values, and the caller checks ok once at the end.
type reader struct {
	data []byte
	pos  int
	bad  bool
}

func (r *reader) fail() { r.bad = true }

// ws skips JSON whitespace.
func (r *reader) ws() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, consuming it if so.
func (r *reader) next(c byte) bool {
	r.ws()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (r *reader) end() bool {
	r.ws()
	return !r.bad && r.pos == len(r.data)
}

// raw returns the bytes of a string: printable ASCII without escapes.
func (r *reader) raw() []byte {
	if r.bad || !r.next('"') {
		r.fail()
		return nil
	}
	start := r.pos
	for r.pos < len(r.data) && plain[r.data[r.pos]] {
		r.pos++
	}
	if r.pos == len(r.data) || r.data[r.pos] != '"' {
		r.fail()
		return nil
	}
	r.pos++
	return r.data[start : r.pos-1]
}

// plain marks the bytes a string holds as they are: printable ASCII but the
// quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (r *reader) str() string { return string(r.raw()) }

// code reads a string that is usually one of the wire format's codes, and
// then answers the constant instead of allocating a copy.
func (r *reader) code() string {
	b := r.raw()
	if s, ok := codes[string(b)]; ok {
		return s
	}
	return string(b)
}

// codes holds the enumerated values an event carries: types, kinds,
// channels, roles, documents, authentication methods.
var codes = func() map[string]string {
	m := map[string]string{}
	for _, set := range [][]string{
		{string(KindDevice), string(KindCustomer), string(KindPerson), string(KindKey), string(KindLookup)},
		{string(ChannelBranch), string(ChannelPhone), string(ChannelODS), string(ChannelHTS), string(ChannelWTS),
			string(ChannelMTS), string(ChannelMobileWeb), string(ChannelHomepage), string(ChannelCenter),
			string(ChannelAuth), string(ChannelCore), string(ChannelAdmin)},
		{string(RoleSelf), string(RoleAgent), string(RoleRepresentative), string(RoleStaff), string(RoleSystem)},
		{string(DocRealNameID), string(DocBusinessRegistration), string(DocPowerOfAttorney),
			string(DocCorporateSealCertificate), string(DocProcessingForm), string(DocSealOrSignature)},
		{string(MethodAPIKey), string(MethodOIDC), string(MethodMTLS), string(MethodBootstrap)},
		{string(Korean), string(NonKorean)},
	} {
		for _, c := range set {
			m[c] = c
		}
	}
	for _, t := range Types() {
		m[string(t)] = string(t)
	}
	for _, role := range PrincipalRoles {
		m[string(role)] = string(role)
	}
	return m
}()

// int reads an integer as encoding/json reads one into an int.
func (r *reader) int() int {
	r.ws()
	start := r.pos
	if r.pos < len(r.data) && r.data[r.pos] == '-' {
		r.pos++
	}
	digits := r.pos
	for r.pos < len(r.data) && '0' <= r.data[r.pos] && r.data[r.pos] <= '9' {
		r.pos++
	}
	// A fraction or exponent after the digits fails at the caller, which
	// expects a delimiter there.
	n, err := strconv.Atoi(string(r.data[start:r.pos]))
	if err != nil || r.pos == digits || (r.data[digits] == '0' && r.pos-digits > 1) {
		r.fail()
	}
	return n
}

func (r *reader) bool() bool {
	r.ws()
	for _, lit := range [...]string{"true", "false"} {
		if len(r.data)-r.pos >= len(lit) && string(r.data[r.pos:r.pos+len(lit)]) == lit {
			r.pos += len(lit)
			return lit == "true"
		}
	}
	r.fail()
	return false
}

// uuid reads a UUID into id as encoding/json does (its UnmarshalText).
func (r *reader) uuid(id *uuid.UUID) {
	if id.UnmarshalText(r.raw()) != nil {
		r.fail()
	}
}

// time reads a timestamp as time.Time's UnmarshalJSON does.
func (r *reader) time() time.Time {
	r.ws()
	start := r.pos
	r.raw()
	var t time.Time
	if r.bad || t.UnmarshalJSON(r.data[start:r.pos]) != nil {
		r.fail()
	}
	return t
}

// object reads an object, calling field for each key with the reader at its
// value; field reads the value and returns the key's bit (one per known key
// of the object), or 0 for an unknown key. A key seen twice fails.
func (r *reader) object(field func(key []byte) uint64) {
	if r.bad || !r.next('{') {
		r.fail()
		return
	}
	if r.next('}') {
		return
	}
	var seen uint64
	for !r.bad {
		key := r.raw()
		if !r.next(':') {
			r.fail()
			return
		}
		bit := field(key)
		if bit == 0 || seen&bit != 0 {
			r.fail()
			return
		}
		seen |= bit
		if r.next('}') {
			return
		}
		if !r.next(',') {
			r.fail()
		}
	}
}

// array reads an array, calling elem for each element.
func (r *reader) array(elem func()) {
	if r.bad || !r.next('[') {
		r.fail()
		return
	}
	if r.next(']') {
		return
	}
	for !r.bad {
		elem()
		if r.next(']') {
			return
		}
		if !r.next(',') {
			r.fail()
		}
	}
}

// readStrings reads an array of strings; an empty array is an empty, non-nil
// slice, as encoding/json makes it.
func readStrings[S ~string](r *reader) []S {
	out := []S{}
	r.array(func() { out = append(out, S(r.code())) })
	return out
}

// skip reads past any value without decoding it, for the strict decoder to
// decode its bytes: strings are scanned with their escapes, brackets
// counted. It stops before the delimiter that ends the value.
func (r *reader) skip() {
	r.ws()
	start, depth := r.pos, 0
	for ; r.pos < len(r.data) && !r.bad; r.pos++ {
		c := r.data[r.pos]
		switch c {
		case '"':
			r.pos++
			for r.pos < len(r.data) && r.data[r.pos] != '"' {
				if r.data[r.pos] == '\\' {
					r.pos++
				}
				r.pos++
			}
			if r.pos >= len(r.data) {
				r.fail()
				return
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		switch {
		case depth < 0, depth == 0 && c == ',': // the end of an unquoted scalar
			return
		case depth == 0 && (c == '"' || c == '}' || c == ']'):
			r.pos++
			return
		}
	}
	if r.pos == start || depth != 0 {
		r.fail()
	}
}

// commit reads a journal message body.
func (r *reader) commit() Commit {
	var c Commit
	r.object(func(key []byte) uint64 {
		if string(key) != "events" {
			return 0
		}
		c.Events = []Event{}
		r.array(func() {
			if e, ok := r.event(); ok {
				c.Events = append(c.Events, e)
			} else {
				r.fail()
			}
		})
		return 1
	})
	return c
}

// event reads one event and completes it as the strict decoder does.
func (r *reader) event() (Event, bool) {
	var (
		w         envelopeWire
		agg       *AggregateRef
		actor     *Actor
		principal *Principal
		payload   Payload
	)
	r.object(func(key []byte) uint64 {
		switch string(key) {
		case "id":
			w.ID = r.str()
			return 1 << 0
		case "type":
			w.Type = Type(r.code())
			return 1 << 1
		case "schema_version":
			w.SchemaVersion = r.int()
			return 1 << 2
		case "occurred_at":
			w.OccurredAt = r.str()
			return 1 << 3
		case "recorded_at":
			w.RecordedAt = r.str()
			return 1 << 4
		case "aggregate":
			agg = readAggregate(r)
			return 1 << 5
		case "institution":
			w.Institution = r.str()
			return 1 << 6
		case "channel":
			w.Channel = Channel(r.code())
			return 1 << 7
		case "origin_channel":
			w.OriginChannel = OriginChannel(r.str())
			return 1 << 8
		case "actor":
			actor = readActor(r)
			return 1 << 9
		case "staff":
			w.Staff = r.str()
			return 1 << 10
		case "principal":
			principal = readPrincipal(r)
			return 1 << 11
		case "documents":
			w.Documents = readStrings[Document](r)
			return 1 << 12
		case "correlation_id":
			w.CorrelationID = r.str()
			return 1 << 13
		case "causation_id":
			w.CausationID = r.str()
			return 1 << 14
		case "idempotency_key":
			w.IdempotencyKey = r.str()
			return 1 << 15
		case "prev_hash":
			w.PrevHash = r.str()
			return 1 << 16
		case "hash":
			w.Hash = r.str()
			return 1 << 17
		case "payload":
			payload, w.Payload = r.payload(w.Type, w.SchemaVersion)
			return 1 << 18
		}
		return 0
	})
	if r.bad || agg == nil || actor == nil {
		return Event{}, false
	}
	e, err := w.event(*agg, *actor, principal, payload)
	return e, err == nil
}

// payload reads an event's payload and returns its bytes: decoded too when
// the type came first and has a reader at its current version (as
// EncodeCommit writes it), else left for the strict decoder, which also
// upcasts.
func (r *reader) payload(t Type, version int) (Payload, []byte) {
	start := r.pos
	var p Payload
	if read := payloadReaders[t]; read != nil && version == SchemaVersion(t) {
		p = read(r)
	} else {
		r.skip()
	}
	return p, r.data[start:r.pos]
}

// field is one key of an object of type T and how to read its value.
type field[T any] struct {
	name string
	read func(r *reader, into *T)
}

// readFields reads an object whose keys are fields (each at most once)
// into *into.
func readFields[T any](r *reader, into *T, fields []field[T]) {
	r.object(func(key []byte) uint64 {
		for i, f := range fields {
			if string(key) == f.name {
				f.read(r, into)
				return 1 << i
			}
		}
		return 0
	})
}

// objectOf returns a reader of objects of type T.
func objectOf[T any](fields ...field[T]) func(*reader) *T {
	return func(r *reader) *T {
		v := new(T)
		readFields(r, v, fields)
		return v
	}
}

// payloadOf returns a reader of payloads of type P.
func payloadOf[P Payload](fields ...field[P]) func(*reader) Payload {
	read := objectOf(fields...)
	return func(r *reader) Payload { return *read(r) }
}

var (
	readAggregate = objectOf(
		field[AggregateRef]{"kind", func(r *reader, a *AggregateRef) { a.Kind = AggregateKind(r.code()) }},
		field[AggregateRef]{"key", func(r *reader, a *AggregateRef) { a.Key = r.str() }})
	readActor = objectOf(
		field[Actor]{"role", func(r *reader, a *Actor) { a.Role = Role(r.code()) }},
		field[Actor]{"id", func(r *reader, a *Actor) { a.ID = r.str() }})
	readPrincipal = objectOf(
		field[Principal]{"id", func(r *reader, p *Principal) { p.ID = r.str() }},
		field[Principal]{"role", func(r *reader, p *Principal) { p.Role = PrincipalRole(r.code()) }},
		field[Principal]{"method", func(r *reader, p *Principal) { p.Method = AuthMethod(r.code()) }})
	readVerification = objectOf(
		field[Verification]{"home_account", func(r *reader, v *Verification) { v.HomeAccount = r.bool() }},
		field[Verification]{"phone_identity", func(r *reader, v *Verification) { v.PhoneIdentity = r.bool() }},
		field[Verification]{"one_won_transfer", func(r *reader, v *Verification) { v.OneWonTransfer = r.bool() }},
		field[Verification]{"otp_or_security_card", func(r *reader, v *Verification) { v.OTPOrSecurityCard = r.bool() }})
)

// payloadReaders holds a one-pass reader for each payload type of the
// domain's events at its current schema version; the access events (rare)
// go through encoding/json.
var payloadReaders = map[Type]func(*reader) Payload{
	TypeCustomerProfiled: payloadOf(
		field[CustomerProfiled]{"customer_type", func(r *reader, p *CustomerProfiled) { p.CustomerType = CustomerType(r.str()) }},
		field[CustomerProfiled]{"nationality", func(r *reader, p *CustomerProfiled) { p.Nationality = Nationality(r.code()) }},
		field[CustomerProfiled]{"real_name_fingerprint", func(r *reader, p *CustomerProfiled) { p.RealNameFingerprint = r.str() }},
		field[CustomerProfiled]{"real_name_masked", func(r *reader, p *CustomerProfiled) { p.RealNameMasked = r.str() }},
		field[CustomerProfiled]{"accounts", func(r *reader, p *CustomerProfiled) { p.Accounts = readStrings[string](r) }}),
	TypePersonClaimed: payloadOf(
		field[PersonClaimed]{"customer_no", func(r *reader, p *PersonClaimed) { p.CustomerNo = r.str() }}),
	TypeRegistered: payloadOf(
		field[Registered]{"vendor", func(r *reader, p *Registered) { p.Vendor = r.str() }},
		field[Registered]{"serial", func(r *reader, p *Registered) { p.Serial = r.str() }},
		field[Registered]{"customer_no", func(r *reader, p *Registered) { p.CustomerNo = r.str() }},
		field[Registered]{"warranty_from", func(r *reader, p *Registered) { p.WarrantyFrom = r.str() }},
		field[Registered]{"warranty_to", func(r *reader, p *Registered) { p.WarrantyTo = r.str() }},
		field[Registered]{"response_code_given", func(r *reader, p *Registered) { p.ResponseCodeGiven = r.bool() }}),
	TypeCancelled: payloadOf(
		field[Cancelled]{"vendor", func(r *reader, p *Cancelled) { p.Vendor = r.str() }},
		field[Cancelled]{"serial", func(r *reader, p *Cancelled) { p.Serial = r.str() }},
		field[Cancelled]{"customer_no", func(r *reader, p *Cancelled) { p.CustomerNo = r.str() }},
		field[Cancelled]{"reason", func(r *reader, p *Cancelled) { p.Reason = CancelReason(r.str()) }}),
	TypeReportedLost: payloadOf(
		field[ReportedLost]{"reason", func(r *reader, p *ReportedLost) { p.Reason = LossReason(r.str()) }},
		field[ReportedLost]{"institutions", func(r *reader, p *ReportedLost) { p.Institutions = readStrings[string](r) }},
		field[ReportedLost]{"customer_no", func(r *reader, p *ReportedLost) { p.CustomerNo = r.str() }}),
	TypeRecovered: payloadOf(
		field[Recovered]{"in_branch", func(r *reader, p *Recovered) { p.InBranch = r.bool() }},
		field[Recovered]{"customer_no", func(r *reader, p *Recovered) { p.CustomerNo = r.str() }}),
	TypeErrorIncremented: payloadOf(
		field[ErrorIncremented]{"count_after", func(r *reader, p *ErrorIncremented) { p.CountAfter = r.int() }},
		field[ErrorIncremented]{"locked", func(r *reader, p *ErrorIncremented) { p.Locked = r.bool() }}),
	TypeErrorReset: payloadOf(
		field[ErrorReset]{"count_before", func(r *reader, p *ErrorReset) { p.CountBefore = r.int() }},
		field[ErrorReset]{"customer_no", func(r *reader, p *ErrorReset) { p.CustomerNo = r.str() }}),
	TypeMobileIssued: payloadOf(
		field[MobileIssued]{"generator_no", func(r *reader, p *MobileIssued) { p.GeneratorNo = r.str() }},
		field[MobileIssued]{"phone_fingerprint", func(r *reader, p *MobileIssued) { p.PhoneFingerprint = r.str() }},
		field[MobileIssued]{"phone_masked", func(r *reader, p *MobileIssued) { p.PhoneMasked = r.str() }},
		field[MobileIssued]{"valid_until", func(r *reader, p *MobileIssued) { p.ValidUntil = r.time() }},
		field[MobileIssued]{"verification", func(r *reader, p *MobileIssued) { p.Verification = readVerification(r) }}),
	TypeMobileRevoked: payloadOf(
		field[MobileRevoked]{"generator_no", func(r *reader, p *MobileRevoked) { p.GeneratorNo = r.str() }},
		field[MobileRevoked]{"reason", func(r *reader, p *MobileRevoked) { p.Reason = RevokeReason(r.str()) }}),
	TypeApproved: payloadOf(
		field[Approved]{"event_id", func(r *reader, p *Approved) { r.uuid(&p.EventID) }},
		field[Approved]{"approver", func(r *reader, p *Approved) { p.Approver = r.str() }}),
}
