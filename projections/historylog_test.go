package projections

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// TestHistoryLog: rows come back from a device's encoded log as they went
// in — every field, optional parts present and absent, times in UTC to the
// nanosecond, the zero time — an approval re-encodes its row in place
// without disturbing the rows after it, a log's index is rebuilt from its
// bytes alone, and a log cut short or overrun is refused, not misread.
func TestHistoryLog(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 26, 9, 30, 1, 123456789, time.UTC)
	rows := []History{
		{Seq: 7, Idx: 0, EventID: uuid.New(), Type: "registered", OccurredAt: at, RecordedAt: at.Add(time.Millisecond), Institution: "IBKS",
			Channel: "BRANCH", Actor: events.Actor{Role: "SELF", ID: "C0001"}, Principal: &events.Principal{ID: "S100", Role: events.RoleTeller, Method: events.MethodAPIKey},
			Staff: "S100", Documents: []string{"REAL_NAME_ID", "PROCESSING_FORM"}, Payload: json.RawMessage(`{"customer_no":"C0001"}`)},
		{Seq: 7, Idx: 1, EventID: uuid.New(), Type: "error_incremented", OccurredAt: time.Time{}, RecordedAt: at, Institution: "KB001",
			Channel: "CENTER", OriginChannel: "ONLINE", Actor: events.Actor{Role: "SYSTEM"}, Documents: []string{}, Payload: json.RawMessage(`{}`)},
		{Seq: 9, Idx: 0, EventID: uuid.New(), Type: "reported_lost", OccurredAt: at, RecordedAt: at, Institution: "IBKS", Channel: "BRANCH",
			Actor: events.Actor{Role: "AGENT", ID: "홍길동"}, Documents: []string{}, Approval: &HistoryApproval{Approver: "M200", ApprovedAt: at},
			Payload: json.RawMessage(`{"reason":"LOST","institutions":["IBKS"]}`)},
	}
	l := &historyLog{vendor: "OTP", serial: "000111222333"}
	for i := range rows {
		rows[i].Vendor, rows[i].Serial = l.vendor, l.serial
		l.append(&rows[i])
	}
	check := func(what string, l *historyLog, want []History) {
		t.Helper()
		if len(l.refs) != len(want) {
			t.Fatalf("%s: %d rows, want %d", what, len(l.refs), len(want))
		}
		for i, r := range l.refs {
			if got := l.at(r); !reflect.DeepEqual(got, want[i]) || r.seq != want[i].Seq || int(r.idx) != want[i].Idx {
				t.Errorf("%s: row %d\n got %+v\nwant %+v", what, i, got, want[i])
			}
		}
	}
	check("appended", l, rows)

	approval := HistoryApproval{Approver: "M200-a-longer-approver-id", ApprovedAt: at.Add(time.Hour)}
	l.approve(rows[0].EventID, approval)
	rows[0].Approval = &approval
	l.approve(uuid.New(), approval) // not in the log: nothing changes
	check("approved", l, rows)

	again := &historyLog{vendor: l.vendor, serial: l.serial, data: l.data}
	if err := again.index(); err != nil || !reflect.DeepEqual(again.refs, l.refs) {
		t.Fatalf("index: %v\n got %+v\nwant %+v", err, again.refs, l.refs)
	}
	for name, data := range map[string][]byte{
		"cut short":        l.data[:len(l.data)-3],
		"a length only":    l.data[:2],
		"a length too big": append(append([]byte{}, l.data...), 0xff, 0xff, 0, 0, 1),
	} {
		bad := &historyLog{vendor: l.vendor, serial: l.serial, data: data}
		if err := bad.index(); err == nil {
			t.Errorf("%s: indexed", name)
		}
	}
	if _, err := decodeHistory(l.body(l.refs[1].off)[:20]); err == nil {
		t.Error("a row cut short decoded")
	}
}
