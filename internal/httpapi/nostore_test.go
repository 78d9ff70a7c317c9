package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpledger/otpledger/events"
)

// TestV1AnswersAreNotStored: every /v1 route's answer — as a granted role,
// without credentials, and an unknown /v1 path — carries Cache-Control:
// no-store, POST /v1/keys (which answers a new token) first among them.
func TestV1AnswersAreNotStored(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	get := func(method, path, body, auth string) (int, string) {
		req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Cache-Control")
	}
	if status, cc := get("POST", "/v1/keys", `{"id":"NEW1","role":"teller"}`, a.tokens["ADM1"]); status != 201 || cc != "no-store" {
		t.Errorf("POST /v1/keys: %d, Cache-Control %q", status, cc)
	}
	checked := 1
	for _, pattern := range slices.Sorted(func(yield func(string) bool) {
		for p := range grants {
			if !yield(p) {
				return
			}
		}
	}) {
		if !strings.Contains(pattern, " /v1/") {
			continue
		}
		role := grants[pattern].roles[0]
		if role == events.RoleProducer || slices.Contains(grants[pattern].roles, events.RoleTeller) {
			role = events.RoleTeller
		}
		method, path, body := matrixRequest(pattern, role)
		for _, auth := range []string{a.tokens[roleKeys[role]], ""} {
			status, cc := get(method, path, body, auth)
			if cc != "no-store" {
				t.Errorf("%s (%d, authenticated %v): Cache-Control %q", pattern, status, auth != "", cc)
			}
			checked++
		}
	}
	if _, cc := get("GET", "/v1/nowhere", "", a.tokens["S100"]); cc != "no-store" {
		t.Errorf("an unknown /v1 path: Cache-Control %q", cc)
	}
	t.Logf("%d answers checked", checked+1)
}
