package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/aggregates/ledger"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/access"
	"github.com/otpledger/otpledger/projections"
)

// apiError is the error shape of api.md.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Rule    string `json:"rule,omitempty"`
	// MessageKo is the rule's meaning in Korean, from the one catalogue the
	// console shows too (aggregates.RuleID.Text); set with Rule.
	MessageKo string `json:"message_ko,omitempty"`
	Field     string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalid(field, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_argument", Field: field, Message: message}
}

func notFound(message string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: message}
}

// errNotFoundPath answers unknown paths in the API's shape.
var errNotFoundPath = notFound("no such path")

// toAPI maps any error of the ledger, the views or the request to the api.md
// shape. It is the one place that decides statuses; messages carry codes and
// counts, never personal data (the errors it maps are built that way).
func toAPI(err error) *apiError {
	var ae *apiError
	var fe *events.FieldError
	var re *aggregates.RuleError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &re):
		return &apiError{Status: http.StatusConflict, Code: "rule_violation", Rule: string(re.Rule), Message: re.Message, MessageKo: re.Rule.Text().Ko}
	case errors.As(err, &fe):
		return invalid(requestField(fe.Field), fe.Reason)
	case errors.Is(err, aggregates.ErrNoMobileOTP):
		return notFound("customer has no active mobile OTP")
	case errors.Is(err, ledger.ErrIdempotencyMismatch):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "idempotency_mismatch", Field: "Idempotency-Key", Message: "the key was used for a different command"}
	case errors.Is(err, ledger.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the aggregate kept changing; try again"}
	case errors.Is(err, pii.ErrRealNameFormat):
		return invalid("real_name_number", pii.ErrRealNameFormat.Error())
	case errors.Is(err, pii.ErrPhoneFormat):
		return invalid("phone_id", pii.ErrPhoneFormat.Error())
	case errors.Is(err, access.ErrKeyExists):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Field: "id", Message: access.ErrKeyExists.Error()}
	case errors.Is(err, access.ErrCertBound):
		return &apiError{Status: http.StatusConflict, Code: "conflict", Field: "cert_subject", Message: err.Error()}
	case errors.As(err, new(*access.LookupLimited)):
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many personal-data look-ups by this principal; try again later"}
	case errors.Is(err, access.ErrNoKey):
		return notFound(access.ErrNoKey.Error())
	case errors.Is(err, projections.ErrBadCursor):
		return invalid("cursor", "not a cursor this API returned")
	case errors.Is(err, journal.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "journal or store unavailable; nothing was appended"}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

// requestField names a decider's field as the request names it.
func requestField(f string) string {
	f = strings.TrimPrefix(f, "payload.")
	switch f {
	case "id":
		return "Idempotency-Key"
	}
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPI(err)
	var limited *access.LookupLimited
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limited.RetryAfter.Seconds()))))
	}
	if ae.Rule != "" {
		s.refusals.WithLabelValues(ae.Rule).Inc()
	}
	if ae.Status >= 500 {
		// Internal detail goes to the log; errors here carry no personal data.
		s.cfg.Logger.ErrorContext(r.Context(), "request failed", slog.String("route", r.Pattern), slog.String("error", err.Error()))
	}
	writeJSON(w, ae.Status, map[string]*apiError{"error": ae})
}
