package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestKeyFindingsAreReported: a key's key_created stored again under a
// fresh key subject (any writer to the stream could) is no key, and is
// reported by /readyz and the metric otpledger_key_findings.
func TestKeyFindingsAreReported(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	if _, out := a.do(t, "GET", "/readyz", "", ""); !strings.Contains(out, `"keys":"ok"`) {
		t.Fatalf("readyz before: %s", out)
	}
	var created []byte
	for entry, err := range a.j.Read(context.Background(), events.KeyRef("S100"), 0) {
		if err != nil {
			t.Fatal(err)
		}
		created, _ = events.EncodeCommit(entry.Commit)
		break
	}
	journaltest.Inject(t, a.nc, "otpledger.key.revived", created)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, out := a.do(t, "GET", "/readyz", "", "")
		if strings.Contains(out, `"key_findings":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after the forgery: %s", out)
		}
	}
	if _, ok := a.keys.Get("revived"); ok {
		t.Error("the forged message made a key")
	}
	if _, out := a.do(t, "GET", "/metrics", "", ""); !strings.Contains(out, "otpledger_key_findings 1") {
		t.Errorf("metrics after the forgery lack otpledger_key_findings 1")
	}
}
