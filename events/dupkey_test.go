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
	keys := []string{`"a"`, `"b"`, `"\u0061"`, `"a\"b"`, `"{,}"`, `"c"`}
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
