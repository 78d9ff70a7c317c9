package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// manyKeys is a 64 KiB body of n distinct keys in one object, the last
// one repeated when dup: what a client may send the HTTP edge.
func manyKeys(n int, dup bool) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"k%05d":0,`, i)
	}
	last := n
	if dup {
		last = n - 1
	}
	fmt.Fprintf(&b, `"k%05d":0}`, last)
	return []byte(b.String())
}

// TestDuplicateKeyCheckIsLinear: 7,000 keys in one object are checked in
// under 50 ms (a set per object), where comparing each key with every
// earlier one took seconds per request at the HTTP edge; and 28,000 keys
// take at most 8 times what 7,000 do plus slack (quadratic would be 16).
// Past the set's threshold an escaped spelling of an earlier key is still
// the same key.
func TestDuplicateKeyCheckIsLinear(t *testing.T) {
	small, big := manyKeys(7000, false), manyKeys(28_000, true)
	if len(small) > 80<<10 {
		t.Fatalf("body of %d bytes", len(small))
	}
	took := func(data []byte, want bool) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			if got := hasDuplicateKey(data); got != want {
				t.Fatalf("%d bytes: duplicate %v, want %v", len(data), got, want)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	d7 := took(small, false)
	t.Logf("7000 keys (%d bytes) checked in %v", len(small), d7)
	if d7 > 50*time.Millisecond {
		t.Errorf("7000 keys checked in %v, want < 50 ms", d7)
	}
	d28 := took(big, true)
	t.Logf("28000 keys (%d bytes, last one repeated) checked in %v", len(big), d28)
	if d28 > 8*d7+200*time.Millisecond {
		t.Errorf("4× the keys took %v, 7000 took %v: not linear", d28, d7)
	}
	var v map[string]int
	start := time.Now()
	if err := UnmarshalStrict(small, &v); err != nil || len(v) != 7001 {
		t.Fatalf("UnmarshalStrict: %v, %d keys", err, len(v))
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("7000 keys decoded strictly in %v, want < 100 ms", d)
	} else {
		t.Logf("7000 keys decoded strictly in %v", d)
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"k%02d":0,`, i)
	}
	for _, tail := range []string{`"\u006b07":1}`, `"k07\"":1}`} {
		doc := []byte(b.String() + tail)
		if got, want := hasDuplicateKey(doc), strings.Contains(tail, "u006b"); got != want {
			t.Errorf("%s after 40 keys: duplicate %v, want %v", tail, got, want)
		}
	}
}

// TestDuplicateKeySetAgreesWithTheTokenizer: past smallObject keys, where
// the scanner keeps an object's keys in a set, it finds a duplicate
// exactly when the tokenizer does: 1,000 generated documents of objects of
// up to 40 distinct keys, in half of the documents some with one repeated (escaped spellings
// among them), nested.
func TestDuplicateKeySetAgreesWithTheTokenizer(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 7))
	for n := smallObject - 1; n <= 3*smallObject; n++ { // every key repeated last, past the set's threshold
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%02d":0,`, i)
		}
		for i := range n + 1 {
			doc := []byte(b.String() + fmt.Sprintf(`"k%02d":1}`, i))
			if got, want := hasDuplicateKey(doc), i < n; got != want {
				t.Fatalf("%d keys, then key %d again: duplicate %v, want %v", n, i, got, want)
			}
		}
	}
	dupDoc := false
	var value func(depth int) string
	value = func(depth int) string {
		if depth > 2 || r.IntN(3) == 0 {
			return "1"
		}
		ks := r.Perm(60)[:r.IntN(41)]
		if dupDoc && len(ks) > 1 && r.IntN(2) == 0 { // a duplicate, anywhere
			ks[r.IntN(len(ks))] = ks[r.IntN(len(ks))]
		}
		fields := make([]string, len(ks))
		for i, k := range ks {
			key := fmt.Sprintf(`"k%02d"`, k)
			if r.IntN(8) == 0 {
				key = fmt.Sprintf(`"\u006b%02d"`, k)
			}
			fields[i] = key + ":" + value(depth+1)
		}
		if r.IntN(4) == 0 {
			return "[" + strings.Join(fields[:0], ",") + "{" + strings.Join(fields, ",") + "}]"
		}
		return "{" + strings.Join(fields, ",") + "}"
	}
	dups, big, bigUnique := 0, 0, 0
	for range 1000 {
		dupDoc = r.IntN(2) == 0
		doc := []byte(value(0))
		_, want, _ := dupIn(json.NewDecoder(bytes.NewReader(doc)), "")
		if got := hasDuplicateKey(doc); got != want {
			t.Fatalf("%s: scanner %v, tokenizer %v", doc, got, want)
		}
		if want {
			dups++
		}
		if bytes.Count(doc, []byte(":")) > smallObject {
			big++
			if !want {
				bigUnique++
			}
		}
	}
	t.Logf("1000 documents, %d with more than %d keys (%d of them without a duplicate), %d with a duplicate", big, smallObject, bigUnique, dups)
	if dups < 100 || big < 100 || bigUnique < 100 {
		t.Fatalf("%d duplicates, %d large documents: the generator does not exercise the set", dups, big)
	}
}
