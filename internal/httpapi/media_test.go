package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/internal/fixture"
)

// post sends a command and returns its answer's events as kind/type.
func (a testAPI) post(t *testing.T, path, body string) []string {
	t.Helper()
	status, out := a.do(t, "POST", path, "application/json", body)
	var answer struct {
		Events []struct {
			Type      string
			Aggregate struct{ Kind string }
		}
	}
	if status != 201 || json.Unmarshal([]byte(out), &answer) != nil {
		t.Fatalf("POST %s: %d %s", path, status, out)
	}
	var got []string
	for _, e := range answer.Events {
		got = append(got, e.Aggregate.Kind+"/"+e.Type)
	}
	return got
}

// get answers a query as JSON.
func (a testAPI) get(t *testing.T, path string, v any) {
	t.Helper()
	status, out := a.do(t, "GET", path, "", "")
	if status != 200 || json.Unmarshal([]byte(out), v) != nil {
		t.Fatalf("GET %s: %d %s", path, status, out)
	}
}

// TestNewMediumReplacesTheOld (R-ONE-OTP): a mobile OTP issued to a customer
// with hardware at home answers every event (the home registration's end on
// customer and device, the issuance), the views show what replaced what, and
// the device stays registered at the other institution; a hardware
// registration at home then revokes the mobile OTP the same way.
func TestNewMediumReplacesTheOld(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "PUT", "/v1/customers/C0001", `{`+branchSelf+`,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"`+realName+`"}`)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{`+branchSelf+`,"customer_no":"C0001","warranty_from":"2024-01-01","warranty_to":"2027-01-01"}`)
	got := a.post(t, "/v1/customers/C0001/mobile-otp", `{`+mts+`,"phone_id":"`+phoneID+`","verification":{"home_account":true,"phone_identity":true,"otp_or_security_card":true}}`)
	if want := "customer/cancelled customer/mobile_issued device/cancelled"; strings.Join(got, " ") != want {
		t.Fatalf("mobile issuance answered %v, want %s", got, want)
	}
	a.settle(t)
	var devices struct {
		Items []struct {
			Kind     string
			MediumID string `json:"medium_id"`
			Status   string
		}
	}
	a.get(t, "/v1/customers/C0001/devices", &devices)
	if len(devices.Items) != 2 || fmt.Sprint(devices.Items) != "[{HARDWARE OTP.000111222333 CANCELLED} {MOBILE "+devices.Items[1].MediumID+" ACTIVE}]" {
		t.Fatalf("2376 after the mobile issuance: %+v", devices.Items)
	}
	var insts struct {
		Items []struct {
			Institution  string
			EndedAt      *time.Time `json:"ended_at"`
			CancelReason string     `json:"cancel_reason"`
		}
	}
	a.get(t, "/v1/devices/OTP/000111222333/institutions", &insts)
	for _, i := range insts.Items {
		if ended := i.EndedAt != nil; ended != (i.Institution == "IBKS") || (ended && i.CancelReason != "REPLACED_BY_MOBILE") {
			t.Errorf("2376 institutions: %+v", insts.Items)
		}
	}
	a.post(t, "/v1/devices/OTP/999888777666/registrations", `{`+branchSelf+`,"customer_no":"C0001"}`)
	a.settle(t)
	var media struct {
		Items []struct {
			Kind        string
			IssueStatus string `json:"issue_status"`
			EndReason   string `json:"end_reason"`
		}
	}
	a.get(t, "/v1/customers/C0001/media", &media)
	if fmt.Sprint(media.Items) != "[{HARDWARE ENDED REPLACED_BY_MOBILE} {MOBILE ENDED REPLACED_BY_HARDWARE} {HARDWARE ISSUED }]" {
		t.Fatalf("2373 shows %+v", media.Items)
	}
	var pending struct{ Items []struct{ Type string } }
	a.get(t, "/v1/approvals/pending", &pending)
	if fmt.Sprint(pending.Items) != "[{registered} {registered}]" {
		t.Errorf("pending approvals: %+v, want the two home registrations only (the revocation is part of the second)", pending.Items)
	}
}

// TestLossReportWithoutReason: screen 2374 collects no reason; the report is
// recorded without one, and with one when given.
func TestLossReportWithoutReason(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{`+branchSelf+`,"customer_no":"C0001"}`)
	if got := a.post(t, "/v1/devices/OTP/000111222333/loss-reports", `{`+branchSelf+`}`); fmt.Sprint(got) != "[device/reported_lost]" {
		t.Fatalf("loss report without a reason answered %v", got)
	}
	a.settle(t)
	var history struct{ Items []map[string]any }
	a.get(t, "/v1/devices/OTP/000111222333/history", &history)
	if last := history.Items[len(history.Items)-1]; last["type"] != "reported_lost" || (last["reason"] != nil && last["reason"] != "") {
		t.Fatalf("history row: %v", last)
	}
}

// TestLateCentreEvent: a centre event that occurred a few hundred
// microseconds before the device's last local event is recorded; each
// history row shows both times, and "as of T" is what the ledger had
// recorded at T, not what had occurred by then.
func TestLateCentreEvent(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(fixture.BusinessHours.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	a := newTestAPI(t, func(c *Config) {
		l, err := ledger.New(c.Journal, ledger.Config{Policy: aggregates.DefaultPolicy("IBKS"), Now: now})
		if err != nil {
			t.Fatal(err)
		}
		c.Ledger = l
	})
	a.must(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`)
	clock.Add(int64(time.Minute))
	local := now()
	status, out := a.do(t, "POST", "/v1/devices/OTP/000111222333/errors", "application/json", `{`+authCh+`}`)
	var increment struct{ Events []struct{ Sequence uint64 } }
	if status != 201 || json.Unmarshal([]byte(out), &increment) != nil {
		t.Fatalf("error: %d %s", status, out)
	}
	clock.Add(int64(time.Minute))
	late := local.Add(-300 * time.Microsecond)
	a.must(t, "POST", "/v1/devices/OTP/000111222333/errors/reset",
		`{"channel":"CENTER","institution":"KB001","origin_channel":"BRANCH","actor":{"role":"SYSTEM","id":"CENTER"},"occurred_at":"`+late.Format(time.RFC3339Nano)+`"}`)
	a.settle(t)
	var history struct {
		Items []struct {
			Type       string
			OccurredAt time.Time `json:"occurred_at"`
			RecordedAt time.Time `json:"recorded_at"`
		}
	}
	a.get(t, "/v1/devices/OTP/000111222333/history", &history)
	if n := len(history.Items); n != 3 || history.Items[2].Type != "error_reset" || !history.Items[2].OccurredAt.Equal(late) ||
		!history.Items[2].OccurredAt.Before(history.Items[1].OccurredAt) || !history.Items[2].RecordedAt.After(history.Items[1].RecordedAt) {
		t.Fatalf("history: %+v", history.Items)
	}
	for _, tc := range []struct {
		asOf  time.Time
		count int
		seq   uint64 // the last message folded
	}{
		{local.Add(30 * time.Second), 1, increment.Events[0].Sequence}, // the reset had occurred, but the ledger had not recorded it yet
		{now(), 0, increment.Events[0].Sequence + 1},
	} {
		var d struct {
			ErrorCount   int    `json:"error_count"`
			AsOfSequence uint64 `json:"as_of_sequence"`
		}
		a.get(t, "/v1/devices/OTP/000111222333?as_of="+tc.asOf.Format(time.RFC3339Nano), &d)
		if d.ErrorCount != tc.count || d.AsOfSequence != tc.seq {
			t.Errorf("as of %s: error count %d at sequence %d, want %d at %d", tc.asOf.Format(time.RFC3339Nano), d.ErrorCount, d.AsOfSequence, tc.count, tc.seq)
		}
	}
	// Go's zero instant is no "now": before the ledger's first event, refused.
	if status, out := a.do(t, "GET", "/v1/devices/OTP/000111222333?as_of=0001-01-01T00:00:00Z", "", ""); status != 400 || !strings.Contains(out, `"field":"as_of"`) {
		t.Errorf("as_of at year 1: %d %s, want 400 as_of", status, out)
	}
}
