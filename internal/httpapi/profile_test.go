package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestProfileRules: who may write a profile, and what a profile may change
// (R-PROFILE), one person per customer number (R-ONE-PERSON) and nationality
// (R-MOB-ELIGIBLE), through the API, per role and channel. Issue 25's
// attack — an AUTH or PHONE producer, or the centre, rewriting an
// individual into a corporation so that a teller's agent registration for
// it is accepted — is refused at every door, and the agent registration
// after each attempt is still refused R-AGENT. Nothing refused appends, and
// no answer echoes the real-name number.
func TestProfileRules(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	const other = "850505-5234567"
	profile := func(channel, typ, rest string) string {
		role := "SELF"
		if channel == "CORE" {
			role = "SYSTEM"
		}
		return `{"channel":"` + channel + `","actor":{"role":"` + role + `"},"type":"` + typ + `","real_name_number":"` + realName + `"` + rest + `}`
	}
	branchDocs := `,"staff":"S100","documents":["REAL_NAME_ID","PROCESSING_FORM"]`
	a.must(t, "PUT", "/v1/customers/C0002", profile("BRANCH", "INDIVIDUAL", `,"residency":"DOMESTIC"`+branchDocs))
	agentRegistration := `{"channel":"BRANCH","actor":{"role":"AGENT"},"staff":"S100","customer_no":"C0002","documents":["REAL_NAME_ID","BUSINESS_REGISTRATION","POWER_OF_ATTORNEY","PROCESSING_FORM","SEAL_OR_SIGNATURE"]}`
	corporate := `,"nationality":"KOREAN"`
	for _, tc := range []struct {
		name, principal, body string
		status                int
		rule                  string
	}{
		{"the authentication service on AUTH", "AUTH", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"},"type":"CORPORATE","nationality":"KOREAN","real_name_number":"` + realName + `"}`, 409, "R-PROFILE"},
		{"the call centre on PHONE", "FRONT", profile("PHONE", "CORPORATE", corporate), 409, "R-PROFILE"},
		{"a front end on MTS", "FRONT", profile("MTS", "CORPORATE", corporate), 409, "R-PROFILE"},
		{"the centre for the home institution", "CENTER", `{"channel":"CENTER","actor":{"role":"SYSTEM","id":"CENTER"},"type":"CORPORATE","nationality":"KOREAN","real_name_number":"` + realName + `"}`, 409, "R-PROFILE"},
		{"the centre for another institution", "CENTER", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"},"type":"CORPORATE","nationality":"KOREAN","real_name_number":"` + realName + `"}`, 409, "R-CHANNEL"},
		{"the authentication service changing only the nationality", "AUTH", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"},"type":"INDIVIDUAL","nationality":"FOREIGN","real_name_number":"` + realName + `"}`, 409, "R-PROFILE"},
		{"the call centre changing only the accounts", "FRONT", profile("PHONE", "INDIVIDUAL", `,"nationality":"KOREAN","accounts":["10987654321"]`), 409, "R-PROFILE"},
		{"the centre changing only the nationality", "CENTER", `{"channel":"CENTER","actor":{"role":"SYSTEM","id":"CENTER"},"type":"INDIVIDUAL","nationality":"FOREIGN","real_name_number":"` + realName + `"}`, 409, "R-PROFILE"},
		{"the customer master turning an individual into a corporation", "CORE", profile("CORE", "CORPORATE", corporate), 409, "R-PROFILE"},
		{"a teller turning an individual into a corporation", "S100", profile("BRANCH", "CORPORATE", corporate+branchDocs), 409, "R-PROFILE"},
		{"the customer master changing the real-name number", "CORE", strings.Replace(profile("CORE", "INDIVIDUAL", corporate), realName, other, 1), 409, "R-PROFILE"},
		{"the authentication service claiming CORE", "AUTH", profile("CORE", "CORPORATE", corporate), 403, ""},
		{"a teller claiming CORE", "S100", profile("CORE", "CORPORATE", corporate), 403, ""},
		{"a front end claiming CORE", "FRONT", profile("CORE", "CORPORATE", corporate), 403, ""},
		{"the customer master on BRANCH", "CORE", profile("BRANCH", "CORPORATE", corporate+branchDocs), 403, ""},
		{"a teller without the processing form", "S100", profile("BRANCH", "INDIVIDUAL", corporate+`,"staff":"S100","documents":["REAL_NAME_ID"]`), 409, "R-DOCS"},
		{"nationality and residency that disagree", "CORE", profile("CORE", "INDIVIDUAL", `,"nationality":"FOREIGN","residency":"DOMESTIC"`), 400, ""},
		{"another customer number with the same real-name number", "CORE", profile("CORE", "INDIVIDUAL", corporate), 409, "R-ONE-PERSON"},
	} {
		path := "/v1/customers/C0002"
		if tc.rule == "R-ONE-PERSON" {
			path = "/v1/customers/C0003"
		}
		before, _ := a.j.LastSequence(context.Background())
		status, out := a.do(t, "PUT", path, "application/json", tc.body, "Authorization", "Bearer "+a.tokens[tc.principal])
		var got struct{ Error apiError }
		_ = json.Unmarshal([]byte(out), &got)
		if status != tc.status || got.Error.Rule != tc.rule {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, out, tc.status, tc.rule)
		}
		if tc.rule == "R-ONE-PERSON" && !strings.Contains(got.Error.Message, "C0002") {
			t.Errorf("%s: the refusal does not name the customer number holding it: %s", tc.name, out)
		}
		if after, _ := a.j.LastSequence(context.Background()); after != before {
			t.Errorf("%s: appended %d messages", tc.name, after-before)
		}
		if strings.Contains(out, "1234567") || strings.Contains(out, "5234567") {
			t.Errorf("%s: echoes the real-name number: %s", tc.name, out)
		}
		status, out = a.do(t, "POST", "/v1/devices/OTP/000111222555/registrations", "application/json", agentRegistration)
		if status != 409 || !strings.Contains(out, `"R-AGENT"`) {
			t.Fatalf("after %s: an agent registration for the individual answered %d %s", tc.name, status, out)
		}
	}

	// What may change: nationality and accounts, from the customer master.
	a.must(t, "PUT", "/v1/customers/C0002", `{"channel":"CORE","actor":{"role":"SYSTEM"},"type":"INDIVIDUAL","nationality":"FOREIGN","real_name_number":"`+realName+`","accounts":["12345678901"]}`)
	status, out := a.do(t, "POST", "/v1/customers/C0002/mobile-otp", "application/json",
		`{`+mts+`,"phone_id":"`+phoneID+`","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`)
	if status != 409 || !strings.Contains(out, `"R-MOB-ELIGIBLE"`) || !strings.Contains(out, "내국인") {
		t.Fatalf("a foreign national's mobile OTP: %d %s", status, out)
	}
	a.must(t, "PUT", "/v1/customers/C0002", profile("BRANCH", "INDIVIDUAL", `,"nationality":"KOREAN","accounts":["12345678901"]`+branchDocs))
	a.must(t, "POST", "/v1/customers/C0002/mobile-otp", `{`+mts+`,"phone_id":"`+phoneID+`","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`)
	a.settle(t)
	status, out = a.do(t, "GET", "/v1/customers?account_no=12345678901", "", "")
	if status != 200 || !strings.Contains(out, `"nationality":"KOREAN"`) || strings.Contains(out, "residency") {
		t.Fatalf("the customer view: %d %s", status, out)
	}
}
