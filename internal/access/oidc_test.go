package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access/oidctest"
)

// TestOIDCTokens: a token of the configured issuer authenticates with its
// sub and role claim; an expired, not-yet-valid, wrongly signed, foreign or
// wrongly addressed one, or one without a usable role, does not.
func TestOIDCTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, other := oidctest.New(t), oidctest.New(t)
	o, err := NewOIDC(ctx, iss.URL, oidctest.ClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Keys: &Keys{byID: map[string]Key{}, byHash: map[string]string{}, now: time.Now}, OIDC: o}
	now := time.Now()
	valid := jwt.Claims{Issuer: iss.URL, Subject: "S100", Audience: jwt.Audience{"otpledger"}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	with := func(f func(*jwt.Claims)) jwt.Claims { c := valid; f(&c); return c }
	teller := map[string]any{"otpledger_role": "teller"}
	authenticate := func(raw string) (Identity, error) {
		r := httptest.NewRequest("GET", "/v1/approvals/pending", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return a.Authenticate(r)
	}
	id, err := authenticate(oidctest.Token(t, iss.Signer, valid, teller))
	if err != nil || id.ID != "S100" || id.Role != events.RoleTeller || id.Method != events.MethodOIDC {
		t.Fatalf("valid token: %+v %v", id, err)
	}
	id, err = authenticate(oidctest.Token(t, iss.Signer, valid, map[string]any{"otpledger_role": "producer", ChannelsClaim: []string{"AUTH"}}))
	if err != nil || !id.MayUse(events.ChannelAuth) || id.MayUse(events.ChannelMTS) {
		t.Fatalf("producer token: %+v %v", id, err)
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, raw := range map[string]string{
		"expired":            oidctest.Token(t, iss.Signer, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }), teller),
		"not yet valid":      oidctest.Token(t, iss.Signer, with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), teller),
		"wrongly signed":     oidctest.Token(t, oidctest.SignerFor(t, otherKey), valid, teller),
		"another issuer":     oidctest.Token(t, other.Signer, with(func(c *jwt.Claims) { c.Issuer = other.URL }), teller),
		"wrong audience":     oidctest.Token(t, iss.Signer, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), teller),
		"no role":            oidctest.Token(t, iss.Signer, valid, nil),
		"unknown role":       oidctest.Token(t, iss.Signer, valid, map[string]any{"otpledger_role": "root"}),
		"producer, no scope": oidctest.Token(t, iss.Signer, valid, map[string]any{"otpledger_role": "producer"}),
		"producer in branch": oidctest.Token(t, iss.Signer, valid, map[string]any{"otpledger_role": "producer", ChannelsClaim: []string{"BRANCH"}}),
		"a name as sub":      oidctest.Token(t, iss.Signer, with(func(c *jwt.Claims) { c.Subject = "홍길동" }), teller),
		"not a JWT":          "not.a.jwt",
	} {
		if id, err := authenticate(raw); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %+v %v", name, id, err)
		}
	}
}

// TestCodeFlow: a user of the issuer's directory signs in with the
// authorization-code flow and comes back with an ID token naming them and
// their role; a code redeemed twice, with another PKCE verifier or whose
// token lacks the attempt's nonce is refused, and no error names a secret.
func TestCodeFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss := oidctest.New(t)
	iss.Directory["M200"] = "manager"
	o, err := NewOIDC(ctx, iss.URL, oidctest.ClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1:1/console/oidc/callback"
	flow := o.CodeFlow(oidctest.ClientSecret, redirect)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// signIn goes through the issuer's sign-in page as user and returns the code.
	signIn := func(nonce, verifier string) string {
		t.Helper()
		auth, _ := url.Parse(flow.AuthURL("state-1", nonce, verifier))
		q := auth.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("nonce") != nonce || q.Get("redirect_uri") != redirect {
			t.Fatalf("authorization request: %v", q)
		}
		q.Set("user", "M200")
		resp, err := noFollow.PostForm(iss.URL+"/auth", q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		back, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || back.Query().Get("state") != "state-1" || !strings.HasPrefix(back.String(), redirect) {
			t.Fatalf("the issuer's answer: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		return back.Query().Get("code")
	}
	verifier := oauth2.GenerateVerifier()
	code := signIn("nonce-1", verifier)
	id, raw, exp, err := flow.Exchange(ctx, code, "nonce-1", verifier)
	if err != nil || id.ID != "M200" || id.Role != events.RoleManager || id.Method != events.MethodOIDC || raw == "" || time.Until(exp) < 50*time.Minute {
		t.Fatalf("sign-in: %+v %v %v", id, exp, err)
	}
	if again, err := o.Verify(ctx, raw); err != nil || again.ID != "M200" {
		t.Errorf("the ID token as a bearer token: %+v %v", again, err)
	}
	for name, try := range map[string]func() error{
		"a code redeemed twice": func() error { _, _, _, err := flow.Exchange(ctx, code, "nonce-1", verifier); return err },
		"another verifier": func() error {
			c := signIn("nonce-2", verifier)
			_, _, _, err := flow.Exchange(ctx, c, "nonce-2", oauth2.GenerateVerifier())
			return err
		},
		"another nonce": func() error {
			c := signIn("nonce-3", verifier)
			_, _, _, err := flow.Exchange(ctx, c, "nonce-4", verifier)
			return err
		},
	} {
		err := try()
		if !errors.Is(err, ErrUnauthenticated) || strings.Contains(err.Error(), oidctest.ClientSecret) || strings.Contains(err.Error(), verifier) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestOIDCUnknownKeyIDFetchesRarely: tokens naming key ids the issuer
// never published are 401 at once without fetching the issuer's keys again
// (one fetch per KeyRefetchEvery at most, where go-oidc's key set fetched
// for each); once the interval has passed, one such token fetches once.
func TestOIDCUnknownKeyIDFetchesRarely(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss := oidctest.New(t)
	o, err := NewOIDC(ctx, iss.URL, oidctest.ClientID, "")
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	o.keys.now = func() time.Time { return time.Unix(0, clock.Load()) }
	a := &Authenticator{Keys: &Keys{byID: map[string]Key{}, byHash: map[string]string{}, now: time.Now}, OIDC: o}
	now := time.Now()
	valid := jwt.Claims{Issuer: iss.URL, Subject: "S100", Audience: jwt.Audience{"otpledger"}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	teller := map[string]any{"otpledger_role": "teller"}
	authenticate := func(raw string) error {
		r := httptest.NewRequest("GET", "/v1/approvals/pending", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		_, err := a.Authenticate(r)
		return err
	}
	if err := authenticate(oidctest.Token(t, iss.Signer, valid, teller)); err != nil {
		t.Fatalf("valid token: %v", err)
	}
	if n := iss.KeyFetches.Load(); n != 1 {
		t.Fatalf("%d key fetches for the first token, want 1", n)
	}
	rogue, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged := func(kid string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rogue}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		return oidctest.Token(t, s, valid, teller)
	}
	start := time.Now()
	for i := range 200 {
		if err := authenticate(forged(fmt.Sprintf("unknown-%d", i))); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("token of unknown key id %d: %v", i, err)
		}
	}
	t.Logf("200 tokens of unknown key ids: 401 in %v, %d key fetches in all", time.Since(start), iss.KeyFetches.Load())
	if n := iss.KeyFetches.Load(); n != 1 {
		t.Errorf("200 tokens of unknown key ids fetched the issuer's keys %d times, want none", n-1)
	}
	clock.Add(int64(KeyRefetchEvery))
	for i := range 3 {
		if err := authenticate(forged(fmt.Sprintf("later-%d", i))); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("token of an unknown key id: %v", err)
		}
	}
	if n := iss.KeyFetches.Load(); n != 2 {
		t.Errorf("after the interval, 3 tokens of unknown key ids: %d fetches in all, want 2", n)
	}
	if err := authenticate(oidctest.Token(t, iss.Signer, valid, teller)); err != nil {
		t.Errorf("valid token after: %v", err)
	}
}
