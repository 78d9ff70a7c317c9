package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certAuthority issues certificates for the mutual TLS test.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *certAuthority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for subject valid in [from, to), as a
// tls.Certificate and as PEM files of certificate and key.
func (ca *certAuthority) issue(t *testing.T, subject pkix.Name, server bool, from, to time.Time) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// TestMutualTLS serves HTTPS that requires client certificates of one CA:
// a producer service authenticates by its certificate's subject, bound to
// a key (its subject and issuer as DER), and its events record method mtls;
// a certificate of another CA, an expired one, or none fails the
// handshake; a good certificate bound to no key, or whose subject of two
// CNs prints as the bound one, is 401; no key binds such a subject, and no
// second key binds a bound certificate.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, rogue := newCA(t, "otpledger test CA"), newCA(t, "rogue CA")
	now := time.Now()
	_, serverCert, serverKey := ca.issue(t, pkix.Name{CommonName: "127.0.0.1"}, true, now.Add(-time.Minute), now.Add(time.Hour))
	service, _, _ := ca.issue(t, pkix.Name{CommonName: "center-feed", Organization: []string{"IBKS"}}, false, now.Add(-time.Minute), now.Add(time.Hour))
	unbound, _, _ := ca.issue(t, pkix.Name{CommonName: "nobody"}, false, now.Add(-time.Minute), now.Add(time.Hour))
	expired, _, _ := ca.issue(t, pkix.Name{CommonName: "center-feed", Organization: []string{"IBKS"}}, false, now.Add(-2*time.Hour), now.Add(-time.Hour))
	foreign, _, _ := rogue.issue(t, pkix.Name{CommonName: "center-feed", Organization: []string{"IBKS"}}, false, now.Add(-time.Minute), now.Add(time.Hour))
	// Go prints this subject (O=IBKS, CN=attacker, CN=center-feed) as the service's: "CN=center-feed,O=IBKS".
	spoof, _, _ := ca.issue(t, pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "IBKS"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "attacker"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "center-feed"}}}, false, now.Add(-time.Minute), now.Add(time.Hour))
	if spoof.Leaf.Subject.String() != service.Leaf.Subject.String() {
		t.Fatalf("the spoof prints %q, the service %q", spoof.Leaf.Subject, service.Leaf.Subject)
	}
	for name, data := range map[string][]byte{"server.pem": serverCert, "server.key": serverKey, "ca.pem": ca.pem} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=", "OTPLEDGER_POLICY_FILE=" + policyFile(t),
		"OTPLEDGER_TLS_CERT=" + filepath.Join(dir, "server.pem"), "OTPLEDGER_TLS_KEY=" + filepath.Join(dir, "server.key"),
		"OTPLEDGER_TLS_CLIENT_CA=" + filepath.Join(dir, "ca.pem")}
	p := startWith(t, client(unbound), env...) // the admin's requests carry a certificate and the admin token
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("serve is not on HTTPS: %s", p.url)
	}
	bind := fmt.Sprintf(`{"id":"FEED","role":"producer","channels":["CENTER"],"cert_subject":%q,"cert_issuer":%q}`,
		base64.StdEncoding.EncodeToString(service.Leaf.RawSubject), base64.StdEncoding.EncodeToString(service.Leaf.RawIssuer))
	if status, out := p.requestAs(t, "admin", "POST", "/v1/keys", bind); status != 201 {
		t.Fatalf("bind the service's certificate: %d %s", status, out)
	}
	if status, out := p.requestAs(t, "admin", "POST", "/v1/keys", strings.Replace(bind, "FEED", "FEED2", 1)); status != 409 {
		t.Errorf("a second key binding the same certificate: %d %s", status, out)
	}
	spoofBind := fmt.Sprintf(`{"id":"SPOOF","role":"auditor","cert_subject":%q,"cert_issuer":%q}`,
		base64.StdEncoding.EncodeToString(spoof.Leaf.RawSubject), base64.StdEncoding.EncodeToString(spoof.Leaf.RawIssuer))
	if status, out := p.requestAs(t, "admin", "POST", "/v1/keys", spoofBind); status != 400 || !strings.Contains(string(out), "cert_subject") {
		t.Errorf("a key binding a subject of two CNs: %d %s", status, out)
	}
	register := `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM"}}`
	p.http = client(service)
	status, out := p.requestAs(t, "", "POST", "/v1/devices/OTP/000111222333/registrations", register)
	var reg struct{ Events []struct{ Sequence uint64 } }
	if status != 201 || json.Unmarshal(out, &reg) != nil {
		t.Fatalf("command by certificate: %d %s", status, out)
	}
	for name, cert := range map[string]tls.Certificate{"a certificate bound to no key": unbound, "a subject of two CNs printed as the bound one": spoof} {
		p.http = client(cert)
		if status, out := p.requestAs(t, "", "POST", "/v1/devices/OTP/000111222334/registrations", register); status != 401 {
			t.Errorf("%s: %d %s", name, status, out)
		}
	}
	status, out = p.readAt(t, "S100", "/v1/devices/OTP/000111222333/history", reg.Events[0].Sequence)
	if status != 200 || !strings.Contains(string(out), `"principal":{"id":"FEED","role":"producer","method":"mtls"}`) {
		t.Errorf("history of the certificate's command: %d %s", status, out)
	}
	for name, hc := range map[string]*http.Client{"expired certificate": client(expired), "another CA's certificate": client(foreign), "no certificate": client()} {
		resp, err := hc.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: handshake succeeded (%d)", name, resp.StatusCode)
		}
	}
	p.stop(t)
}

// TestKeysCreateReadsTheCertificate: 'keys create --cert' sends the
// certificate's subject and issuer as the base64 of their DER, and its
// public key's SHA-256 only with --cert-pin; a subject of two CNs is
// refused before anything is sent.
func TestKeysCreateReadsTheCertificate(t *testing.T) {
	t.Parallel()
	ca, dir, now := newCA(t, "otpledger test CA"), t.TempDir(), time.Now()
	pair, certPEM, _ := ca.issue(t, pkix.Name{CommonName: "center-feed", Organization: []string{"IBKS"}}, false, now.Add(-time.Minute), now.Add(time.Hour))
	_, spoofPEM, _ := ca.issue(t, pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "a"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "b"}}}, false, now.Add(-time.Minute), now.Add(time.Hour))
	path, spoof := filepath.Join(dir, "client.pem"), filepath.Join(dir, "spoof.pem")
	for p, data := range map[string][]byte{path: certPEM, spoof: spoofPEM} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := certBinding(path, false)
	if err != nil || b.Subject != base64.StdEncoding.EncodeToString(pair.Leaf.RawSubject) ||
		b.Issuer != base64.StdEncoding.EncodeToString(pair.Leaf.RawIssuer) || b.SHA256 != "" {
		t.Errorf("--cert: %+v %v", b, err)
	}
	if b, err := certBinding(path, true); err != nil || len(b.SHA256) != 64 {
		t.Errorf("--cert --cert-pin: %+v %v", b, err)
	}
	if _, err := certBinding(spoof, false); err == nil || !strings.Contains(err.Error(), "repeats attribute") {
		t.Errorf("--cert of a subject of two CNs: %v", err)
	}
}
