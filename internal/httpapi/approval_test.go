package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/otpledger/otpledger/projections"
)

// TestApprovalRightAfterTheCommand (R-APPROVAL): a manager approving within
// milliseconds of the teller's command is never refused for the views'
// lag, with the projector running (each approval sent as soon as the command
// answers) or not running at all: the ledger finds the event in the
// journal, and its aggregate knows it awaits approval. An event that does
// not await approval is still refused.
func TestApprovalRightAfterTheCommand(t *testing.T) {
	t.Parallel()
	for name, options := range map[string][]func(*Config){
		"projector running": nil,
		"projector paused":  {func(c *Config) { c.Views = projections.NewMemory() }}, // views that never move
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(t, options...)
			for i := range 40 {
				status, out := a.do(t, "POST", fmt.Sprintf("/v1/devices/OTP/SERIAL%06d/registrations", i), "application/json",
					fmt.Sprintf(`{%s,"customer_no":"C%04d"}`, branchSelf, i))
				var answer struct{ Events []struct{ ID string } }
				if status != 201 || json.Unmarshal([]byte(out), &answer) != nil || len(answer.Events) != 2 {
					t.Fatalf("registration %d: %d %s", i, status, out)
				}
				approval := "/v1/events/" + answer.Events[0].ID + "/approval"
				if status, out := a.do(t, "POST", approval, "application/json", `{}`); status != 201 || !strings.Contains(out, `"type":"approved"`) {
					t.Fatalf("approval %d right after the command: %d %s", i, status, out)
				}
				// The customer's copy of the registration is approved through the device's event.
				if status, out := a.do(t, "POST", "/v1/events/"+answer.Events[1].ID+"/approval", "application/json", `{}`); status != 409 || !strings.Contains(out, "R-APPROVAL") {
					t.Fatalf("approval %d of the customer's copy: %d %s", i, status, out)
				}
			}
		})
	}
}
