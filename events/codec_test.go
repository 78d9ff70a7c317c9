package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

var (
	t0  = time.Date(2026, 11, 25, 1, 0, 0, 123456789, time.UTC)
	dev = DeviceRef("OTP", "000111222333")
	fp  = strings.Repeat("ab", 32)
)

// samples holds one valid event per type; tests and the fuzz corpus use them.
func samples() []Event {
	base := func(ref AggregateRef, p Payload) Event {
		return Event{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(p.EventType())), OccurredAt: t0, RecordedAt: t0.Add(time.Millisecond),
			Aggregate: ref, Institution: "IBKS", Channel: ChannelBranch, Actor: Actor{Role: RoleSelf, ID: "CUST1"},
			Staff: "S100", Documents: []Document{DocRealNameID, DocProcessingForm, DocSealOrSignature},
			CorrelationID: "corr-1", IdempotencyKey: "key-1", Payload: p}
	}
	cust := CustomerRef("C0001")
	return []Event{
		base(cust, CustomerProfiled{CustomerType: Individual, Nationality: Korean, RealNameFingerprint: fp, RealNameMasked: "900101-1******", Accounts: []string{"12345678901"}}),
		base(dev, Registered{Vendor: "OTP", Serial: "000111222333", CustomerNo: "C0001", WarrantyFrom: "2024-01-01", WarrantyTo: "2027-01-01", ResponseCodeGiven: true}),
		base(dev, Cancelled{Vendor: "OTP", Serial: "000111222333", CustomerNo: "C0001", Reason: CancelDiscarded}),
		base(dev, ReportedLost{Reason: LossStolen, Institutions: []string{"IBKS", "KB001"}}),
		base(dev, Recovered{InBranch: true}),
		base(dev, ErrorIncremented{CountAfter: 10, Locked: true}),
		base(dev, ErrorReset{CountBefore: 10}),
		base(cust, MobileIssued{GeneratorNo: "MOTP0001", PhoneFingerprint: fp, PhoneMasked: "*******5678", ValidUntil: t0.AddDate(3, 0, 0),
			Verification: &Verification{HomeAccount: true, PhoneIdentity: true, OneWonTransfer: true}}),
		base(cust, MobileRevoked{GeneratorNo: "MOTP0001", Reason: RevokeSuperseded}),
		base(dev, Approved{EventID: uuid.NewSHA1(uuid.NameSpaceOID, []byte("x")), Approver: "M200"}),
		base(PersonRef(fp), PersonClaimed{CustomerNo: "C0001"}),
		key(KeyCreated{Role: RoleProducer, Channels: []Channel{ChannelAuth}, ExpiresAt: &expires, TokenHash: fp, CertSubject: "CN=auth-service"}),
		key(KeyRevoked{}),
		func() Event {
			e := key(LookedUp{Query: "real_name_number", Customers: []string{"C0001"}})
			e.Aggregate = LookupRef("S100")
			return e
		}(),
	}
}

var expires = t0.AddDate(1, 0, 0)

// key returns a key event as the admin principal appends it.
func key(p Payload) Event {
	return Event{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(p.EventType())), OccurredAt: t0, RecordedAt: t0,
		Aggregate: KeyRef("AUTH"), Institution: "IBKS", Channel: ChannelAdmin, Actor: Actor{Role: RoleSystem, ID: "admin"},
		Principal: &Principal{ID: "admin", Role: RoleAdmin, Method: MethodAPIKey}, Payload: p}
}

func TestRoundTripEveryType(t *testing.T) {
	t.Parallel()
	seen := map[Type]bool{}
	for _, e := range samples() {
		seen[e.Type()] = true
		data, err := EncodeCommit(Commit{Events: []Event{e}})
		if err != nil {
			t.Fatalf("%s: %v", e.Type(), err)
		}
		c, err := DecodeCommit(data)
		if err != nil {
			t.Fatalf("%s: %v", e.Type(), err)
		}
		if diff := cmp.Diff(e, c.Events[0]); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", e.Type(), diff)
		}
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

// mutate decodes the sample of type typ to a generic map, applies f, and
// re-encodes it, so that each case states only its defect.
func mutate(t *testing.T, typ Type, f func(m map[string]any)) []byte {
	t.Helper()
	for _, e := range samples() {
		if e.Type() != typ {
			continue
		}
		data, _ := json.Marshal(e)
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	t.Fatalf("no sample %s", typ)
	return nil
}

func payload(m map[string]any) map[string]any { return m["payload"].(map[string]any) }

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, field string
		data        []byte
	}{
		{"malformed JSON", "", []byte(`{"id":`)},
		{"trailing data", "", append(mutate(t, TypeRecovered, func(map[string]any) {}), []byte(` {}`)...)},
		{"unknown envelope field", "extra", mutate(t, TypeRecovered, func(m map[string]any) { m["extra"] = 1 })},
		{"unknown payload field", "payload.pin", mutate(t, TypeRecovered, func(m map[string]any) { payload(m)["pin"] = "1234" })},
		{"unknown actor field", "actor.name", mutate(t, TypeRecovered, func(m map[string]any) { m["actor"].(map[string]any)["name"] = "x" })},
		{"wrong type in payload", "payload.count_after", mutate(t, TypeErrorIncremented, func(m map[string]any) { payload(m)["count_after"] = "ten" })},
		{"wrong type in envelope", "schema_version", mutate(t, TypeRecovered, func(m map[string]any) { m["schema_version"] = "1" })},
		{"missing id", "id", mutate(t, TypeRecovered, func(m map[string]any) { delete(m, "id") })},
		{"bad id", "id", mutate(t, TypeRecovered, func(m map[string]any) { m["id"] = "not-a-uuid" })},
		{"bad time", "occurred_at", mutate(t, TypeRecovered, func(m map[string]any) { m["occurred_at"] = "yesterday" })},
		{"missing payload", "payload", mutate(t, TypeRecovered, func(m map[string]any) { delete(m, "payload") })},
		{"missing required payload field", "payload.institutions", mutate(t, TypeReportedLost, func(m map[string]any) { delete(payload(m), "institutions") })},
		{"unknown type", "type", mutate(t, TypeRecovered, func(m map[string]any) { m["type"] = "issued" })},
		{"future schema version", "schema_version", mutate(t, TypeRecovered, func(m map[string]any) { m["schema_version"] = 9 })},
		{"bad vendor", "payload.vendor", mutate(t, TypeRegistered, func(m map[string]any) { payload(m)["vendor"] = "otp!" })},
		{"bad serial", "payload.serial", mutate(t, TypeRegistered, func(m map[string]any) { payload(m)["serial"] = "123" })},
		{"bad customer number", "payload.customer_no", mutate(t, TypeRegistered, func(m map[string]any) { payload(m)["customer_no"] = "c-1" })},
		{"bad institution", "institution", mutate(t, TypeRecovered, func(m map[string]any) { m["institution"] = "kb" })},
		{"bad aggregate key", "aggregate.key", mutate(t, TypeRecovered, func(m map[string]any) { m["aggregate"].(map[string]any)["key"] = "OTP" })},
		{"clear real-name number", "payload.real_name_fingerprint", mutate(t, TypeCustomerProfiled, func(m map[string]any) { payload(m)["real_name_fingerprint"] = "9001011234567" })},
		{"unmasked phone", "payload.phone_masked", mutate(t, TypeMobileIssued, func(m map[string]any) { payload(m)["phone_masked"] = "01012345678" })},
		{"unknown channel", "channel", mutate(t, TypeRecovered, func(m map[string]any) { m["channel"] = "FAX" })},
		{"origin off the centre", "origin_channel", mutate(t, TypeRecovered, func(m map[string]any) { m["origin_channel"] = "BRANCH" })},
		{"unknown document", "documents[1]", mutate(t, TypeRecovered, func(m map[string]any) { m["documents"].([]any)[1] = "PASSPORT" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEvent(tc.data)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("want field %q, got %v", tc.field, err)
			}
			if strings.Contains(err.Error(), "9001011234567") || strings.Contains(err.Error(), "01012345678") {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
}

func TestDecodeCommitPaths(t *testing.T) {
	t.Parallel()
	good, _ := json.Marshal(samples()[4])
	bad := mutate(t, TypeReportedLost, func(m map[string]any) { payload(m)["reason"] = "MISPLACED" })
	_, err := DecodeCommit([]byte(`{"events":[` + string(good) + `,` + string(bad) + `]}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "events[1].payload.reason" {
		t.Fatalf("want events[1].payload.reason, got %v", err)
	}
	if _, err := DecodeCommit([]byte(`{"events":[]}`)); !errors.As(err, &fe) || fe.Field != "events" {
		t.Fatalf("empty commit: %v", err)
	}
	other := samples()[0] // a customer event
	if _, err := EncodeCommit(Commit{Events: []Event{samples()[4], other}}); !errors.As(err, &fe) || fe.Field != "events[1].aggregate" {
		t.Fatalf("mixed aggregates: %v", err)
	}
}

func TestUpcastRegisteredV1(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/registered_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Registered{Vendor: "OTP", Serial: "000111222333", WarrantyFrom: "2024-01-01", WarrantyTo: "2027-01-01", ResponseCodeGiven: true}
	if diff := cmp.Diff(want, e.Payload); diff != "" {
		t.Fatalf("upcast v1 (-want +got):\n%s", diff)
	}
	again, _ := json.Marshal(e)
	if !strings.Contains(string(again), `"schema_version":2`) || strings.Contains(string(again), "482913") {
		t.Fatalf("re-encoded at the current version without the response code: %s", again)
	}
	bad := strings.Replace(string(data), "20240101-20270101", "2024-2027", 1)
	var fe *FieldError
	if _, err := DecodeEvent([]byte(bad)); !errors.As(err, &fe) || fe.Field != "payload.warranty" {
		t.Fatalf("bad v1 warranty: %v", err)
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	for _, ref := range []AggregateRef{dev, CustomerRef("C0001")} {
		s := Subject(ref)
		back, ok := ParseSubject(s)
		if !ok || back != ref {
			t.Errorf("%s -> %s -> %v %v", ref, s, back, ok)
		}
	}
	if Subject(dev) != "otpledger.device.OTP.000111222333" {
		t.Errorf("device subject %s", Subject(dev))
	}
	for _, s := range []string{"otpledger.device.OTP", "other.customer.C0001", "otpledger.customer.c1", "otpledger.thing.X.Y"} {
		if _, ok := ParseSubject(s); ok {
			t.Errorf("ParseSubject(%q) accepted", s)
		}
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		valid func(string) bool
		good  []string
		bad   []string
	}{
		{ValidVendor, []string{"OT", "OTP1"}, []string{"O", "OTP12", "otp", "O-P"}},
		{ValidSerial, []string{"ABC123", strings.Repeat("9", 20)}, []string{"ABC12", strings.Repeat("9", 21), "abc123", "ABC 123"}},
		{ValidCustomerNo, []string{"C001", "12345678901234567890"}, []string{"C01", "c001", "C.001"}},
		{ValidAccountNo, []string{"12345678", "12345678901234"}, []string{"1234567", "123456789012345", "1234567A"}},
		{ValidInstitution, []string{"KB", "KB001", "ABCDEFGH"}, []string{"K", "ABCDEFGHI", "kb001"}},
	} {
		for _, s := range tc.good {
			if !tc.valid(s) {
				t.Errorf("%q refused", s)
			}
		}
		for _, s := range tc.bad {
			if tc.valid(s) {
				t.Errorf("%q accepted", s)
			}
		}
	}
}

// TestPrincipalAndAdminChannel: the principal round-trips and is checked;
// channel ADMIN belongs to key events only, and key events to it.
func TestPrincipalAndAdminChannel(t *testing.T) {
	t.Parallel()
	e := samples()[1]
	e.Principal = &Principal{ID: "S100", Role: RoleTeller, Method: MethodAPIKey}
	data, err := EncodeCommit(Commit{Events: []Event{e}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommit(data)
	if err != nil || cmp.Diff(e, c.Events[0]) != "" {
		t.Fatalf("principal round trip: %v %s", err, cmp.Diff(e, c.Events[0]))
	}
	for name, tc := range map[string]struct {
		e     Event
		field string
	}{
		"bad principal role": {func() Event {
			x := e
			x.Principal = &Principal{ID: "S100", Role: "root", Method: MethodAPIKey}
			return x
		}(), "principal.role"},
		"ADMIN on a device":      {func() Event { x := e; x.Channel = ChannelAdmin; return x }(), "channel"},
		"key event off ADMIN":    {func() Event { x := key(KeyRevoked{}); x.Channel = ChannelBranch; return x }(), "channel"},
		"producer with BRANCH":   {key(KeyCreated{Role: RoleProducer, Channels: []Channel{ChannelBranch}, TokenHash: fp}), "payload.channels[0]"},
		"producer, no channels":  {key(KeyCreated{Role: RoleProducer, TokenHash: fp}), "payload.channels"},
		"teller with channels":   {key(KeyCreated{Role: RoleTeller, Channels: []Channel{ChannelMTS}, TokenHash: fp}), "payload.channels"},
		"token kept, not a hash": {key(KeyCreated{Role: RoleTeller, TokenHash: "otpl_secret"}), "payload.token_hash"},
	} {
		var fe *FieldError
		if err := tc.e.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: want field %s, got %v", name, tc.field, err)
		}
	}
}

// TestUpcastCustomerProfiledV1: profiles written by the code of 495889f
// (residency) read as nationality (DOMESTIC → KOREAN, FOREIGN → FOREIGN)
// by both decoders, and still encode byte for byte as written, so their
// hashes hold: the old version is never rewritten. An unknown residency is
// refused naming the field.
func TestUpcastCustomerProfiledV1(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/customer_profiled_v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Nationality]int{}
	for line := range strings.Lines(string(data)) {
		raw := []byte(strings.TrimSpace(line))
		e, err := DecodeEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		p := e.Payload.(CustomerProfiled)
		old := map[string]any{}
		if err := json.Unmarshal(raw, &old); err != nil {
			t.Fatal(err)
		}
		if want := Residency(old["payload"].(map[string]any)["residency"].(string)).Nationality(); p.Nationality != want || want == "" {
			t.Errorf("%s: nationality %q, want %q", e.ID, p.Nationality, want)
		}
		seen[p.Nationality]++
		again, err := json.Marshal(e)
		if err != nil || !bytes.Equal(again, raw) {
			t.Errorf("%s re-encoded as\n%s\nnot as written\n%s (%v)", e.ID, again, raw, err)
		}
		if h, err := HashOf(e); err != nil || h != e.Hash {
			t.Errorf("%s hashes to %s, recorded %s (%v)", e.ID, h, e.Hash, err)
		}
		fast := decodeBothWays(t, raw)
		if fast.Events[0].Stored == nil || fast.Events[0].Stored.Version != 1 {
			t.Errorf("%s: stored form %+v, want version 1", e.ID, fast.Events[0].Stored)
		}
	}
	if seen[Korean] == 0 || seen[NonKorean] == 0 {
		t.Fatalf("the fixture holds %v: both residencies are needed", seen)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	bad := strings.Replace(first, `"residency":"DOMESTIC"`, `"residency":"ABROAD"`, 1)
	var fe *FieldError
	if _, err := DecodeEvent([]byte(bad)); !errors.As(err, &fe) || fe.Field != "payload.residency" {
		t.Fatalf("unknown residency: %v", err)
	}
}
