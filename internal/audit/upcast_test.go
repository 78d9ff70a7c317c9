package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/audit"
	"github.com/otpledger/otpledger/internal/fixture"
	"github.com/otpledger/otpledger/projections"
)

// fixtureCustomers and fixtureDevices are those of testdata/journal-495889f.
var (
	fixtureCustomers = []string{"FX0001", "FX0002", "FX0003", "FX0004"}
	fixtureDevices   = []string{"FX000001", "FX000002", "FX000003"}
)

// upcastJSON rewrites what the code of 495889f wrote of a profile as the
// current code says it: residency DOMESTIC is nationality KOREAN, FOREIGN
// stays FOREIGN. Nothing else may differ.
func upcastJSON(s string) string {
	return strings.NewReplacer(`"residency": "DOMESTIC"`, `"nationality": "KOREAN"`, `"residency": "FOREIGN"`, `"nationality": "FOREIGN"`).Replace(s)
}

// TestJournalOf495889f: a journal written by the code of 495889f (profiles
// with residency, hardware past its warranty; testdata/README.md) imports
// under the current code with every hash holding, verifies, exports back
// byte for byte (an old version is never rewritten), rebuilds views that
// answer as that code's did (residency read as nationality), loads the
// aggregates as that code folded them — also from the snapshots that code
// wrote — and decides on them: the Korean resident keeps his mobile OTP,
// the foreign ones are refused one (R-MOB-ELIGIBLE), and a profile sent
// again claims its real-name number (R-ONE-PERSON).
func TestJournalOf495889f(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, err := os.ReadFile("testdata/journal-495889f.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	j := journaltest.Journal(t)
	if err := audit.Import(ctx, j, bytes.NewReader(data)); err != nil {
		t.Fatalf("import: %v", err)
	}
	rep, err := consumers.Verify(ctx, j, nil, nil)
	if err != nil || len(rep.Findings) != 0 || rep.Events != uint64(strings.Count(string(data), "\n")-1) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var out bytes.Buffer
	if _, err := audit.Export(ctx, j, &out, audit.JSONL, audit.Window{}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Errorf("the export differs from the journal it was imported from:\n%s", out.String())
	}

	views := projections.NewMemory()
	err = consumers.ReadStream(ctx, j, 0, 0, func(items []projections.Item) error { return views.Apply(ctx, items) })
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]map[string]json.RawMessage{}
	raw, err := os.ReadFile("testdata/journal-495889f.states.json")
	if err != nil || json.Unmarshal(raw, &states) != nil {
		t.Fatalf("states: %v", err)
	}
	fps := map[string]string{}
	for _, no := range fixtureCustomers {
		var c struct {
			Profile struct {
				FP string `json:"real_name_fp"`
			} `json:"profile"`
		}
		_ = json.Unmarshal(states["customers"][no], &c)
		fps[no] = c.Profile.FP
	}
	compareGolden(t, "testdata/journal-495889f.answers.json", answers(t, views, fps))

	l, err := ledger.New(j, ledger.Config{Policy: aggregates.DefaultPolicy(fixture.Home), Now: func() time.Time { return fixture.BusinessHours.Add(2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]any{"customers": map[string]any{}, "devices": map[string]any{}}
	for _, no := range fixtureCustomers {
		c, _, err := l.LoadCustomer(ctx, no)
		if err != nil {
			t.Fatal(err)
		}
		loaded["customers"].(map[string]any)[no] = c
		var old aggregates.Customer // a snapshot as that code wrote it
		if err := json.Unmarshal(states["customers"][no], &old); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c, old); diff != "" {
			t.Errorf("customer %s from that code's snapshot (-folded +snapshot):\n%s", no, diff)
		}
	}
	for _, s := range fixtureDevices {
		d, _, err := l.LoadDevice(ctx, "OTP", s)
		if err != nil {
			t.Fatal(err)
		}
		loaded["devices"].(map[string]any)[s] = d
	}
	compareGolden(t, "testdata/journal-495889f.states.json", loaded)

	issue := func(no, phone string) error {
		m := aggregates.Meta{Institution: fixture.Home, Channel: events.ChannelMTS, Actor: events.Actor{Role: events.RoleSelf, ID: "WEB"}}
		_, err := l.Customer(ctx, no, aggregates.IssueMobile{Meta: m, GeneratorNo: "MGFX9" + no[2:], PhoneFP: strings.Repeat(phone, 64),
			PhoneMasked: "*******9999", Verification: events.Verification{HomeAccount: true, PhoneIdentity: true, OneWonTransfer: true}})
		return err
	}
	if err := issue("FX0004", "4"); aggregates.RuleOf(err) != aggregates.RuleMobEligible {
		t.Errorf("a foreigner's mobile OTP: %v", err)
	}
	if err := issue("FX0001", "1"); err != nil { // on another phone: the old one revoked (R-MOB-ONE-PHONE)
		t.Errorf("a Korean's reissue: %v", err)
	}
	c2, _, _ := l.LoadCustomer(ctx, "FX0002")
	a, err := l.Customer(ctx, "FX0002", aggregates.SetProfile{Meta: aggregates.Meta{Institution: fixture.Home, Channel: events.ChannelCore,
		Actor: events.Actor{Role: events.RoleSystem, ID: "CORE"}}, Type: c2.Profile.Type, Nationality: events.Korean,
		RealNameFP: c2.Profile.RealNameFP, RealNameMasked: c2.Profile.RealNameMasked, Accounts: c2.Profile.Accounts})
	if err != nil || len(a.Events) != 2 || a.Events[1].Aggregate != events.PersonRef(c2.Profile.RealNameFP) {
		t.Errorf("FX0002 profiled again: %+v %v", a, err)
	}
}

// answers are the views' answers the program of testdata/README.md
// recorded; fps are the customers' real-name fingerprints.
func answers(t *testing.T, m *projections.Memory, fps map[string]string) map[string]any {
	ctx := context.Background()
	at := fixture.BusinessHours.Add(time.Hour)
	out := map[string]any{}
	check := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, no := range fixtureCustomers {
		cd, err := m.CustomerDevices(ctx, no, at)
		check(err)
		out["devices/"+no] = cd
		md, err := m.CustomerMedia(ctx, no, "", projections.Page{})
		check(err)
		out["media/"+no] = md
		if mo, ok, _, err := m.MobileOTP(ctx, no, at); ok {
			check(err)
			out["mobile/"+no] = mo
		}
		l, err := m.FindCustomers(ctx, fps[no], "")
		check(err)
		out["find/"+no] = l
	}
	for _, s := range fixtureDevices {
		di, err := m.DeviceInstitutions(ctx, "OTP", s)
		check(err)
		out["institutions/"+s] = di
		dh, err := m.DeviceHistory(ctx, "OTP", s, projections.Page{})
		check(err)
		out["history/"+s] = dh
		if de, ok, _, err := m.DeviceErrors(ctx, "OTP", s); ok {
			check(err)
			out["errors/"+s] = de
		}
	}
	return out
}

// compareGolden compares got, as JSON, with the golden file upcast.
func compareGolden(t *testing.T, path string, got map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want, have map[string]any
	if err := json.Unmarshal([]byte(upcastJSON(string(raw))), &want); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(got)
	if err := json.Unmarshal(data, &have); err != nil {
		t.Fatal(err)
	}
	dropKey(want, "last_occurred_at")
	warrantyEnded(t, have)
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("%s (-that code +this code):\n%s", path, diff)
	}
}

// dropKey removes key from every object in v: the states of 495889f kept
// each aggregate's last occurred_at, which late centre events (domain.md,
// decisions of 2026-12-03) no longer compare against.
func dropKey(v any, key string) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, key)
		for _, x := range v {
			dropKey(x, key)
		}
	case []any:
		for _, x := range v {
			dropKey(x, key)
		}
	}
}

// warrantyEnded checks, then removes, the warranty_ended the current views
// add (R-HW-VALIDITY): true exactly on rows whose warranty ended before
// today in Korea, which is every warranty of the fixture.
func warrantyEnded(t *testing.T, v any) {
	t.Helper()
	today := time.Now().In(time.FixedZone("KST", 9*60*60)).Format(time.DateOnly)
	switch v := v.(type) {
	case map[string]any:
		if ended, ok := v["warranty_ended"]; ok {
			to, _ := v["warranty_to"].(string)
			if ended != (to != "" && to < today) {
				t.Errorf("warranty_ended %v with warranty_to %q on %s", ended, to, today)
			}
			delete(v, "warranty_ended")
		}
		for _, x := range v {
			warrantyEnded(t, x)
		}
	case []any:
		for _, x := range v {
			warrantyEnded(t, x)
		}
	}
}
