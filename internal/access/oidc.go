package access

import (
	"context"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/otpledger/otpledger/events"
)

// ChannelsClaim is the claim that lists a producer's channels in an ID token.
const ChannelsClaim = "otpledger_channels"

// OIDC verifies ID tokens of one OpenID Connect issuer (go-oidc: the
// signature against the issuer's published keys, iss, aud, exp and nbf)
// and maps them to identities: the id from sub, the role from roleClaim,
// a producer's channels from [ChannelsClaim].
type OIDC struct {
	verifier  *oidc.IDTokenVerifier
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
	return &OIDC{verifier: p.VerifierContext(context.WithoutCancel(ctx), &oidc.Config{ClientID: audience}), roleClaim: roleClaim}, nil
}

// Verify returns the identity of a valid token, or [ErrUnauthenticated]
// saying what is wrong (never the token).
func (o *OIDC) Verify(ctx context.Context, raw string) (Identity, error) {
	tok, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: token not accepted (issuer, signature, audience or validity)", ErrUnauthenticated)
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: unreadable claims", ErrUnauthenticated)
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
		return Identity{}, fmt.Errorf("%w: sub must match %s and %s name a role", ErrUnauthenticated, events.ActorIDCode.Pattern, o.roleClaim)
	}
	// The same rules as a key's: a producer has channels (never BRANCH), no one else has.
	if err := (events.KeyCreated{Role: id.Role, Channels: id.Channels, TokenHash: zeroHash}).Validate(); err != nil {
		return Identity{}, fmt.Errorf("%w: claim %s does not fit role %s", ErrUnauthenticated, ChannelsClaim, id.Role)
	}
	return id, nil
}

// zeroHash stands in for a token hash where only a key's other rules are checked.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
