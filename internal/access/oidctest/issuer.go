// Package oidctest is an OpenID Connect issuer on loopback for tests: the
// discovery document, the signing keys, an authorization endpoint with a
// sign-in form (its directory maps a user to a role) and a token endpoint
// that checks the client's secret, the redirect and PKCE before it answers
// an ID token with the sign-in's nonce.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Client is the one confidential client the issuer knows.
const (
	ClientID     = "otpledger"
	ClientSecret = "console-secret-for-tests"
)

// Issuer is a running test issuer.
type Issuer struct {
	URL    string
	Key    *rsa.PrivateKey
	Signer jose.Signer
	// Directory maps the users who may sign in to their role claim.
	Directory map[string]string
	// KeyFetches counts the requests for the issuer's keys (jwks_uri).
	KeyFetches atomic.Int64

	mu    sync.Mutex
	codes map[string]grant // authorization code → what it was issued for
}

type grant struct {
	user, nonce, challenge, redirect string
}

// New starts an issuer for the test's lifetime.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Key: key, Signer: SignerFor(t, key), Directory: map[string]string{}, codes: map[string]grant{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/keys",
			"authorization_endpoint": iss.URL + "/auth", "token_endpoint": iss.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		iss.KeyFetches.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /auth", iss.signInForm)
	mux.HandleFunc("POST /auth", func(w http.ResponseWriter, r *http.Request) { iss.authorize(t, w, r) })
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) { iss.token(t, w, r) })
	return iss
}

// SignerFor signs with key as the issuer does (RS256, key id k1).
func SignerFor(t testing.TB, key *rsa.PrivateKey) jose.Signer {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Token signs claims (standard ones from std, private ones from extra).
func Token(t testing.TB, s jose.Signer, std jwt.Claims, extra map[string]any) string {
	t.Helper()
	raw, err := jwt.Signed(s).Claims(std).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var form = template.Must(template.New("").Parse(`<!doctype html><html lang="en"><title>Test issuer</title>
<form method="post" action="/auth">{{range $k, $v := .}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<label for="user">User</label><input id="user" name="user"><button type="submit" id="issuer-signin">Sign in</button></form>`))

// signInForm is the issuer's sign-in page, carrying the client's request.
func (iss *Issuer) signInForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = form.Execute(w, q)
}

// authorize signs a user of the directory in and sends the browser back
// to the client with a code (an unknown user gets the page again).
func (iss *Issuer) authorize(t testing.TB, w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	user := r.PostForm.Get("user")
	if _, ok := iss.Directory[user]; !ok {
		http.Error(w, "unknown user", http.StatusForbidden)
		return
	}
	code := random()
	iss.mu.Lock()
	iss.codes[code] = grant{user: user, nonce: r.PostForm.Get("nonce"), challenge: r.PostForm.Get("code_challenge"), redirect: r.PostForm.Get("redirect_uri")}
	iss.mu.Unlock()
	back, err := url.Parse(r.PostForm.Get("redirect_uri"))
	if err != nil {
		t.Errorf("oidctest: redirect_uri: %v", err)
		return
	}
	back.RawQuery = url.Values{"code": {code}, "state": {r.PostForm.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token redeems a code once, for the client with its secret, the same
// redirect and the verifier of the code's challenge.
func (iss *Issuer) token(t testing.TB, w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	code := r.PostForm.Get("code")
	iss.mu.Lock()
	g, known := iss.codes[code]
	delete(iss.codes, code)
	iss.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if id != ClientID || secret != ClientSecret || !known || r.PostForm.Get("grant_type") != "authorization_code" ||
		r.PostForm.Get("redirect_uri") != g.redirect || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	now := time.Now()
	idToken := Token(t, iss.Signer, jwt.Claims{Issuer: iss.URL, Subject: g.user, Audience: jwt.Audience{ClientID},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
		map[string]any{"otpledger_role": iss.Directory[g.user], "nonce": g.nonce})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": random(), "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
