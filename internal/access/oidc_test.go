package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/otpledger/otpledger/events"
)

// issuer is an OpenID Connect issuer on loopback: discovery document and
// JWKS, and a signer of ID tokens.
type issuer struct {
	url    string
	key    *rsa.PrivateKey
	signer jose.Signer
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &issuer{key: key}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.url, "jwks_uri": iss.url + "/keys",
			"authorization_endpoint": iss.url + "/auth", "token_endpoint": iss.url + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	iss.signer = signerFor(t, key)
	return iss
}

func signerFor(t *testing.T, key *rsa.PrivateKey) jose.Signer {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token signs claims (standard ones from std, private ones from extra).
func token(t *testing.T, s jose.Signer, std jwt.Claims, extra map[string]any) string {
	t.Helper()
	raw, err := jwt.Signed(s).Claims(std).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestOIDCTokens: a token of the configured issuer authenticates with its
// sub and role claim; an expired, not-yet-valid, wrongly signed, foreign or
// wrongly addressed one, or one without a usable role, does not.
func TestOIDCTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	iss, other := newIssuer(t), newIssuer(t)
	o, err := NewOIDC(ctx, iss.url, "otpledger", "")
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{Keys: &Keys{byID: map[string]Key{}, byHash: map[string]string{}, bySubject: map[string]string{}, now: time.Now}, OIDC: o}
	now := time.Now()
	valid := jwt.Claims{Issuer: iss.url, Subject: "S100", Audience: jwt.Audience{"otpledger"}, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	with := func(f func(*jwt.Claims)) jwt.Claims { c := valid; f(&c); return c }
	teller := map[string]any{"otpledger_role": "teller"}
	authenticate := func(raw string) (Identity, error) {
		r := httptest.NewRequest("GET", "/v1/approvals/pending", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return a.Authenticate(r)
	}
	id, err := authenticate(token(t, iss.signer, valid, teller))
	if err != nil || id.ID != "S100" || id.Role != events.RoleTeller || id.Method != events.MethodOIDC {
		t.Fatalf("valid token: %+v %v", id, err)
	}
	id, err = authenticate(token(t, iss.signer, valid, map[string]any{"otpledger_role": "producer", ChannelsClaim: []string{"AUTH"}}))
	if err != nil || !id.MayUse(events.ChannelAuth) || id.MayUse(events.ChannelMTS) {
		t.Fatalf("producer token: %+v %v", id, err)
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, raw := range map[string]string{
		"expired":            token(t, iss.signer, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) }), teller),
		"not yet valid":      token(t, iss.signer, with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), teller),
		"wrongly signed":     token(t, signerFor(t, otherKey), valid, teller),
		"another issuer":     token(t, other.signer, with(func(c *jwt.Claims) { c.Issuer = other.url }), teller),
		"wrong audience":     token(t, iss.signer, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), teller),
		"no role":            token(t, iss.signer, valid, nil),
		"unknown role":       token(t, iss.signer, valid, map[string]any{"otpledger_role": "root"}),
		"producer, no scope": token(t, iss.signer, valid, map[string]any{"otpledger_role": "producer"}),
		"producer in branch": token(t, iss.signer, valid, map[string]any{"otpledger_role": "producer", ChannelsClaim: []string{"BRANCH"}}),
		"a name as sub":      token(t, iss.signer, with(func(c *jwt.Claims) { c.Subject = "홍길동" }), teller),
		"not a JWT":          "not.a.jwt",
	} {
		if id, err := authenticate(raw); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %+v %v", name, id, err)
		}
	}
}
