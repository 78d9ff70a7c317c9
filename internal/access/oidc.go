package access

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/otpledger/otpledger/events"
)

// ChannelsClaim is the claim that lists a producer's channels in an ID token.
const ChannelsClaim = "otpledger_channels"

// OIDC verifies ID tokens of one OpenID Connect issuer (go-oidc: the
// signature against the issuer's published keys, iss, aud, exp and nbf)
// and maps them to identities: the id from sub, the role from roleClaim,
// a producer's channels from [ChannelsClaim].
type OIDC struct {
	provider  *oidc.Provider
	verifier  *oidc.IDTokenVerifier
	keys      *issuerKeys
	audience  string
	roleClaim string
}

// NewOIDC discovers issuer (its /.well-known/openid-configuration) and
// returns a verifier of its tokens for audience.
func NewOIDC(ctx context.Context, issuer, audience, roleClaim string) (*OIDC, error) {
	if audience == "" {
		return nil, fmt.Errorf("oidc: an audience is required (OTPLEDGER_OIDC_AUDIENCE)")
	}
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discover %s: %w", issuer, err)
	}
	if roleClaim == "" {
		roleClaim = "otpledger_role"
	}
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, fmt.Errorf("oidc: %s publishes no jwks_uri", issuer)
	}
	keys := &issuerKeys{url: meta.JWKS, every: KeyRefetchEvery, now: time.Now, hc: &http.Client{Timeout: 10 * time.Second}}
	for _, a := range meta.Algs {
		if a != "none" {
			keys.algs = append(keys.algs, jose.SignatureAlgorithm(a))
		}
	}
	if len(keys.algs) == 0 {
		keys.algs = []jose.SignatureAlgorithm{jose.RS256}
	}
	// The issuer's keys through issuerKeys, whose refetches are bounded;
	// go-oidc still checks iss, aud, exp, nbf and the algorithm.
	cfg := &oidc.Config{ClientID: audience}
	for _, a := range keys.algs {
		cfg.SupportedSigningAlgs = append(cfg.SupportedSigningAlgs, string(a))
	}
	return &OIDC{provider: p, verifier: oidc.NewVerifier(issuer, keys, cfg), keys: keys, audience: audience, roleClaim: roleClaim}, nil
}

// Verify returns the identity of a valid token, or [ErrUnauthenticated]
// saying what is wrong (never the token).
func (o *OIDC) Verify(ctx context.Context, raw string) (Identity, error) {
	id, _, err := o.verify(ctx, raw)
	return id, err
}

// verify is [OIDC.Verify], also returning the verified token.
func (o *OIDC) verify(ctx context.Context, raw string) (Identity, *oidc.IDToken, error) {
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, nil, fmt.Errorf("%w: token not accepted (issuer, signature, audience or validity)", ErrUnauthenticated)
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, nil, fmt.Errorf("%w: unreadable claims", ErrUnauthenticated)
	}
	role, _ := claims[o.roleClaim].(string)
	id := Identity{Principal: events.Principal{ID: tok.Subject, Role: events.PrincipalRole(role), Method: events.MethodOIDC}}
	if list, ok := claims[ChannelsClaim].([]any); ok {
		for _, c := range list {
			s, _ := c.(string)
			id.Channels = append(id.Channels, events.Channel(s))
		}
	}
	if err := id.Principal.Validate(); err != nil {
		return Identity{}, nil, fmt.Errorf("%w: sub must match %s and %s name a role", ErrUnauthenticated, events.ActorIDCode.Pattern, o.roleClaim)
	}
	// The same rules as a key's: a producer has channels (never BRANCH), no one else has.
	if err := (events.KeyCreated{Role: id.Role, Channels: id.Channels, TokenHash: zeroHash}).Validate(); err != nil {
		return Identity{}, nil, fmt.Errorf("%w: claim %s does not fit role %s", ErrUnauthenticated, ChannelsClaim, id.Role)
	}
	return id, tok, nil
}

// CodeFlow is OpenID Connect's authorization-code flow, with PKCE (S256)
// and a nonce, by which people sign in to the console: the issuer
// authenticates them and the token endpoint answers an ID token, which is
// then verified as any bearer token is and used as one.
type CodeFlow struct {
	oidc  *OIDC
	oauth oauth2.Config
}

// CodeFlow returns the flow of the confidential client o's audience names,
// answering at redirectURL. The secret is sent to the token endpoint only.
func (o *OIDC) CodeFlow(clientSecret, redirectURL string) *CodeFlow {
	return &CodeFlow{oidc: o, oauth: oauth2.Config{ClientID: o.audience, ClientSecret: clientSecret, Endpoint: o.provider.Endpoint(),
		RedirectURL: redirectURL, Scopes: []string{oidc.ScopeOpenID, "profile"}}}
}

// AuthURL is the issuer's sign-in page for one attempt: state, nonce and
// verifier are that attempt's secrets, kept by the caller until [CodeFlow.Exchange].
func (f *CodeFlow) AuthURL(state, nonce, verifier string) string {
	return f.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
}

// Exchange redeems an authorization code at the token endpoint and returns
// the identity of the ID token it answers, the token itself and when it
// expires. The token must carry the attempt's nonce. Errors say what failed,
// never a secret or the issuer's answer.
func (f *CodeFlow) Exchange(ctx context.Context, code, nonce, verifier string) (Identity, string, time.Time, error) {
	tok, err := f.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, "", time.Time{}, fmt.Errorf("%w: the issuer did not redeem the authorization code", ErrUnauthenticated)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, "", time.Time{}, fmt.Errorf("%w: the issuer answered no ID token", ErrUnauthenticated)
	}
	id, idt, err := f.oidc.verify(ctx, raw)
	if err != nil {
		return Identity{}, "", time.Time{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, "", time.Time{}, fmt.Errorf("%w: the ID token is not this sign-in's (nonce)", ErrUnauthenticated)
	}
	return id, raw, idt.Expiry, nil
}

// zeroHash stands in for a token hash where only a key's other rules are checked.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
