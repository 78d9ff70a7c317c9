package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
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

// jsonErr turns an encoding/json decoding error at path, decoding into a
// value of type target, into a *FieldError.
func jsonErr(path string, target reflect.Type, err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fieldErr(join(path, wirePath(target, typeErr.Field)), "must be a JSON %s", jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return fieldErr(path, "malformed JSON at offset %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), `json: unknown field "`):
		name := strings.TrimSuffix(strings.TrimPrefix(err.Error(), `json: unknown field "`), `"`)
		if !plausibleName(name) { // a value pasted as a key (a real-name number) is never echoed
			return fieldErr(path, "unknown field (its name is not shown: not a field name)")
		}
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

// wirePath drops from an encoding/json field path the names of embedded
// structs, which it includes although the JSON has no such level.
func wirePath(t reflect.Type, field string) string {
	var out []string
	for _, seg := range strings.Split(field, ".") {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			out = append(out, seg)
			continue
		}
		next, embedded := t, false
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous && f.Type.Name() == seg:
				next, embedded = f.Type, true
			case name == seg || (name == "" && f.Name == seg):
				next = f.Type
			}
		}
		if !embedded {
			out = append(out, seg)
		}
		t = next
	}
	return strings.Join(out, ".")
}

// plausibleName reports whether s looks like a field name (lower case
// letters, digits and underscores, starting with a letter, at most 40
// characters), and so may be named in an error.
func plausibleName(s string) bool {
	if s == "" || len(s) > 40 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// duplicateKey returns the path of the first object key that appears twice
// in one object of data ("" when none; a key that is no plausible field
// name is not named), and ok false when there is none or data is not JSON
// (the decoder reports that).
func duplicateKey(data []byte) (path string, ok bool) {
	if !hasDuplicateKey(data) {
		return "", false
	}
	// Rare: walk again with the tokenizer, which names the path.
	d := json.NewDecoder(bytes.NewReader(data))
	path, ok, _ = dupIn(d, "")
	return path, ok
}

// hasDuplicateKey reports whether some object of data holds a key twice,
// in one pass over the bytes without allocating for keys free of escapes:
// every journal message is checked on every read, and the tokenizer's walk
// cost three quarters of a fold. Malformed JSON reports false (the decoder
// names the problem). Keys are compared unescaped ("a" and "\u0061" are one
// key) and case-folded ("type" and "TYPE" are one key): encoding/json fills
// a field from any key that equals its name but for case, so two such keys
// would let the last one win unseen by anything reading the lower-case one.
func hasDuplicateKey(data []byte) bool {
	var levelBuf [16]int // per open container: start of its keys in keys, -1 for an array
	var keyBuf [64][]byte
	levels, keys := levelBuf[:0], keyBuf[:0]
	var sets []map[string]struct{} // per open container: its keys as a set, once it has more than smallObject
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			levels, expectKey = append(levels, len(keys)), true
			sets = openSet(sets, len(levels))
		case '[':
			levels, expectKey = append(levels, -1), false
			sets = openSet(sets, len(levels))
		case '}', ']':
			if len(levels) == 0 {
				return false
			}
			if start := levels[len(levels)-1]; start >= 0 {
				keys = keys[:start]
			}
			if len(sets) >= len(levels) {
				sets[len(levels)-1] = nil
			}
			levels, expectKey = levels[:len(levels)-1], false
		case ',':
			expectKey = len(levels) > 0 && levels[len(levels)-1] >= 0
		case '"':
			end, escaped := stringEnd(data, i)
			if end < 0 {
				return false
			}
			if expectKey {
				key := data[i+1 : end]
				if escaped {
					var s string
					if json.Unmarshal(data[i:end+1], &s) != nil {
						return false
					}
					key = []byte(s)
				}
				if seenKey(&sets, levels, keys, key) {
					return true
				}
				keys, expectKey = append(keys, key), false
			}
			i = end
		}
	}
	return false
}

// smallObject is the number of keys an object's new key is compared with
// one by one; beyond it the object's keys go into a set, so that a body of
// thousands of keys costs linear time, not quadratic.
const smallObject = 16

// openSet makes room for the set of the container just opened at depth n
// (sets stays nil until some object outgrows smallObject).
func openSet(sets []map[string]struct{}, n int) []map[string]struct{} {
	if sets == nil {
		return nil
	}
	for len(sets) < n {
		sets = append(sets, nil)
	}
	sets[n-1] = nil
	return sets
}

// seenKey reports whether key is among the keys of the innermost open
// object (keys[levels[top]:]), which it then holds in a set once they
// outnumber smallObject.
func seenKey(sets *[]map[string]struct{}, levels []int, keys [][]byte, key []byte) bool {
	top := len(levels) - 1
	own := keys[levels[top]:]
	if len(own) < smallObject {
		for _, k := range own {
			if bytes.EqualFold(k, key) {
				return true
			}
		}
		return false
	}
	for len(*sets) < len(levels) {
		*sets = append(*sets, nil)
	}
	set := (*sets)[top]
	if set == nil {
		set = make(map[string]struct{}, 2*len(own))
		for _, k := range own {
			set[foldKey(k)] = struct{}{}
		}
		(*sets)[top] = set
	}
	folded := foldKey(key)
	if _, ok := set[folded]; ok {
		return true
	}
	set[folded] = struct{}{}
	return false
}

// foldKey is key case-folded, so that two keys equal under
// [bytes.EqualFold] fold alike (Unicode's simple folding: "K" and the
// Kelvin sign, "s" and "ſ").
func foldKey(key []byte) string {
	for _, c := range key {
		if c >= 0x80 {
			return strings.ToLower(strings.ToUpper(string(key)))
		}
	}
	return string(bytes.ToLower(key))
}

// stringEnd returns the index of the quote that closes the JSON string
// opening at data[start], and whether it holds escapes; -1 when unclosed.
func stringEnd(data []byte, start int) (end int, escaped bool) {
	for j := start + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return -1, escaped
}

// dupIn reads one JSON value from d; err is a token error (malformed JSON).
func dupIn(d *json.Decoder, at string) (path string, ok bool, err error) {
	tok, err := d.Token()
	if err != nil {
		return "", false, err
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return "", false, err
			}
			key, _ := k.(string)
			if keys[foldKey([]byte(key))] {
				if !plausibleName(key) {
					return at, true, nil
				}
				return join(at, key), true, nil
			}
			keys[foldKey([]byte(key))] = true
			if path, ok, err := dupIn(d, join(at, key)); ok || err != nil {
				return path, ok, err
			}
		}
	case json.Delim('['):
		for i := 0; d.More(); i++ {
			if path, ok, err := dupIn(d, at+"["+strconv.Itoa(i)+"]"); ok || err != nil {
				return path, ok, err
			}
		}
	default:
		return "", false, nil
	}
	_, err = d.Token() // the closing delimiter
	return "", false, err
}
