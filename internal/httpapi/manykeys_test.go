package httpapi

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestManyKeysBodyIsCheap: a command body of 64 KiB holding about 6,000 keys in
// one object is refused (400, unknown field) in under 150 ms, the request
// included; checking each key against every earlier one cost about a third
// of a second of CPU per such request (on the test machine).
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
	best := time.Hour
	for range 3 {
		start := time.Now()
		status, out := a.do(t, "POST", "/v1/devices/OTP/000111222333/errors", "application/json", b.String())
		best = min(best, time.Since(start))
		if status != 400 || !strings.Contains(out, "invalid_argument") {
			t.Fatalf("a body of %d keys: %d %s", n, status, out)
		}
	}
	t.Logf("a body of %d bytes, %d keys: refused in %v", b.Len(), n+1, best)
	if best > 150*time.Millisecond {
		t.Errorf("a body of %d keys took %v, want < 150 ms", n+1, best)
	}
}
