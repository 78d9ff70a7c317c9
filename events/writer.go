package events

import (
	"encoding/json"
	"strconv"
)

// payloadWriter is a payload that writes its own JSON, byte for byte as
// encoding/json writes it: every event is encoded three times per command
// (its hash, the message, the read-back check) and once more by each view
// that keeps its history, and reflection was most of that. Event hashes are
// over these bytes, so they must never change for a schema version;
// TestPayloadWritersMatchEncodingJSON holds them to encoding/json's output.
// The rare types (mobile issuance, the access events) go through
// encoding/json.
type payloadWriter interface {
	appendJSON(buf []byte) []byte
}

// MarshalPayload returns p's JSON, as json.Marshal(p) does, faster for the
// domain's payloads.
func MarshalPayload(p Payload) ([]byte, error) { return appendPayload(nil, p) }

// appendPayload appends p's JSON to buf.
func appendPayload(buf []byte, p Payload) ([]byte, error) {
	if w, ok := p.(payloadWriter); ok {
		return w.appendJSON(buf), nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return append(buf, data...), nil
}

// appendFirst opens an object with its first field's name.
func appendFirst(buf []byte, name string) []byte {
	buf = append(buf, `{"`...)
	buf = append(buf, name...)
	return append(buf, '"', ':')
}

func appendBool(buf []byte, name string, v bool) []byte {
	buf = append(buf, ',', '"')
	buf = append(buf, name...)
	buf = append(buf, '"', ':')
	return strconv.AppendBool(buf, v)
}

// appendStrings appends a list field; omitEmpty as the field's omitempty.
func appendStrings(buf []byte, name string, list []string, omitEmpty bool) []byte {
	if omitEmpty && len(list) == 0 {
		return buf
	}
	buf = append(buf, ',', '"')
	buf = append(buf, name...)
	buf = append(buf, '"', ':')
	if list == nil {
		return append(buf, "null"...)
	}
	buf = append(buf, '[')
	for i, s := range list {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, s)
	}
	return append(buf, ']')
}

func (p CustomerProfiled) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "customer_type"), string(p.CustomerType))
	buf = appendField(buf, "nationality", string(p.Nationality))
	buf = appendField(buf, "real_name_fingerprint", p.RealNameFingerprint)
	buf = appendField(buf, "real_name_masked", p.RealNameMasked)
	return append(appendStrings(buf, "accounts", p.Accounts, true), '}')
}

func (p PersonClaimed) appendJSON(buf []byte) []byte {
	return append(appendString(appendFirst(buf, "customer_no"), p.CustomerNo), '}')
}

func (p Registered) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "vendor"), p.Vendor)
	buf = appendField(buf, "serial", p.Serial)
	buf = appendOptional(buf, "customer_no", p.CustomerNo)
	buf = appendOptional(buf, "warranty_from", p.WarrantyFrom)
	buf = appendOptional(buf, "warranty_to", p.WarrantyTo)
	return append(appendBool(buf, "response_code_given", p.ResponseCodeGiven), '}')
}

func (p Cancelled) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "vendor"), p.Vendor)
	buf = appendField(buf, "serial", p.Serial)
	buf = appendOptional(buf, "customer_no", p.CustomerNo)
	return append(appendField(buf, "reason", string(p.Reason)), '}')
}

func (p ReportedLost) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "reason"), string(p.Reason))
	buf = appendStrings(buf, "institutions", p.Institutions, false)
	return append(appendOptional(buf, "customer_no", p.CustomerNo), '}')
}

func (p Recovered) appendJSON(buf []byte) []byte {
	buf = strconv.AppendBool(appendFirst(buf, "in_branch"), p.InBranch)
	return append(appendOptional(buf, "customer_no", p.CustomerNo), '}')
}

func (p ErrorIncremented) appendJSON(buf []byte) []byte {
	buf = strconv.AppendInt(appendFirst(buf, "count_after"), int64(p.CountAfter), 10)
	return append(appendBool(buf, "locked", p.Locked), '}')
}

func (p ErrorReset) appendJSON(buf []byte) []byte {
	buf = strconv.AppendInt(appendFirst(buf, "count_before"), int64(p.CountBefore), 10)
	return append(appendOptional(buf, "customer_no", p.CustomerNo), '}')
}

func (p MobileRevoked) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "generator_no"), p.GeneratorNo)
	return append(appendField(buf, "reason", string(p.Reason)), '}')
}

func (p Approved) appendJSON(buf []byte) []byte {
	buf = appendString(appendFirst(buf, "event_id"), p.EventID.String())
	return append(appendField(buf, "approver", p.Approver), '}')
}
