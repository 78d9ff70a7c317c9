package events

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHasDuplicateKeyAgreesWithTheTokenizer: the one-pass scanner finds a
// duplicate key exactly when the tokenizer's walk does, on 20,000 generated
// documents (nested objects and arrays, keys from a small set so that
// duplicates are common, escaped spellings of the same key, strings holding
// braces, quotes and commas), on every prefix of some of them, and on the
// commits of the codec's own tests.
func TestHasDuplicateKeyAgreesWithTheTokenizer(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	keys := []string{`"a"`, `"b"`, `"\u0061"`, `"a\"b"`, `"{,}"`, `"c"`, `"A"`, `"\u0041"`}
	values := []string{`1`, `"x"`, `"a\"}{,"`, `true`, `null`, `"\\"`, `[]`, `{}`}
	var value func(depth int) string
	value = func(depth int) string {
		switch n := r.IntN(4); {
		case depth > 3 || n == 0:
			return values[r.IntN(len(values))]
		case n == 1:
			items := make([]string, r.IntN(4))
			for i := range items {
				items[i] = value(depth + 1)
			}
			return "[" + strings.Join(items, ",") + "]"
		default:
			fields := make([]string, r.IntN(4))
			for i := range fields {
				fields[i] = keys[r.IntN(len(keys))] + ":" + value(depth+1)
			}
			return "{" + strings.Join(fields, ",") + "}"
		}
	}
	slow := func(data []byte) bool {
		_, ok, _ := dupIn(json.NewDecoder(bytes.NewReader(data)), "")
		return ok
	}
	dups := 0
	for i := range 20_000 {
		doc := []byte(value(0))
		if !json.Valid(doc) {
			t.Fatalf("generated invalid JSON: %s", doc)
		}
		want := slow(doc)
		if got := hasDuplicateKey(doc); got != want {
			t.Fatalf("%s: scanner %v, tokenizer %v", doc, got, want)
		}
		if want {
			dups++
		}
		if i%100 == 0 { // malformed: every prefix; the scanner may only miss what the tokenizer misses
			for n := range len(doc) {
				if hasDuplicateKey(doc[:n]) && !slow(doc[:n]) {
					t.Fatalf("prefix %q: scanner finds a duplicate the tokenizer does not", doc[:n])
				}
			}
		}
	}
	if dups < 1000 {
		t.Fatalf("only %d of 20,000 documents had a duplicate key", dups)
	}
}

// TestDuplicateKeysDifferingInCase: encoding/json fills a field from a key
// that equals its name but for case, the last one winning, so keys that
// differ only in case (ASCII, or Unicode's simple folding: the Kelvin sign
// is "k", "ſ" is "s") are one key twice — a body saying "type" for whoever
// reads it and "TYPE" for the decoder is refused, in small objects and past
// the set's threshold.
func TestDuplicateKeysDifferingInCase(t *testing.T) {
	var many strings.Builder
	for i := range smallObject + 4 {
		many.WriteString(`"k` + strings.Repeat("x", i) + `":0,`)
	}
	for _, doc := range []string{
		`{"type":"CORPORATE","TYPE":"INDIVIDUAL"}`,
		`{"channel":"CORE","Channel":"AUTH"}`,
		`{"kind":1,"\u212Aind":2}`,
		`{"status":1,"\u017Ftatus":2}`,
		`{` + many.String() + `"type":1,"tYpE":2}`,
		`{"a":{` + many.String() + `"K":1,"k":2}}`,
	} {
		if !hasDuplicateKey([]byte(doc)) {
			t.Errorf("%.60s…: no duplicate found", doc)
		}
		var v map[string]any
		if err := strictUnmarshal([]byte(doc), &v, ""); err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%.60s…: strict decoding: %v, want a duplicate key", doc, err)
		}
	}
	if hasDuplicateKey([]byte(`{"type":1,"types":2,"typ":3}`)) {
		t.Error("keys that differ by more than case taken for one")
	}
}
