package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/projections"
)

// grant says who may call a route: nobody needs to authenticate (public), or
// one of roles. Commands then check the channel, the institution and who
// the body claims against the principal ([Server.bind]).
type grant struct {
	public bool
	roles  []events.PrincipalRole
}

var (
	teller, manager, producer = events.RoleTeller, events.RoleManager, events.RoleProducer
	auditor, operator, admin  = events.RoleAuditor, events.RoleOperator, events.RoleAdmin

	commands = grant{roles: []events.PrincipalRole{teller, manager, producer}}
	queries  = grant{roles: []events.PrincipalRole{teller, manager, auditor}}
	public   = grant{public: true}
)

// grants is api.md's "what each role may do", route by route: the one table
// that the guard enforces, the access test walks and the README renders.
var grants = map[string]grant{
	"PUT /v1/customers/{customer_no}":                                       commands,
	"POST /v1/devices/{vendor}/{serial}/registrations":                      commands,
	"POST /v1/devices/{vendor}/{serial}/registrations/{institution}/cancel": commands,
	"POST /v1/devices/{vendor}/{serial}/loss-reports":                       commands,
	"POST /v1/devices/{vendor}/{serial}/loss-reports/{institution}/recover": commands,
	"POST /v1/devices/{vendor}/{serial}/errors":                             commands,
	"POST /v1/devices/{vendor}/{serial}/errors/reset":                       commands,
	"POST /v1/customers/{customer_no}/mobile-otp":                           commands,
	"POST /v1/customers/{customer_no}/mobile-otp/revoke":                    commands,
	"POST /v1/customers/{customer_no}/mobile-otp/errors":                    commands,
	"POST /v1/customers/{customer_no}/mobile-otp/errors/reset":              commands,
	"POST /v1/events/{event_id}/approval":                                   {roles: []events.PrincipalRole{manager}},
	"GET /v1/customers/{customer_no}/devices":                               queries,
	"GET /v1/customers/{customer_no}/media":                                 queries,
	"GET /v1/customers/{customer_no}/mobile-otp":                            queries,
	"GET /v1/customers":                              queries, // personal-data look-ups: rate-limited
	"GET /v1/devices/{vendor}/{serial}":              queries,
	"GET /v1/devices/{vendor}/{serial}/institutions": queries,
	"GET /v1/devices/{vendor}/{serial}/history":      queries,
	"GET /v1/devices/{vendor}/{serial}/errors":       queries,
	"GET /v1/institutions/{code}/devices":            queries,
	"GET /v1/approvals/pending":                      {roles: []events.PrincipalRole{teller, manager, auditor, operator}},
	"GET /v1/audit":                                  {roles: []events.PrincipalRole{auditor, operator}},
	"POST /v1/audit/verifications":                   {roles: []events.PrincipalRole{auditor, operator}},
	"POST /v1/keys":                                  {roles: []events.PrincipalRole{admin}},
	"GET /v1/keys":                                   {roles: []events.PrincipalRole{admin}},
	"POST /v1/keys/{id}/revoke":                      {roles: []events.PrincipalRole{admin}},
	"GET /healthz":                                   public,
	"GET /readyz":                                    public,
	"GET /metrics":                                   {roles: []events.PrincipalRole{operator, auditor}},
}

// guarded registers every route behind its grant; a route without one is a
// programming error caught at start.
type guarded struct {
	router
	s *Server
}

func (g guarded) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	gr, ok := grants[pattern]
	if !ok {
		panic("httpapi: route " + pattern + " has no grant")
	}
	g.router.HandleFunc(pattern, g.s.guard(gr, h))
}

type identityKey struct{}

// identity returns the request's authenticated identity (zero on a public route).
func identity(r *http.Request) access.Identity {
	id, _ := r.Context().Value(identityKey{}).(access.Identity)
	return id
}

func unauthenticated(err error) *apiError {
	msg := strings.TrimPrefix(err.Error(), access.ErrUnauthenticated.Error()+": ")
	return &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: msg}
}

func forbidden(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf(format, args...)}
}

// guard authenticates the request and checks its role against the grant.
func (s *Server) guard(gr grant, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if gr.public {
			h(w, r)
			return
		}
		id, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="otpledger"`)
			s.fail(w, r, unauthenticated(err))
			return
		}
		if !slices.Contains(gr.roles, id.Role) {
			s.fail(w, r, forbidden("role %s may not %s %s (allowed: %s)", id.Role, r.Method, r.Pattern, roleList(gr.roles)))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	}
}

func roleList(roles []events.PrincipalRole) string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return strings.Join(out, ", ")
}

// bind makes a command act for the authenticated principal, never for what
// its body claims: a teller or manager acts in branch at home and is the
// event's staff; a producer acts on the channels of its scope, and on AUTH,
// CENTER and CORE (the customer master) is itself the (SYSTEM) actor. A body that contradicts the
// principal is refused (403). It runs before the body's fields are checked.
func (s *Server) bind(r *http.Request, c *common) (*events.Principal, error) {
	id := identity(r)
	ch := events.Channel(c.Channel)
	if !ch.Valid() {
		return nil, nil // the body's check names the field (400)
	}
	switch id.Role {
	case teller, manager:
		switch {
		case ch != events.ChannelBranch:
			return nil, forbidden("role %s acts on channel BRANCH only", id.Role)
		case c.Institution != "" && c.Institution != s.cfg.Home:
			return nil, forbidden("role %s acts for %s only", id.Role, s.cfg.Home)
		case c.Staff != "" && c.Staff != id.ID:
			return nil, forbidden("staff must be the authenticated principal")
		}
		c.Staff = id.ID
	case producer:
		switch {
		case !id.MayUse(ch):
			return nil, forbidden("channel %s is not in this producer's scope", strings.ToValidUTF8(c.Channel, "?"))
		case c.Staff != "":
			return nil, forbidden("staff belongs to branch actions, made by tellers")
		}
		if ch == events.ChannelAuth || ch == events.ChannelCenter || ch == events.ChannelCore {
			if c.Actor != nil && (c.Actor.Role != string(events.RoleSystem) || (c.Actor.ID != "" && c.Actor.ID != id.ID)) {
				return nil, forbidden("on channel %s the actor is the producer itself (SYSTEM %s)", ch, id.ID)
			}
			c.Actor = &actorBody{Role: string(events.RoleSystem), ID: id.ID}
		}
	default:
		return nil, forbidden("role %s appends nothing", id.Role)
	}
	p := id.Principal
	return &p, nil
}

// approver returns the manager approving: the principal, which a body
// naming someone else contradicts.
func approver(r *http.Request, named string) (string, *events.Principal, error) {
	id := identity(r)
	if named != "" && named != id.ID {
		return "", nil, forbidden("approver must be the authenticated principal")
	}
	p := id.Principal
	return id.ID, &p, nil
}

// keyBody is POST /v1/keys.
type keyBody struct {
	ID          string   `json:"id"`
	Role        string   `json:"role"`
	Channels    []string `json:"channels"`
	ExpiresAt   string   `json:"expires_at"`
	CertSubject string   `json:"cert_subject"`
	CertIssuer  string   `json:"cert_issuer"`
	CertSHA256  string   `json:"cert_sha256"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var b keyBody
	if err := readBody(w, r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	nk, err := b.newKey()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	token, k, err := s.cfg.Keys.Create(r.Context(), identity(r).Principal, nk)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		access.Key
		Token string `json:"token"`
	}{k, token})
}

func (s *Server) listKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, projections.List[access.Key]{Items: s.cfg.Keys.List()}) // never nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.cfg.Keys.Revoke(r.Context(), identity(r).Principal, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

func (b keyBody) newKey() (access.NewKey, error) {
	nk := access.NewKey{ID: b.ID, Role: events.PrincipalRole(b.Role),
		Cert: access.CertBinding{Subject: b.CertSubject, Issuer: b.CertIssuer, SHA256: b.CertSHA256}}
	if !nk.Role.Valid() {
		return nk, invalid("role", "must be teller, manager, producer, auditor, operator or admin")
	}
	for _, c := range b.Channels {
		nk.Channels = append(nk.Channels, events.Channel(c))
	}
	if b.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, b.ExpiresAt)
		if err != nil {
			return nk, invalid("expires_at", "must be an RFC 3339 timestamp")
		}
		nk.ExpiresAt = &t
	}
	// The key event's own checks name the field (channels of a producer only, no BRANCH).
	err := (events.KeyCreated{Role: nk.Role, Channels: nk.Channels, TokenHash: strings.Repeat("0", 64)}).Validate()
	var fe *events.FieldError
	if errors.As(err, &fe) {
		return nk, invalid(fe.Field, fe.Reason)
	}
	return nk, err
}
