package access

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/otpledger/otpledger/events"
)

// ErrCertBound: an active key binds that certificate already (API: 409).
var ErrCertBound = errors.New("an active key binds that certificate already; revoke it first")

// CertBinding is what binds a client certificate to a key (api.md
// "Identity and access", TLS): the certificate's whole subject and its
// issuer, each as the base64 (standard, padded) of its DER, and optionally
// the hex SHA-256 of its public key (SubjectPublicKeyInfo). The bytes are
// compared, never a printed form: Go prints a subject of two CNs by its
// last one, so "/O=IBKS/CN=attacker/CN=center-feed" reads as
// "CN=center-feed,O=IBKS".
type CertBinding struct {
	Subject string // base64 of the subject's DER
	Issuer  string // base64 of the issuer's DER
	SHA256  string // hex SHA-256 of the public key; "": any key
}

// BindingOf returns the binding of cert, pinned to its key. A subject or
// issuer with a repeated attribute (two CNs) is refused: its printed form
// is ambiguous and no key may bind it.
func BindingOf(cert *x509.Certificate) (CertBinding, error) {
	if err := singleAttributes("subject", cert.RawSubject); err != nil {
		return CertBinding{}, err
	}
	if err := singleAttributes("issuer", cert.RawIssuer); err != nil {
		return CertBinding{}, err
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return CertBinding{Subject: base64.StdEncoding.EncodeToString(cert.RawSubject),
		Issuer: base64.StdEncoding.EncodeToString(cert.RawIssuer), SHA256: hex.EncodeToString(sum[:])}, nil
}

// singleAttributes checks that der is one distinguished name of at least
// one attribute, no attribute type twice, nothing after it; field names it
// in the error.
func singleAttributes(field string, der []byte) error {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdns)
	switch {
	case err != nil || len(rest) > 0:
		return &events.FieldError{Field: field, Reason: "must be the DER of a distinguished name"}
	case len(rdns) == 0:
		return &events.FieldError{Field: field, Reason: "must name at least one attribute"}
	}
	seen := map[string]bool{}
	for _, rdn := range rdns {
		for _, atv := range rdn {
			t := atv.Type.String()
			if seen[t] {
				return &events.FieldError{Field: field, Reason: "repeats attribute " + t + " (ambiguous: refused)"}
			}
			seen[t] = true
		}
	}
	return nil
}

// canonical checks a binding given at key creation and returns it in the
// one spelling certificates are matched against.
func (b CertBinding) canonical() (CertBinding, error) {
	if b == (CertBinding{}) {
		return b, nil
	}
	var out CertBinding
	for _, f := range []struct {
		name string
		in   string
		out  *string
	}{{"cert_subject", b.Subject, &out.Subject}, {"cert_issuer", b.Issuer, &out.Issuer}} {
		if f.in == "" {
			return CertBinding{}, &events.FieldError{Field: f.name, Reason: "required with a certificate binding (base64 of the DER)"}
		}
		der, err := base64.StdEncoding.DecodeString(f.in)
		if err != nil {
			return CertBinding{}, &events.FieldError{Field: f.name, Reason: "must be the base64 of the DER of a distinguished name"}
		}
		if err := singleAttributes(f.name, der); err != nil {
			return CertBinding{}, err
		}
		*f.out = base64.StdEncoding.EncodeToString(der)
	}
	if b.SHA256 != "" {
		sum, err := hex.DecodeString(b.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return CertBinding{}, &events.FieldError{Field: "cert_sha256", Reason: "must be the hex SHA-256 of the certificate's public key"}
		}
		out.SHA256 = hex.EncodeToString(sum)
	}
	return out, nil
}

// overlaps reports whether one certificate could match both b and o: the
// same subject and issuer, and pins that do not tell them apart.
func (b CertBinding) overlaps(o CertBinding) bool {
	return b.Subject != "" && b.Subject == o.Subject && b.Issuer == o.Issuer && (b.SHA256 == "" || o.SHA256 == "" || b.SHA256 == o.SHA256)
}

// binding is the certificate binding k records.
func (k Key) binding() CertBinding {
	return CertBinding{Subject: k.CertSubject, Issuer: k.CertIssuer, SHA256: k.CertSHA256}
}

// Certificate authenticates a verified client certificate by the one
// active key whose binding matches it: subject and issuer byte for byte,
// and the key's pin when it has one. A subject with a repeated attribute,
// no active key or two (created at the same moment on two servers) are
// [ErrUnauthenticated]; an expired key binds nothing, as a new key may
// bind its certificate.
func (k *Keys) Certificate(cert *x509.Certificate) (Key, error) {
	b, err := BindingOf(cert)
	if err != nil {
		return Key{}, fmt.Errorf("%w: client certificate refused: %v", ErrUnauthenticated, err)
	}
	now := k.now()
	var found []Key
	expired := ""
	k.mu.RLock()
	for _, key := range k.byID {
		kb := key.binding()
		if key.RevokedAt != nil || kb.Subject != b.Subject || kb.Issuer != b.Issuer || (kb.SHA256 != "" && kb.SHA256 != b.SHA256) {
			continue
		}
		if key.Active(now) {
			found = append(found, key)
		} else {
			expired = key.ID
		}
	}
	k.mu.RUnlock()
	switch {
	case len(found) == 0 && expired != "":
		return Key{}, fmt.Errorf("%w: key %s expired", ErrUnauthenticated, expired)
	case len(found) == 0:
		return Key{}, fmt.Errorf("%w: no key is bound to the certificate (subject, issuer and key)", ErrUnauthenticated)
	case len(found) > 1:
		return Key{}, fmt.Errorf("%w: %d keys bind the certificate; revoke all but one", ErrUnauthenticated, len(found))
	}
	return found[0], nil
}

// boundElsewhere reports the active key other than id whose binding
// overlaps b ("" when none).
func (k *Keys) boundElsewhere(id string, b CertBinding, now time.Time) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	for _, key := range k.byID {
		if key.ID != id && key.Active(now) && key.binding().overlaps(b) {
			return key.ID
		}
	}
	return ""
}
