package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeyRefetchEvery bounds how often the issuer's published keys are fetched
// again for a token naming a key id that is not among them.
const KeyRefetchEvery = time.Minute

// errUnknownKey: a token signed by no key the issuer published (as last
// fetched), while a refetch is not due.
var errUnknownKey = errors.New("oidc: token signed by a key the issuer has not published")

// issuerKeys verifies token signatures against an issuer's published keys
// (its jwks_uri). It fetches them on first use, and again for a token that
// names an unknown key id or that no key verifies — but at most once per
// every: a request carrying any bearer token is unauthenticated until
// verified, so without the bound every such request could make the ledger
// fetch the issuer's keys (go-oidc's RemoteKeySet refetches for each
// unknown key id). A rotated key is accepted once a refetch is due.
type issuerKeys struct {
	url   string
	algs  []jose.SignatureAlgorithm
	every time.Duration
	now   func() time.Time
	hc    *http.Client

	fetch   sync.Mutex // one fetch at a time
	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched time.Time // when the last fetch was tried; zero: never
	fetches int       // fetches tried, for tests
}

// VerifySignature implements go-oidc's KeySet.
func (s *issuerKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, s.algs)
	if err != nil {
		return nil, fmt.Errorf("oidc: malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("oidc: a token carries exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	s.mu.RLock()
	keys, fetched := s.keys, s.fetched
	s.mu.RUnlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if keys, err = s.refetch(ctx, fetched); err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errUnknownKey
}

// verifyWith returns the payload of jws verified by the signing key of
// keys that kid names (any signing key when kid is empty).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, k := range keys {
		if (kid != "" && k.KeyID != kid) || k.Use == "enc" {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refetch fetches the keys again unless a fetch was tried since seen (the
// fetched time the caller's keys came with) — then it returns those — or
// within every of the last one (errUnknownKey).
func (s *issuerKeys) refetch(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	s.fetch.Lock()
	defer s.fetch.Unlock()
	s.mu.RLock()
	keys, last := s.keys, s.fetched
	s.mu.RUnlock()
	switch {
	case last.After(seen):
		return keys, nil // fetched while this request waited
	case !last.IsZero() && s.now().Sub(last) < s.every:
		return nil, errUnknownKey
	}
	fresh, err := s.get(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched, s.fetches = s.now(), s.fetches+1
	if err != nil {
		return nil, err
	}
	s.keys = fresh
	return fresh, nil
}

// get fetches the issuer's key set.
func (s *issuerKeys) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("oidc: keys: %w", err)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidc: fetch the issuer's keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidc: the issuer's keys: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("oidc: the issuer's keys do not decode: %w", err)
	}
	return set.Keys, nil
}
