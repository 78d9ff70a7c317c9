package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

var oidCN, oidO = asn1.ObjectIdentifier{2, 5, 4, 3}, asn1.ObjectIdentifier{2, 5, 4, 10}

// testCA issues client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name pkix.Name) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

// issue returns a client certificate of subject, on a new key.
func (ca *testCA) issue(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertificateBinding: a client certificate authenticates as the one
// active key that binds its subject and issuer byte for byte (and its
// public key when pinned). Refused: a subject of two CNs that Go prints as
// the bound one ("/O=IBKS/CN=attacker/CN=center-feed" reads
// "CN=center-feed,O=IBKS"), the same subject from another issuer, a
// pinned key's renewed certificate with another key, and a certificate two
// keys bind; a second key cannot bind a certificate an active key binds,
// nor can any key bind a subject with a repeated attribute.
func TestCertificateBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys, err := OpenKeys(ctx, journaltest.Journal(t), "IBKS", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	admin := events.Principal{ID: "ADM1", Role: events.RoleAdmin, Method: events.MethodAPIKey}
	ca := newTestCA(t, pkix.Name{CommonName: "otpledger client CA", Organization: []string{"IBKS"}})
	other := newTestCA(t, pkix.Name{CommonName: "another CA", Organization: []string{"IBKS"}})
	feed := pkix.Name{Organization: []string{"IBKS"}, CommonName: "center-feed"}
	legit := ca.issue(t, feed)
	spoof := ca.issue(t, pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidO, Value: "IBKS"}, {Type: oidCN, Value: "attacker"}, {Type: oidCN, Value: "center-feed"}}})
	if spoof.Subject.String() != legit.Subject.String() {
		t.Fatalf("the spoof prints %q, the bound subject %q: the test no longer shows the printed form's ambiguity", spoof.Subject, legit.Subject)
	}
	foreign := other.issue(t, feed)
	renewed := ca.issue(t, feed) // same subject and issuer, a new key

	auth := &Authenticator{Keys: keys}
	as := func(cert *x509.Certificate) (string, error) {
		r := httptest.NewRequest("GET", "/v1/audit", nil)
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert, ca.cert}}}
		id, err := auth.Authenticate(r)
		return id.ID, err
	}
	bind := func(id string, cert *x509.Certificate, pin bool) error {
		b, err := BindingOf(cert)
		if err != nil {
			return err
		}
		if !pin {
			b.SHA256 = ""
		}
		_, _, err = keys.Create(ctx, admin, NewKey{ID: id, Role: events.RoleProducer, Channels: []events.Channel{events.ChannelCenter}, Cert: b})
		return err
	}
	if err := bind("FEED", legit, false); err != nil {
		t.Fatal(err)
	}
	if id, err := as(legit); err != nil || id != "FEED" {
		t.Fatalf("the bound certificate: %q %v", id, err)
	}
	if id, err := as(renewed); err != nil || id != "FEED" {
		t.Fatalf("an unpinned key's renewed certificate: %q %v", id, err)
	}
	for name, cert := range map[string]*x509.Certificate{"two CNs, printed as the bound subject": spoof, "same subject, another issuer": foreign} {
		if id, err := as(cert); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: authenticated as %q (%v)", name, id, err)
		}
	}

	// A subject with a repeated attribute is bound by no key.
	var fe *events.FieldError
	if _, err := BindingOf(spoof); !errors.As(err, &fe) || fe.Field != "subject" {
		t.Errorf("binding of a subject of two CNs: %v", err)
	}
	b, _ := BindingOf(legit)
	b.Subject = base64.StdEncoding.EncodeToString(spoof.RawSubject)
	if _, _, err := keys.Create(ctx, admin, NewKey{ID: "EVIL", Role: events.RoleAuditor, Cert: b}); !errors.As(err, &fe) || fe.Field != "cert_subject" {
		t.Errorf("a key binding a subject of two CNs: %v", err)
	}

	// No two active keys bind one certificate, pinned or not.
	for _, pin := range []bool{false, true} {
		if err := bind("FEED2", legit, pin); !errors.Is(err, ErrCertBound) {
			t.Errorf("a second key binding the certificate (pin %v): %v", pin, err)
		}
	}
	if err := bind("OTHER", foreign, false); err != nil {
		t.Errorf("the other issuer's certificate, bound to a key of its own: %v", err)
	}
	if _, err := keys.Revoke(ctx, admin, "FEED"); err != nil {
		t.Fatal(err)
	}
	if err := bind("FEED2", legit, true); err != nil {
		t.Fatalf("binding the certificate once the key that bound it is revoked: %v", err)
	}
	if id, err := as(legit); err != nil || id != "FEED2" {
		t.Errorf("the pinned certificate: %q %v", id, err)
	}
	if id, err := as(renewed); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a pinned key's certificate with another key: authenticated as %q (%v)", id, err)
	}

	// Two servers creating keys at the same moment may both bind it: then
	// neither authenticates it.
	pinned, _ := BindingOf(legit)
	twin := events.KeyCreated{Role: events.RoleAuditor, TokenHash: HashToken("otpl_twin"), CertSubject: pinned.Subject, CertIssuer: pinned.Issuer}
	if err := keys.append(ctx, admin, "TWIN", Key{}, twin); err != nil {
		t.Fatal(err)
	}
	if id, err := as(legit); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a certificate two keys bind: authenticated as %q (%v)", id, err)
	}
}

// TestExpiredKeyBindsNothing: a certificate whose key expired is 401 (key
// expired), and a new key may bind it and then authenticates it alone.
func TestExpiredKeyBindsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	keys, err := OpenKeys(ctx, journaltest.Journal(t), "IBKS", func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	admin := events.Principal{ID: "ADM1", Role: events.RoleAdmin, Method: events.MethodAPIKey}
	ca := newTestCA(t, pkix.Name{CommonName: "otpledger client CA"})
	cert := ca.issue(t, pkix.Name{CommonName: "center-feed"})
	b, _ := BindingOf(cert)
	expires := now.Add(time.Minute)
	if _, _, err := keys.Create(ctx, admin, NewKey{ID: "OLD", Role: events.RoleAuditor, ExpiresAt: &expires, Cert: b}); err != nil {
		t.Fatal(err)
	}
	clock.Store(now.Add(2 * time.Minute).UnixNano())
	if _, err := keys.Certificate(cert); !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "OLD expired") {
		t.Errorf("the expired key's certificate: %v", err)
	}
	if _, _, err := keys.Create(ctx, admin, NewKey{ID: "NEW", Role: events.RoleAuditor, Cert: b}); err != nil {
		t.Fatalf("a new key for the expired key's certificate: %v", err)
	}
	if k, err := keys.Certificate(cert); err != nil || k.ID != "NEW" {
		t.Errorf("the certificate, bound anew: %q %v", k.ID, err)
	}
}
