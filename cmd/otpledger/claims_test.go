package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimsAfterUpgrade: the journal the code of 495889f wrote (profiles
// without claims; internal/audit/testdata) is imported with 'otpledger
// import'; 'otpledger claims' claims each of its four customers' real-name
// numbers, a second run claims none, and the journal still verifies. The
// output holds no real-name fingerprint.
func TestClaimsAfterUpgrade(t *testing.T) {
	t.Parallel()
	_, srv := natsServer(t)
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	env := []string{"OTPLEDGER_NATS_URL=" + srv.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile, "OTPLEDGER_DATABASE_URL="}
	testdata := filepath.Join("..", "..", "internal", "audit", "testdata")
	if out, err := command(t, env, "import", "--in", filepath.Join(testdata, "journal-495889f.jsonl")); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	var states struct {
		Customers map[string]struct {
			Profile struct {
				FP string `json:"real_name_fp"`
			} `json:"profile"`
		} `json:"customers"`
	}
	raw, _ := os.ReadFile(filepath.Join(testdata, "journal-495889f.states.json"))
	if err := json.Unmarshal(raw, &states); err != nil || len(states.Customers) != 4 {
		t.Fatalf("states: %v", err)
	}
	for _, want := range []string{
		"4 profiled customers: 4 claimed now, 0 held their claim, 0 duplicates\n",
		"4 profiled customers: 0 claimed now, 4 held their claim, 0 duplicates\n",
	} {
		out, err := command(t, env, "claims")
		if err != nil || out != want {
			t.Fatalf("claims: %v\n%s\nwant %s", err, out, want)
		}
		for no, c := range states.Customers {
			if strings.Contains(out, c.Profile.FP[:16]) {
				t.Errorf("the output names %s's real-name fingerprint", no)
			}
		}
	}
	if out, err := command(t, env, "verify"); err != nil || !strings.Contains(out, " 0 findings") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	for no, c := range states.Customers {
		out, err := command(t, env, "history", "person", c.Profile.FP, "--format", "json")
		if err != nil || !strings.Contains(out, `"customer_no":"`+no+`"`) {
			t.Errorf("history person of %s: %v\n%s", no, err, out)
		}
	}
	out, err := command(t, env, "export", "--format", "jsonl")
	if err != nil || strings.Count(out, `"type":"person_claimed"`) != 4 {
		t.Errorf("export after claims: %v, %d claims", err, strings.Count(out, `"type":"person_claimed"`))
	}
}
