package events

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

// TestPayloadWritersMatchEncodingJSON: every hand-written payload writes
// what encoding/json writes — byte for byte, since event hashes are over
// these bytes — for the samples and for values at the edges of each field:
// zero values, empty and nil lists, text that JSON escapes.
func TestPayloadWritersMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	odd := "a<b>&\"\\\u2028é\x01"
	cases := []Payload{
		CustomerProfiled{}, CustomerProfiled{Accounts: []string{}}, CustomerProfiled{CustomerType: Corporate, Nationality: NonKorean, RealNameMasked: odd, Accounts: []string{odd, ""}},
		PersonClaimed{}, PersonClaimed{CustomerNo: odd},
		Registered{}, Registered{Vendor: odd, Serial: "S", CustomerNo: "C", WarrantyFrom: "2024-01-01", WarrantyTo: odd, ResponseCodeGiven: true},
		Cancelled{}, Cancelled{Vendor: "V", Serial: odd, CustomerNo: odd, Reason: CancelOther},
		ReportedLost{}, ReportedLost{Institutions: []string{}}, ReportedLost{Reason: LossDamaged, Institutions: []string{odd}, CustomerNo: "C"},
		Recovered{}, Recovered{InBranch: true, CustomerNo: odd},
		ErrorIncremented{}, ErrorIncremented{CountAfter: -7, Locked: true}, ErrorIncremented{CountAfter: 1 << 40},
		ErrorReset{}, ErrorReset{CountBefore: 10, CustomerNo: odd},
		MobileRevoked{}, MobileRevoked{GeneratorNo: odd, Reason: RevokeLocked},
		Approved{}, Approved{EventID: uuid.New(), Approver: odd},
	}
	for _, e := range samples() {
		cases = append(cases, e.Payload)
	}
	writers := map[Type]bool{}
	for _, p := range cases {
		w, ok := p.(payloadWriter)
		if !ok {
			continue
		}
		writers[p.EventType()] = true
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.appendJSON([]byte("x")); string(got) != "x"+string(want) {
			t.Errorf("%T %+v:\n got %s\nwant %s", p, p, got[1:], want)
		}
	}
	if len(writers) < 9 {
		t.Errorf("only %d payload types write their own JSON", len(writers))
	}
}

// BenchmarkEncodeCommit encodes an error increment, as every command does
// three times (go test ./events -bench EncodeCommit).
func BenchmarkEncodeCommit(b *testing.B) {
	c := Commit{Events: []Event{samples()[5]}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCommit(c); err != nil {
			b.Fatal(err)
		}
	}
}
