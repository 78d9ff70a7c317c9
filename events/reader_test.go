package events

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// encodedSamples returns what EncodeCommit writes for every sample, plus a
// commit of two events with a principal and an origin channel.
func encodedSamples(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, e := range samples() {
		data, err := EncodeCommit(Commit{Events: []Event{e}})
		if err != nil {
			t.Fatal(err)
		}
		out[string(e.Type())] = data
	}
	a, b := samples()[5], samples()[6]
	for _, e := range []*Event{&a, &b} {
		e.Channel, e.OriginChannel, e.Staff, e.Documents = ChannelCenter, OriginOnline, "", nil
		e.Principal = &Principal{ID: "feed", Role: RoleProducer, Method: MethodMTLS}
	}
	data, err := EncodeCommit(Commit{Events: []Event{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	out["two events"] = data
	return out
}

// TestOnePassReadsWhatTheLedgerWrites: everything EncodeCommit writes takes
// the one-pass path — also re-indented, and with its keys in another order —
// and decodes exactly as the strict decoder decodes it. (Were the reader to
// decline it, the journal would still decode, only eight times slower; this
// test is what notices.)
func TestOnePassReadsWhatTheLedgerWrites(t *testing.T) {
	t.Parallel()
	for name, data := range encodedSamples(t) {
		var generic map[string]any
		if err := json.Unmarshal(data, &generic); err != nil {
			t.Fatal(err)
		}
		sorted, _ := json.Marshal(generic) // encoding/json sorts map keys: payload before type
		var indented bytes.Buffer
		if err := json.Indent(&indented, data, "", "\t"); err != nil {
			t.Fatal(err)
		}
		for form, body := range map[string][]byte{"as written": data, "indented": indented.Bytes(), "keys sorted": sorted} {
			fast, ok := decodeCommitFast(body)
			if !ok {
				t.Errorf("%s, %s: the one-pass reader declines it", name, form)
				continue
			}
			slow, err := decodeCommitStepwise(body)
			if err != nil {
				t.Fatalf("%s, %s: %v", name, form, err)
			}
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Errorf("%s, %s (-strict +one-pass):\n%s", name, form, diff)
			}
		}
	}
}

// TestOnePassDeclines: a body outside the reader's subset is declined, and
// then decoded or refused by the strict decoder — the subset never widens
// what the journal accepts.
func TestOnePassDeclines(t *testing.T) {
	t.Parallel()
	data := string(encodedSamples(t)[string(TypeErrorIncremented)])
	edit := func(old, new string) string {
		if !strings.Contains(data, old) {
			t.Fatalf("sample lacks %q", old)
		}
		return strings.Replace(data, old, new, 1)
	}
	for name, tc := range map[string]struct {
		body     string
		accepted bool // by the strict decoder
	}{
		"an escaped string":         {edit(`"IBKS"`, `"\u0049BKS"`), true},
		"a case-folded key":         {edit(`"staff"`, `"Staff"`), true},
		"an optional field null":    {edit(`"staff":"S100"`, `"staff":null`), true},
		"a duplicate key":           {edit(`"staff":"S100"`, `"staff":"S100","staff":"S101"`), false},
		"an unknown field":          {edit(`"staff":"S100"`, `"staff":"S100","mood":"calm"`), false},
		"an unknown payload field":  {edit(`"locked":true`, `"locked":true,"extra":1`), false},
		"a payload key twice":       {edit(`"locked":true`, `"locked":true,"locked":false`), false},
		"a fraction":                {edit(`"count_after":10`, `"count_after":10.5`), false},
		"an exponent":               {edit(`"count_after":10`, `"count_after":1e1`), false},
		"a leading zero":            {edit(`"count_after":10`, `"count_after":010`), false},
		"a count too large":         {edit(`"count_after":10`, `"count_after":99999999999999999999`), false},
		"a string for a number":     {edit(`"count_after":10`, `"count_after":"10"`), false},
		"a number for a bool":       {edit(`"locked":true`, `"locked":1`), false},
		"trailing data":             {data + `{}`, false},
		"a truncated body":          {data[:len(data)-3], false},
		"an unterminated string":    {data[:strings.Index(data, `"IBKS`)+3], false},
		"no events":                 {`{"events":[]}`, false},
		"a future schema version":   {edit(`"schema_version":1`, `"schema_version":9`), false},
		"a control byte in a value": {edit(`"S100"`, "\"S1\x0100\""), false},
	} {
		if _, ok := decodeCommitFast([]byte(tc.body)); ok {
			t.Errorf("%s: the one-pass reader accepts it", name)
		}
		if _, err := DecodeCommit([]byte(tc.body)); (err == nil) != tc.accepted {
			t.Errorf("%s: DecodeCommit error %v, want accepted=%v", name, err, tc.accepted)
		}
	}
}

// TestOnePassUpcasts: a payload at an older schema version is left to the
// strict decoder's upcasters, inside the one pass.
func TestOnePassUpcasts(t *testing.T) {
	t.Parallel()
	v1, err := os.ReadFile("testdata/registered_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	decodeBothWays(t, v1)
}

// decodeBothWays decodes the commit of one event (its JSON) with the
// one-pass reader and the strict decoder, requires the same result, and
// returns it.
func decodeBothWays(t *testing.T, event []byte) Commit {
	t.Helper()
	body := []byte(`{"events":[` + string(event) + `]}`)
	fast, ok := decodeCommitFast(body)
	slow, err := decodeCommitStepwise(body)
	if !ok || err != nil {
		t.Fatalf("one-pass %v, strict %v", ok, err)
	}
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Errorf("(-strict +one-pass):\n%s", diff)
	}
	return fast
}

// BenchmarkDecodeCommit decodes an error increment, the journal's commonest
// message (go test ./events -bench DecodeCommit).
func BenchmarkDecodeCommit(b *testing.B) {
	data := encodedSamples(b)[string(TypeErrorIncremented)]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommit(data); err != nil {
			b.Fatal(err)
		}
	}
}
