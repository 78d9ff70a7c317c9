package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestKeyRevocableAfterJunk: junk stored on an active key's subject by a
// writer holding the ledger's credential is a finding, not a lock: the
// revocation is accepted and the key's token is refused afterwards.
func TestKeyRevocableAfterJunk(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	journaltest.Inject(t, a.nc, "otpledger.key.S100", []byte(`{"events":[]}`))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, out := a.do(t, "GET", "/readyz", "", ""); strings.Contains(out, `"key_findings":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the junk message is not a key finding after 10 s")
		}
	}
	if status, out := a.do(t, "POST", "/v1/keys/S100/revoke", "application/json", `{}`, "Authorization", "Bearer "+a.tokens["ADM1"]); status != 200 {
		t.Fatalf("revoke after junk on the key's subject: %d %s", status, out)
	}
	if status, _ := a.do(t, "GET", "/v1/keys", "", "", "Authorization", "Bearer "+a.tokens["S100"]); status != 401 {
		t.Errorf("the revoked key's token: %d, want 401", status)
	}
}
