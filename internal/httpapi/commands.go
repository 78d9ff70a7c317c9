package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
)

// MaxBody is the largest request body accepted (api.md: 413 beyond).
const MaxBody = 64 << 10

type actorBody struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

// common holds the fields every command body has (api.md).
type common struct {
	Institution   string     `json:"institution"`
	Channel       string     `json:"channel"`
	Actor         *actorBody `json:"actor"`
	Documents     []string   `json:"documents"`
	OriginChannel string     `json:"origin_channel"`
	OccurredAt    string     `json:"occurred_at"`
	Staff         string     `json:"staff"`
	CorrelationID string     `json:"correlation_id"`
}

// readBody reads a JSON body of at most MaxBody bytes into v, strictly.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return invalid("Content-Type", "must be application/json")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "body over 64 KiB"}
	}
	if err != nil {
		return invalid("", "unreadable body")
	}
	if err := events.UnmarshalStrict(data, v); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return invalid(fe.Field, fe.Reason)
		}
		return invalid("", "malformed JSON")
	}
	return nil
}

// meta turns the common fields into the deciders' Meta, checking each.
func (s *Server) meta(r *http.Request, c common) (aggregates.Meta, error) {
	principal, err := s.bind(r, &c)
	if err != nil {
		return aggregates.Meta{}, err
	}
	m := aggregates.Meta{Principal: principal, Institution: c.Institution, Channel: events.Channel(c.Channel), OriginChannel: events.OriginChannel(c.OriginChannel),
		Staff: c.Staff, CorrelationID: c.CorrelationID}
	if m.Institution == "" {
		m.Institution = s.cfg.Home
	}
	switch {
	case !events.ValidInstitution(m.Institution):
		return m, events.InstitutionCode.Refusal("institution")
	case c.Channel == "":
		return m, invalid("channel", "required")
	case !m.Channel.Valid():
		return m, invalid("channel", "unknown channel")
	case c.Actor == nil:
		return m, invalid("actor", "required")
	case !events.Role(c.Actor.Role).Valid():
		return m, invalid("actor.role", "must be SELF, AGENT, REPRESENTATIVE, STAFF or SYSTEM")
	case c.Actor.ID != "" && !events.ValidActorID(c.Actor.ID):
		return m, events.ActorIDCode.Refusal("actor.id")
	case c.Staff != "" && !events.ValidActorID(c.Staff):
		return m, events.ActorIDCode.Refusal("staff")
	case len(c.CorrelationID) > 128:
		return m, invalid("correlation_id", "at most 128 characters")
	}
	m.Actor = events.Actor{Role: events.Role(c.Actor.Role), ID: c.Actor.ID}
	for _, d := range c.Documents {
		if !events.Document(d).Valid() {
			return m, invalid("documents", "unknown document")
		}
		m.Documents = append(m.Documents, events.Document(d))
	}
	if c.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, c.OccurredAt)
		if err != nil {
			return m, invalid("occurred_at", "must be an RFC 3339 timestamp")
		}
		m.OccurredAt = t
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 200 {
			return m, invalid("Idempotency-Key", "at most 200 characters")
		}
		// A key is the principal's: two principals never share an answer.
		// It names one command whichever route brings it; the ledger scopes
		// it to the aggregate and compares the decoded command, so a body
		// that differs only in layout is the same command, and another
		// command under the key (an increment's key sent with a reset) is
		// refused.
		var by string
		if principal != nil {
			by = principal.ID
		}
		h := sha256.New()
		for _, part := range []string{key, by} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		m.IdempotencyKey = "http-" + hex.EncodeToString(h.Sum(nil)[:20])
	}
	return m, nil
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, a ledger.Answer, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, a)
}

// decodeCommand reads a command body, turns its common fields into Meta and
// builds the command; on failure it has answered the request.
func decodeCommand[B, C any](s *Server, w http.ResponseWriter, r *http.Request, build func(*http.Request, B, aggregates.Meta) (C, error), common func(*B) *common) (C, bool) {
	var b B
	var zero C
	err := readBody(w, r, &b)
	if err == nil {
		var m aggregates.Meta
		if m, err = s.meta(r, *common(&b)); err == nil {
			var cmd C
			if cmd, err = build(r, b, m); err == nil {
				return cmd, true
			}
		}
	}
	s.fail(w, r, err)
	return zero, false
}

// deviceCommand decodes a device command's body and runs it.
func deviceCommand[B any](s *Server, build func(*http.Request, B, aggregates.Meta) (aggregates.DeviceCommand, error), common func(*B) *common) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		vendor, serial := r.PathValue("vendor"), r.PathValue("serial")
		if err := checkDevice(vendor, serial); err != nil {
			s.fail(w, r, err)
			return
		}
		if cmd, ok := decodeCommand(s, w, r, build, common); ok {
			a, err := s.cfg.Ledger.Device(r.Context(), vendor, serial, cmd)
			s.answer(w, r, a, err)
		}
	}
}

// customerCommand decodes a customer command's body and runs it.
func customerCommand[B any](s *Server, build func(*http.Request, B, aggregates.Meta) (aggregates.CustomerCommand, error), common func(*B) *common) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		no := r.PathValue("customer_no")
		if !events.ValidCustomerNo(no) {
			s.fail(w, r, events.CustomerNoCode.Refusal("customer_no"))
			return
		}
		if cmd, ok := decodeCommand(s, w, r, build, common); ok {
			a, err := s.cfg.Ledger.Customer(r.Context(), no, cmd)
			s.answer(w, r, a, err)
		}
	}
}

func checkDevice(vendor, serial string) error {
	if !events.ValidVendor(vendor) {
		return events.VendorCode.Refusal("vendor")
	}
	if !events.ValidSerial(serial) {
		return events.SerialCode.Refusal("serial")
	}
	return nil
}

// pathInstitution applies the {institution} of a cancel or recover path.
// A teller or manager acts for the home institution only, named in the
// path as in a body (403, as [Server.bind] answers a body).
func (s *Server) pathInstitution(r *http.Request, m aggregates.Meta) (aggregates.Meta, error) {
	inst := r.PathValue("institution")
	if !events.ValidInstitution(inst) {
		return m, events.InstitutionCode.Refusal("institution")
	}
	if role := identity(r).Role; (role == teller || role == manager) && inst != s.cfg.Home {
		return m, forbidden("role %s acts for %s only", role, s.cfg.Home)
	}
	m.Institution = inst
	return m, nil
}

type (
	registerBody struct {
		common
		CustomerNo   string `json:"customer_no"`
		ResponseCode string `json:"response_code"`
		WarrantyFrom string `json:"warranty_from"`
		WarrantyTo   string `json:"warranty_to"`
	}
	// attributedBody is a device command a customer may make: customer_no
	// names the customer (required when the device has no registration at
	// home, checked against it when it has).
	attributedBody struct {
		common
		CustomerNo string `json:"customer_no"`
	}
	reasonBody struct {
		attributedBody
		Reason string `json:"reason"`
	}
	revokeBody struct {
		common
		Reason          string `json:"reason"`
		GeneratorNumber string `json:"generator_number"`
	}
	plainBody   struct{ common }
	profileBody struct {
		common
		Type           string   `json:"type"`
		Nationality    string   `json:"nationality"`
		Residency      string   `json:"residency"` // read as its upcast (events.Residency.Nationality)
		RealNameNumber string   `json:"real_name_number"`
		Accounts       []string `json:"accounts"`
	}
	mobileBody struct {
		common
		PhoneID      string               `json:"phone_id"`
		Verification *events.Verification `json:"verification"`
	}
	approvalBody struct {
		Approver string `json:"approver"`
	}
)

func (b *registerBody) base() *common   { return &b.common }
func (b *attributedBody) base() *common { return &b.common }
func (b *reasonBody) base() *common     { return &b.common }
func (b *revokeBody) base() *common     { return &b.common }
func (b *plainBody) base() *common      { return &b.common }
func (b *profileBody) base() *common    { return &b.common }
func (b *mobileBody) base() *common     { return &b.common }

// The command handlers: each turns its body and path into the domain's
// command; deviceCommand and customerCommand decode, bind the principal and
// run it (the route table is in routes).

func (s *Server) register(_ *http.Request, b registerBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	if b.CustomerNo != "" && !events.ValidCustomerNo(b.CustomerNo) {
		return nil, events.CustomerNoCode.Refusal("customer_no")
	}
	return aggregates.Register{Meta: m, CustomerNo: b.CustomerNo, ResponseCodeGiven: b.ResponseCode != "",
		WarrantyFrom: b.WarrantyFrom, WarrantyTo: b.WarrantyTo}, nil
}

func (s *Server) cancel(r *http.Request, b reasonBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	m, err := s.pathInstitution(r, m)
	return aggregates.Cancel{Meta: m, Reason: events.CancelReason(b.Reason), CustomerNo: b.CustomerNo}, err
}

// reportLoss: the reason is optional (screen 2374 collects none) and
// recorded when given.
func (s *Server) reportLoss(_ *http.Request, b reasonBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	return aggregates.ReportLoss{Meta: m, Reason: events.LossReason(b.Reason), CustomerNo: b.CustomerNo}, nil
}

func (s *Server) recover(r *http.Request, b attributedBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	m, err := s.pathInstitution(r, m)
	return aggregates.Recover{Meta: m, CustomerNo: b.CustomerNo}, err
}

func (s *Server) incrementError(_ *http.Request, _ plainBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	return aggregates.IncrementError{Meta: m}, nil
}

func (s *Server) resetErrors(_ *http.Request, b attributedBody, m aggregates.Meta) (aggregates.DeviceCommand, error) {
	return aggregates.ResetErrors{Meta: m, CustomerNo: b.CustomerNo}, nil
}

func (s *Server) setProfile(_ *http.Request, b profileBody, m aggregates.Meta) (aggregates.CustomerCommand, error) {
	fp, masked, err := s.cfg.Fingerprinter.RealName(b.RealNameNumber)
	if err != nil {
		return nil, err
	}
	for _, a := range b.Accounts {
		if !events.ValidAccountNo(a) {
			return nil, invalid("accounts", "each must match "+events.AccountNoCode.Pattern)
		}
	}
	nationality := events.Nationality(b.Nationality)
	if b.Residency != "" {
		upcast := events.Residency(b.Residency).Nationality()
		switch {
		case upcast == "":
			return nil, invalid("residency", "must be DOMESTIC or FOREIGN (or give nationality)")
		case nationality != "" && nationality != upcast:
			return nil, invalid("residency", "contradicts nationality")
		}
		nationality = upcast
	}
	return aggregates.SetProfile{Meta: m, Type: events.CustomerType(b.Type), Nationality: nationality,
		RealNameFP: fp, RealNameMasked: masked, Accounts: b.Accounts}, nil
}

func (s *Server) issueMobile(_ *http.Request, b mobileBody, m aggregates.Meta) (aggregates.CustomerCommand, error) {
	fp, masked, err := s.cfg.Fingerprinter.Phone(b.PhoneID)
	if err != nil {
		return nil, err
	}
	cmd := aggregates.IssueMobile{Meta: m, GeneratorNo: generatorNo(m.IdempotencyKey), PhoneFP: fp, PhoneMasked: masked}
	if b.Verification != nil {
		cmd.Verification = *b.Verification
	}
	return cmd, nil
}

func (s *Server) revokeMobile(_ *http.Request, b revokeBody, m aggregates.Meta) (aggregates.CustomerCommand, error) {
	if b.GeneratorNumber != "" && !events.ValidGeneratorNo(b.GeneratorNumber) {
		return nil, events.GeneratorNoCode.Refusal("generator_number")
	}
	return aggregates.RevokeMobile{Meta: m, GeneratorNo: b.GeneratorNumber, Reason: events.RevokeReason(b.Reason)}, nil
}

func (s *Server) incrementMobileError(_ *http.Request, _ plainBody, m aggregates.Meta) (aggregates.CustomerCommand, error) {
	return aggregates.IncrementMobileError{Meta: m}, nil
}

func (s *Server) resetMobileErrors(_ *http.Request, _ plainBody, m aggregates.Meta) (aggregates.CustomerCommand, error) {
	return aggregates.ResetMobileErrors{Meta: m}, nil
}

// generatorNo numbers a new mobile OTP: derived from the idempotency key when
// there is one (a retry issues the same number), random otherwise.
func generatorNo(key string) string {
	src := uuid.New()
	if key != "" {
		src = uuid.NewSHA1(uuid.NameSpaceOID, []byte(key))
	}
	return "M" + hexUpper(src[:8])
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("event_id"))
	if err != nil {
		s.fail(w, r, invalid("event_id", "must be a UUID"))
		return
	}
	var b approvalBody
	if err := readBody(w, r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	who, principal, err := approver(r, b.Approver)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ref, ok, err := s.approvalTarget(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		s.fail(w, r, &aggregates.RuleError{Rule: aggregates.RuleApproval, Message: "event is not a branch event awaiting approval"})
		return
	}
	m := aggregates.Meta{Institution: s.cfg.Home, Channel: events.ChannelBranch, Actor: events.Actor{Role: events.RoleStaff, ID: who},
		Staff: who, Principal: principal, IdempotencyKey: "approval-" + id.String()}
	cmd := aggregates.Approve{Meta: m, Target: id, Approver: who}
	var answer ledger.Answer
	switch ref.Kind {
	case events.KindDevice:
		vendor, serial, _ := ref.DeviceKey()
		answer, err = s.cfg.Ledger.Device(r.Context(), vendor, serial, cmd)
	default:
		answer, err = s.cfg.Ledger.Customer(r.Context(), ref.Key, cmd)
	}
	s.answer(w, r, answer, err)
}

// approvalTarget returns the aggregate of event id, which then decides
// whether the event awaits approval (R-APPROVAL; it knows its pending
// branch events). The views index the events they have reached; one
// acknowledged since (a manager approving right after the teller) is looked
// up in the journal's messages after the views' position, so an approval
// never waits for the projector nor is refused for its lag.
func (s *Server) approvalTarget(ctx context.Context, id uuid.UUID) (events.AggregateRef, bool, error) {
	a, ok, seq, err := s.cfg.Views.PendingApproval(ctx, id)
	if err != nil || ok {
		return events.AggregateRef{Kind: events.AggregateKind(a.AggregateKind), Key: a.AggregateKey}, ok, err
	}
	return s.cfg.Ledger.FindEvent(ctx, id, seq)
}
