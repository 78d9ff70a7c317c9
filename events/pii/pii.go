// Package pii turns the two kinds of personal data the ledger receives —
// real-name numbers (실명확인번호) and phone identifiers — into what it may
// keep (domain.md §7): a keyed fingerprint (HMAC-SHA-256, hex) for look-ups and
// a masked form for display. The clear value never leaves this package's
// callers' stack: no event, projection, log line or error carries it.
//
// A [Fingerprinter] is safe for concurrent use.
package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// MinKeyLen is the shortest fingerprint key accepted, in bytes.
const MinKeyLen = 32

// ErrKeyTooShort is returned by [NewFingerprinter] for a key under [MinKeyLen] bytes.
var ErrKeyTooShort = errors.New("pii: fingerprint key shorter than 32 bytes")

// ErrRealNameFormat is returned for a real-name number that is neither a
// 13-digit resident number nor a 10-digit business registration number. The
// message never contains the value.
var ErrRealNameFormat = errors.New("real-name number must be 13 digits (resident) or 10 digits (business), dashes allowed")

// ErrPhoneFormat is returned for an empty or over-long phone identifier.
var ErrPhoneFormat = errors.New("phone id must be 8 to 64 letters, digits or dashes")

// Fingerprinter computes keyed fingerprints.
type Fingerprinter struct {
	key []byte
}

// NewFingerprinter returns a Fingerprinter under key (at least [MinKeyLen]
// bytes; the key is copied).
func NewFingerprinter(key []byte) (*Fingerprinter, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKeyTooShort
	}
	return &Fingerprinter{key: append([]byte(nil), key...)}, nil
}

func (f *Fingerprinter) sum(domain, value string) string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// RealName normalises a real-name number (dashes and spaces removed) and
// returns its fingerprint and masked form: "900101-1******" for a resident
// number, "123-45-*****" for a business registration number.
func (f *Fingerprinter) RealName(number string) (fingerprint, masked string, err error) {
	digits := strings.NewReplacer("-", "", " ", "").Replace(number)
	if !allDigits(digits) || (len(digits) != 13 && len(digits) != 10) {
		return "", "", ErrRealNameFormat
	}
	if len(digits) == 13 {
		masked = digits[:6] + "-" + digits[6:7] + "******"
	} else {
		masked = digits[:3] + "-" + digits[3:5] + "-*****"
	}
	return f.sum("real-name", digits), masked, nil
}

// Phone returns the fingerprint and masked form ("********5678", last four
// characters kept) of a phone identifier.
func (f *Fingerprinter) Phone(id string) (fingerprint, masked string, err error) {
	id = strings.TrimSpace(id)
	if len(id) < 8 || len(id) > 64 || strings.IndexFunc(id, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '-')
	}) >= 0 {
		return "", "", ErrPhoneFormat
	}
	masked = strings.Repeat("*", len(id)-4) + id[len(id)-4:]
	return f.sum("phone", id), masked, nil
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
