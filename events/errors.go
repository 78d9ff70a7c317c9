package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// FieldError is returned by the decoders and by [Payload.Validate] when one
// field of an event is missing, has the wrong JSON type, is not allowed, or
// fails its pattern. Field is the JSON path ("events[1].payload.reason"); Reason
// says what is wrong without echoing the value, so that it can never leak
// personal data. Check it with errors.As.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "event: " + e.Reason
	}
	return fmt.Sprintf("event field %s: %s", e.Field, e.Reason)
}

// ErrUnknownType is wrapped by the decoders' [*FieldError] for the "type" field
// when an event type is not in the registry.
var ErrUnknownType = errors.New("unknown event type")

// fieldErr returns a *FieldError for field (relative to nothing).
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// prefixed returns err with its field path put under prefix. A non-FieldError
// is returned unchanged.
func prefixed(prefix string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: join(prefix, fe.Field), Reason: fe.Reason}
}

func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	}
	return prefix + "." + field
}

// jsonErr turns an encoding/json decoding error at path into a *FieldError.
func jsonErr(path string, err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		// encoding/json names the embedded struct in the path; the wire has no such level.
		field := strings.ReplaceAll(typeErr.Field, "envelopeWire.", "")
		return fieldErr(join(path, field), "must be a JSON %s", jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return fieldErr(path, "malformed JSON at offset %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), `json: unknown field "`):
		name := strings.TrimSuffix(strings.TrimPrefix(err.Error(), `json: unknown field "`), `"`)
		return fieldErr(join(path, name), "unknown field")
	}
	return fieldErr(path, "malformed JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}
