package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// typeSpec describes the current schema of one event type.
type typeSpec struct {
	version int
	decode  func(data []byte) (Payload, error)
}

func spec[P Payload](version int) typeSpec {
	return typeSpec{version: version, decode: func(data []byte) (Payload, error) {
		var p P
		if err := strictUnmarshal(data, &p, ""); err != nil {
			return nil, err
		}
		return p, nil
	}}
}

// registry maps every event type to its current schema version and decoder.
// It is fixed at compile time; adding a type or version is a code change.
var registry = map[Type]typeSpec{
	TypeCustomerProfiled: spec[CustomerProfiled](2),
	TypePersonClaimed:    spec[PersonClaimed](1),
	TypeRegistered:       spec[Registered](2),
	TypeCancelled:        spec[Cancelled](1),
	TypeReportedLost:     spec[ReportedLost](1),
	TypeRecovered:        spec[Recovered](1),
	TypeErrorIncremented: spec[ErrorIncremented](1),
	TypeErrorReset:       spec[ErrorReset](1),
	TypeMobileIssued:     spec[MobileIssued](1),
	TypeMobileRevoked:    spec[MobileRevoked](1),
	TypeApproved:         spec[Approved](1),
	TypeKeyCreated:       spec[KeyCreated](1),
	TypeKeyRevoked:       spec[KeyRevoked](1),
	TypeLookedUp:         spec[LookedUp](1),
}

// Types returns every registered event type.
func Types() []Type {
	out := make([]Type, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	return out
}

// SchemaVersion returns the current schema version of t, or 0 for an unknown type.
func SchemaVersion(t Type) int { return registry[t].version }

// envelopeWire is the JSON shape of an [Event]'s scalar fields. Ids and
// times are strings here so that a malformed one is reported with its field
// name.
type envelopeWire struct {
	ID             string          `json:"id"`
	Type           Type            `json:"type"`
	SchemaVersion  int             `json:"schema_version"`
	OccurredAt     string          `json:"occurred_at"`
	RecordedAt     string          `json:"recorded_at"`
	Institution    string          `json:"institution"`
	Channel        Channel         `json:"channel"`
	OriginChannel  OriginChannel   `json:"origin_channel,omitempty"`
	Staff          string          `json:"staff,omitempty"`
	Documents      []Document      `json:"documents,omitempty"`
	CorrelationID  string          `json:"correlation_id,omitempty"`
	CausationID    string          `json:"causation_id,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	PrevHash       string          `json:"prev_hash,omitempty"`
	Hash           string          `json:"hash,omitempty"`
	Payload        json.RawMessage `json:"payload"`
}

// wireEvent decodes the nested objects separately, so that an error inside
// one is reported with its path ("actor.name").
type wireEvent struct {
	envelopeWire
	Aggregate json.RawMessage `json:"aggregate"`
	Actor     json.RawMessage `json:"actor"`
	Principal json.RawMessage `json:"principal"`
}

// MarshalJSON encodes e at its type's current schema version, in the field
// order of the wire format. It does not validate; [EncodeCommit] does.
func (e Event) MarshalJSON() ([]byte, error) { return e.appendJSON(make([]byte, 0, 512)) }

// appendJSON appends e's JSON to buf, written by hand: it is encoded three
// times on every command (see [payloadWriter]).
func (e Event) appendJSON(buf []byte) ([]byte, error) {
	if e.Payload == nil {
		return nil, fieldErr("payload", "required")
	}
	buf = append(buf, `{"id":"`...)
	buf = append(buf, e.ID.String()...)
	buf = append(buf, '"')
	buf = appendField(buf, "type", string(e.Type()))
	version := SchemaVersion(e.Type())
	if e.Stored != nil {
		version = e.Stored.Version
	}
	buf = append(buf, `,"schema_version":`...)
	buf = strconv.AppendInt(buf, int64(version), 10)
	buf = append(buf, `,"occurred_at":"`...)
	buf = e.OccurredAt.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","recorded_at":"`...)
	buf = e.RecordedAt.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","aggregate":{"kind":`...)
	buf = appendString(buf, string(e.Aggregate.Kind))
	buf = appendField(buf, "key", e.Aggregate.Key)
	buf = append(buf, '}')
	buf = appendField(buf, "institution", e.Institution)
	buf = appendField(buf, "channel", string(e.Channel))
	buf = appendOptional(buf, "origin_channel", string(e.OriginChannel))
	buf = append(buf, `,"actor":{"role":`...)
	buf = appendString(buf, string(e.Actor.Role))
	buf = appendOptional(buf, "id", e.Actor.ID)
	buf = append(buf, '}')
	buf = appendOptional(buf, "staff", e.Staff)
	if p := e.Principal; p != nil {
		buf = append(buf, `,"principal":{"id":`...)
		buf = appendString(buf, p.ID)
		buf = appendField(buf, "role", string(p.Role))
		buf = appendField(buf, "method", string(p.Method))
		buf = append(buf, '}')
	}
	if len(e.Documents) > 0 {
		buf = append(buf, `,"documents":[`...)
		for i, d := range e.Documents {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, string(d))
		}
		buf = append(buf, ']')
	}
	buf = appendOptional(buf, "correlation_id", e.CorrelationID)
	buf = appendOptional(buf, "causation_id", e.CausationID)
	buf = appendOptional(buf, "idempotency_key", e.IdempotencyKey)
	buf = appendOptional(buf, "prev_hash", e.PrevHash)
	buf = appendOptional(buf, "hash", e.Hash)
	buf = append(buf, `,"payload":`...)
	if e.Stored != nil {
		return append(append(buf, e.Stored.JSON...), '}'), nil
	}
	buf, err := appendPayload(buf, e.Payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", e.Type(), err)
	}
	return append(buf, '}'), nil
}

func appendField(buf []byte, name, value string) []byte {
	buf = append(buf, ',', '"')
	buf = append(buf, name...)
	buf = append(buf, '"', ':')
	return appendString(buf, value)
}

func appendOptional(buf []byte, name, value string) []byte {
	if value == "" {
		return buf
	}
	return appendField(buf, name, value)
}

// appendString appends s as a JSON string: directly when it is plain ASCII
// (every code and id is), through encoding/json otherwise.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			return append(buf, quoted...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// UnmarshalJSON decodes strictly; see [DecodeEvent].
func (e *Event) UnmarshalJSON(data []byte) error {
	ev, err := DecodeEvent(data)
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// DecodeEvent decodes one event strictly: unknown fields, wrong types, missing
// required fields, unknown types and future schema versions are [*FieldError]s
// naming the field. Older schema versions are upcast first.
func DecodeEvent(data []byte) (Event, error) {
	var w wireEvent
	if err := strictUnmarshal(data, &w, ""); err != nil {
		return Event{}, err
	}
	var agg AggregateRef
	var actor Actor
	switch {
	case w.Aggregate == nil:
		return Event{}, fieldErr("aggregate", "required")
	case w.Actor == nil:
		return Event{}, fieldErr("actor", "required")
	}
	if err := strictUnmarshal(w.Aggregate, &agg, "aggregate"); err != nil {
		return Event{}, err
	}
	if err := strictUnmarshal(w.Actor, &actor, "actor"); err != nil {
		return Event{}, err
	}
	var principal *Principal
	if w.Principal != nil {
		principal = new(Principal)
		if err := strictUnmarshal(w.Principal, principal, "principal"); err != nil {
			return Event{}, err
		}
	}
	return w.event(agg, actor, principal, nil)
}

// event completes the decoding of an event whose nested objects are decoded,
// and whose payload too unless it is nil.
func (w envelopeWire) event(agg AggregateRef, actor Actor, principal *Principal, payload Payload) (Event, error) {
	for _, req := range []struct {
		name    string
		missing bool
	}{
		{"id", w.ID == ""}, {"type", w.Type == ""}, {"schema_version", w.SchemaVersion == 0},
		{"occurred_at", w.OccurredAt == ""}, {"recorded_at", w.RecordedAt == ""},
		{"institution", w.Institution == ""}, {"channel", w.Channel == ""}, {"payload", w.Payload == nil},
	} {
		if req.missing {
			return Event{}, fieldErr(req.name, "required")
		}
	}
	e := Event{Aggregate: agg, Actor: actor, Principal: principal, Payload: payload}
	var err error
	if e.ID, err = uuid.Parse(w.ID); err != nil {
		return Event{}, fieldErr("id", "must be a UUID")
	}
	if e.OccurredAt, err = time.Parse(time.RFC3339Nano, w.OccurredAt); err != nil {
		return Event{}, fieldErr("occurred_at", "must be an RFC 3339 timestamp")
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, w.RecordedAt); err != nil {
		return Event{}, fieldErr("recorded_at", "must be an RFC 3339 timestamp")
	}
	e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
	if e.Payload == nil {
		if e.Payload, err = decodePayload(w.Type, w.SchemaVersion, w.Payload); err != nil {
			return Event{}, err
		}
	}
	if w.SchemaVersion < SchemaVersion(w.Type) && w.Hash != "" {
		var stored bytes.Buffer
		if err := json.Compact(&stored, w.Payload); err != nil {
			return Event{}, fieldErr("payload", "not JSON")
		}
		e.Stored = &StoredPayload{Version: w.SchemaVersion, JSON: stored.Bytes()}
	}
	e.Institution, e.Channel, e.OriginChannel = w.Institution, w.Channel, w.OriginChannel
	e.Staff, e.Documents = w.Staff, w.Documents
	e.CorrelationID, e.CausationID, e.IdempotencyKey = w.CorrelationID, w.CausationID, w.IdempotencyKey
	e.PrevHash, e.Hash = w.PrevHash, w.Hash
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func decodePayload(t Type, version int, raw json.RawMessage) (Payload, error) {
	s, ok := registry[t]
	if !ok {
		return nil, &FieldError{Field: "type", Reason: ErrUnknownType.Error()}
	}
	if version < 1 || version > s.version {
		return nil, fieldErr("schema_version", "%s supports versions 1 to %d", t, s.version)
	}
	raw, err := upcast(t, version, s.version, raw)
	if err != nil {
		return nil, prefixed("payload", err)
	}
	p, err := s.decode(raw)
	if err != nil {
		return nil, prefixed("payload", err)
	}
	return p, nil
}

// UnmarshalStrict decodes one JSON value into v, refusing unknown fields,
// wrong types and trailing data, and reports the problem as a [*FieldError]
// naming the field, never the value. The HTTP API decodes bodies with it.
func UnmarshalStrict(data []byte, v any) error { return strictUnmarshal(data, v, "") }

// strictUnmarshal decodes one JSON value into v, refusing unknown fields and
// trailing data, and reports errors as *FieldError under path.
func strictUnmarshal(data []byte, v any, path string) error {
	if dup, ok := duplicateKey(data); ok {
		return fieldErr(join(path, dup), "duplicate key")
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if err == io.EOF {
			return fieldErr(path, "empty")
		}
		return jsonErr(path, reflect.TypeOf(v), err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fieldErr(path, "trailing data after the JSON value")
	}
	return nil
}
