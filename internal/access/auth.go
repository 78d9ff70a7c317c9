package access

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/otpledger/otpledger/events"
)

// Identity is an authenticated caller: its principal and, for a producer,
// the channels it may use.
type Identity struct {
	events.Principal
	Channels []events.Channel
}

// MayUse reports whether a producer's scope holds ch.
func (id Identity) MayUse(ch events.Channel) bool { return slices.Contains(id.Channels, ch) }

func identityOf(k Key, m events.AuthMethod) Identity {
	return Identity{Principal: k.Principal(m), Channels: k.Channels}
}

// TokenVerifier verifies a bearer token that is not an API key (an OpenID
// Connect ID token).
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (Identity, error)
}

// Authenticator turns a request's credentials into an [Identity]: a bearer
// API key, a bearer token of the configured OpenID Connect issuer, or,
// without an Authorization header, a verified client certificate bound to
// a key ([Keys.Certificate]).
type Authenticator struct {
	Keys *Keys
	OIDC TokenVerifier // nil: no issuer configured
}

// Authenticate returns the request's identity or an error wrapping
// [ErrUnauthenticated] that says why (never the token).
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return Identity{}, fmt.Errorf("%w: Authorization must be Bearer <token>", ErrUnauthenticated)
		}
		if strings.HasPrefix(token, TokenPrefix) || a.OIDC == nil {
			k, err := a.Keys.Token(token)
			if err != nil {
				return Identity{}, err
			}
			return identityOf(k, events.MethodAPIKey), nil
		}
		return a.OIDC.Verify(r.Context(), token)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		k, err := a.Keys.Certificate(r.TLS.VerifiedChains[0][0])
		if err != nil {
			return Identity{}, err
		}
		return identityOf(k, events.MethodMTLS), nil
	}
	return Identity{}, fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
}
