package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestManyKeysBodyIsCheap: a command body of 64 KiB holding about 6,000 keys in
// one object is refused (400, unknown field) at most 20 times as slowly as a
// body of the same size with one long string (best of five each, measured in
// the same run; a ratio over it is measured again up to three times, as a
// preempted run does not repeat). Checking each key against every earlier one
// made the first cost about 150 times the second (a third of a second of CPU
// a request).
func TestManyKeysBodyIsCheap(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	var b strings.Builder
	b.WriteString(`{"channel":"BRANCH"`)
	n := 0
	for ; b.Len() < MaxBody-16; n++ {
		fmt.Fprintf(&b, `,"k%05d":0`, n)
	}
	b.WriteString("}")
	many := b.String()
	prefix := `{"channel":"BRANCH","k":"`
	one := prefix + strings.Repeat("x", len(many)-len(prefix)-2) + `"}`
	best := func(body string) time.Duration {
		d := time.Hour
		for range 5 {
			start := time.Now()
			status, out := a.do(t, "POST", "/v1/devices/OTP/000111222333/errors", "application/json", body)
			d = min(d, time.Since(start))
			if status != 400 || !strings.Contains(out, "invalid_argument") {
				t.Fatalf("a body of %d bytes: %d %s", len(body), status, out)
			}
		}
		return d
	}
	for try := 1; ; try++ {
		dMany, dOne := best(many), best(one)
		ratio := float64(dMany) / float64(dOne)
		t.Logf("a body of %d bytes, %d keys: refused in %v; one string of the same size: %v (%.1f×)", len(many), n+1, dMany, dOne, ratio)
		if ratio <= 20 {
			return
		}
		if try == 3 {
			t.Fatalf("a body of %d keys took %.0f× a body of one string, three times over", n+1, ratio)
		}
	}
}
