package events

import (
	"encoding/json"
	"strings"
)

// Upcaster rewrites a payload of one schema version into the next version's
// shape. It works on the JSON, so the old Go type need not exist any more.
// It returns a [*FieldError] relative to the payload when the old payload is
// malformed.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

type upcastKey struct {
	t    Type
	from int
}

// upcasters holds, for each type and version n, the step from n to n+1.
var upcasters = map[upcastKey]Upcaster{
	{TypeRegistered, 1}:       upcastRegisteredV1,
	{TypeCustomerProfiled, 1}: upcastCustomerProfiledV1,
}

// upcast applies the chain of steps that takes raw from version from to version to.
func upcast(t Type, from, to int, raw json.RawMessage) (json.RawMessage, error) {
	for v := from; v < to; v++ {
		step, ok := upcasters[upcastKey{t, v}]
		if !ok {
			return nil, fieldErr("", "no upcaster from %s v%d", t, v)
		}
		var err error
		if raw, err = step(raw); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// registeredV1 is the first shape of registered, as the centre feed sent it:
// the warranty as one "YYYYMMDD-YYYYMMDD" string and the OTP response code
// itself. Version 2 splits the warranty into two ISO dates and keeps only
// whether a response code was given: a one-time password is not something to
// keep.
type registeredV1 struct {
	Vendor       string `json:"vendor"`
	Serial       string `json:"serial"`
	CustomerNo   string `json:"customer_no,omitempty"`
	Warranty     string `json:"warranty,omitempty"`
	ResponseCode string `json:"response_code,omitempty"`
}

func upcastRegisteredV1(raw json.RawMessage) (json.RawMessage, error) {
	var old registeredV1
	if err := strictUnmarshal(raw, &old, ""); err != nil {
		return nil, err
	}
	v2 := Registered{Vendor: old.Vendor, Serial: old.Serial, CustomerNo: old.CustomerNo,
		ResponseCodeGiven: old.ResponseCode != ""}
	if old.Warranty != "" {
		from, to, ok := strings.Cut(old.Warranty, "-")
		if !ok || len(from) != 8 || len(to) != 8 {
			return nil, fieldErr("warranty", "must be YYYYMMDD-YYYYMMDD")
		}
		v2.WarrantyFrom = from[:4] + "-" + from[4:6] + "-" + from[6:]
		v2.WarrantyTo = to[:4] + "-" + to[4:6] + "-" + to[6:]
	}
	return json.Marshal(v2)
}

// customerProfiledV1 is the first shape of customer_profiled: residency
// (DOMESTIC/FOREIGN) where version 2 says nationality (R-MOB-ELIGIBLE reads
// nationality, not residence).
type customerProfiledV1 struct {
	CustomerType        CustomerType `json:"customer_type"`
	Residency           Residency    `json:"residency"`
	RealNameFingerprint string       `json:"real_name_fingerprint"`
	RealNameMasked      string       `json:"real_name_masked"`
	Accounts            []string     `json:"accounts,omitempty"`
}

// upcastCustomerProfiledV1 maps residency DOMESTIC to nationality KOREAN and
// FOREIGN to FOREIGN: the profiles of version 1 were recorded for the
// eligibility of Korean nationals, which they named domestic.
func upcastCustomerProfiledV1(raw json.RawMessage) (json.RawMessage, error) {
	var old customerProfiledV1
	if err := strictUnmarshal(raw, &old, ""); err != nil {
		return nil, err
	}
	n := old.Residency.Nationality()
	if n == "" {
		return nil, fieldErr("residency", "must be DOMESTIC or FOREIGN")
	}
	return json.Marshal(CustomerProfiled{CustomerType: old.CustomerType, Nationality: n,
		RealNameFingerprint: old.RealNameFingerprint, RealNameMasked: old.RealNameMasked, Accounts: old.Accounts})
}
