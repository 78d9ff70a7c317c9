package events

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeCommit feeds arbitrary bytes to the journal decoder: it must never
// panic, and whatever it accepts must re-encode and decode to the same commit.
func FuzzDecodeCommit(f *testing.F) {
	for _, e := range samples() {
		data, err := EncodeCommit(Commit{Events: []Event{e}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if v1, err := os.ReadFile("testdata/registered_v1.json"); err == nil {
		f.Add([]byte(`{"events":[` + string(v1) + `]}`))
	}
	if v1, err := os.ReadFile("testdata/customer_profiled_v1.jsonl"); err == nil { // chained: they keep their stored bytes
		for line := range strings.Lines(string(v1)) {
			f.Add([]byte(`{"events":[` + strings.TrimSpace(line) + `]}`))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The one-pass reader may decline what the strict decoder accepts
		// (it then decodes it), never accept what it refuses or decode it
		// differently.
		fast, fastOK := decodeCommitFast(data)
		slow, slowErr := decodeCommitStepwise(data)
		if fastOK && slowErr != nil {
			t.Fatalf("the one-pass reader accepts what the strict decoder refuses: %v", slowErr)
		}
		if fastOK && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("one-pass and stepwise decoders differ:\n%s\n%s", mustJSON(fast), mustJSON(slow))
		}
		c, err := DecodeCommit(data)
		if err != nil {
			return
		}
		again, err := EncodeCommit(c)
		if err != nil {
			t.Fatalf("accepted commit does not re-encode: %v", err)
		}
		c2, err := DecodeCommit(again)
		if err != nil {
			t.Fatalf("re-encoded commit does not decode: %v", err)
		}
		a, _ := json.Marshal(c)
		b, _ := json.Marshal(c2)
		if string(a) != string(b) {
			t.Fatalf("unstable round trip:\n%s\n%s", a, b)
		}
	})
}

func mustJSON(c Commit) string {
	b, _ := json.Marshal(c)
	return string(b)
}
