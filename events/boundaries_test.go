package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestCodeClassBoundaries checks each character class at and just past its
// edges, so that a moved boundary is seen.
func TestCodeClassBoundaries(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		f    func(string) bool
		good []string
		bad  []string
	}{
		"vendor":       {ValidVendor, []string{"AZ09", "Z9"}, []string{"A@", "A[", "A/", "A:", "a1", "A"}},
		"fingerprint":  {validFingerprint, []string{strings.Repeat("0a", 32), strings.Repeat("9f", 32)}, []string{strings.Repeat("0g", 32), strings.Repeat("0`", 32), strings.Repeat("0A", 32)}},
		"actor id":     {ValidActorID, []string{"a.z_A-Z09", "z"}, []string{"a`", "a{", "a@", "a[", "a b", "a+"}},
		"key id":       {ValidKeyID, []string{"S100", "a_b-c"}, []string{"a.b"}},
		"institution":  {ValidInstitution, []string{"KB001", "ZZ"}, []string{"K", "kb", "K@", "K["}},
		"generator no": {ValidGeneratorNo, []string{"MOTP0001"}, []string{"MOTP001", "motp0001"}},
	} {
		for _, s := range tc.good {
			if !tc.f(s) {
				t.Errorf("%s: %q refused", name, s)
			}
		}
		for _, s := range tc.bad {
			if tc.f(s) {
				t.Errorf("%s: %q accepted", name, s)
			}
		}
	}
	for o, ok := range map[OriginChannel]bool{"": true, OriginBranch: true, OriginOnline: true, "PHONE": false} {
		if o.Valid() != ok {
			t.Errorf("origin %q valid %v", o, !ok)
		}
	}
}

// TestAppendStringMatchesEncodingJSON: the hand-written string encoder
// writes what encoding/json writes, at every edge of its fast path.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", " ~", "\x1f", "\x7f", "é", `q"`, `b\`, "<", ">", "&", "a<b>&c"} {
		want, _ := json.Marshal(s)
		if got := string(appendString(nil, s)); got != string(want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
}

// TestFieldErrorsNameTheirPlace: duplicate keys in nested objects and
// arrays are named by path, implausible names are not echoed, and a
// field-less error reads as such.
func TestFieldErrorsNameTheirPlace(t *testing.T) {
	t.Parallel()
	for data, want := range map[string]string{
		`{"a":[{"x":1},{"y":2,"y":3}]}`:       "a[1].y",
		`{"a":{"b":[1,[{"c":1,"c":2}]]}}`:     "a.b[1][0].c",
		`{"a":1,"b":{"Bad":1,"Bad":2}}`:       "b",
		`{"a_1":1,"a_1":2}`:                   "a_1",
		`{"za0z9":1,"za0z9":2}`:               "za0z9",
		`{"a{":1,"a{":2}`:                     "",
		`{"a/":1,"a/":2}`:                     "",
		`{"a:":1,"a:":2}`:                     "",
		`{"a` + "`" + `":1,"a` + "`" + `":2}`: "",
		`{"` + strings.Repeat("a", 40) + `":1,"` + strings.Repeat("a", 40) + `":2}`: strings.Repeat("a", 40),
		`{"` + strings.Repeat("a", 41) + `":1,"` + strings.Repeat("a", 41) + `":2}`: "",
		`{"9a":1,"9a":2}`:   "",
		`{"a-b":1,"a-b":2}`: "",
	} {
		var v any
		err := UnmarshalStrict([]byte(data), &v)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != want || fe.Reason != "duplicate key" {
			t.Errorf("%s: %v, want field %q", data, err, want)
		}
	}
	if path, ok := duplicateKey([]byte(`{"a":[1,2],"b":{"c":1}}`)); ok {
		t.Errorf("no duplicate, found %q", path)
	}
	if _, ok := duplicateKey([]byte(`{"a":[1,`)); ok {
		t.Error("malformed JSON reported as a duplicate")
	}
	if got := (&FieldError{Reason: "empty"}).Error(); got != "event: empty" {
		t.Errorf("field-less error: %q", got)
	}
	if got := (&FieldError{Field: "x", Reason: "bad"}).Error(); got != "event field x: bad" {
		t.Errorf("field error: %q", got)
	}
}

// TestPayloadBoundaries: the counts' lower bounds and the cancelled
// payload's own fields.
func TestPayloadBoundaries(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		p     Payload
		field string // "" when valid
	}{
		"one error":            {ErrorIncremented{CountAfter: 1}, ""},
		"no error":             {ErrorIncremented{CountAfter: 0}, "count_after"},
		"reset from zero":      {ErrorReset{CountBefore: 0}, ""},
		"reset from below":     {ErrorReset{CountBefore: -1}, "count_before"},
		"cancel, bad vendor":   {Cancelled{Vendor: "otp", Serial: "000111222333", Reason: CancelOther}, "vendor"},
		"cancel, bad customer": {Cancelled{Vendor: "OTP", Serial: "000111222333", CustomerNo: "c1", Reason: CancelOther}, "customer_no"},
		"cancel":               {Cancelled{Vendor: "OTP", Serial: "000111222333", CustomerNo: "C0001", Reason: CancelOther}, ""},
		"look-up by account":   {LookedUp{Query: "account_no"}, ""},
		"look-up by name":      {LookedUp{Query: "name"}, "query"},
	} {
		err := tc.p.Validate()
		var fe *FieldError
		if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
			t.Errorf("%s: %v, want field %q", name, err, tc.field)
		}
	}
}
