package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/internal/access"
)

// keyFlags are the flags of 'otpledger keys'.
type keyFlags struct {
	url, token         string
	id, role, channels string
	expires, certFile  string
	certPin            bool
}

// apiClient returns a client of the running serve: OTPLEDGER_TOKEN, or the
// bootstrap admin token of the data directory.
func (kf *keyFlags) apiClient(cfg *config) (*client.Client, error) {
	token := kf.token
	if token == "" {
		data, err := os.ReadFile(filepath.Join(cfg.dataDir, access.TokenFile))
		if err != nil {
			return nil, errors.New("no token: set OTPLEDGER_TOKEN (or --token), or run where the data directory's admin.token is readable")
		}
		token = strings.TrimSpace(string(data))
	}
	return client.New(strings.TrimRight(kf.url, "/"), token, nil), nil
}

func keysCmd(ctx context.Context, cfg *config, kf *keyFlags, verb, id string, stdout, stderr io.Writer) error {
	c, err := kf.apiClient(cfg)
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		nk := client.NewKey{ID: kf.id, Role: kf.role}
		if kf.certFile != "" {
			b, err := certBinding(kf.certFile, kf.certPin)
			if err != nil {
				return err
			}
			nk.CertSubject, nk.CertIssuer, nk.CertSHA256 = b.Subject, b.Issuer, b.SHA256
		}
		if kf.channels != "" {
			nk.Channels = strings.Split(kf.channels, ",")
		}
		if kf.expires != "" {
			t, err := time.Parse(time.RFC3339, kf.expires)
			if err != nil {
				return fmt.Errorf("--expires: want an RFC 3339 instant, e.g. 2027-12-31T00:00:00Z")
			}
			nk.ExpiresAt = &t
		}
		k, token, err := c.CreateKey(ctx, nk)
		if err != nil {
			return err
		}
		// The token goes to stdout alone, so that it can be piped into a secret store.
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "created key %s (%s); the token above is shown once\n", k.ID, k.Role)
		return nil
	case "revoke":
		k, err := c.RevokeKey(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s at %s\n", k.ID, k.RevokedAt.Format(time.RFC3339))
		return nil
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tCHANNELS\tEXPIRES\tCREATED BY\tSTATUS")
	for _, k := range keys {
		status, expires := "active", "-"
		if k.RevokedAt != nil {
			status = "revoked by " + k.RevokedBy
		}
		if k.ExpiresAt != nil {
			expires = k.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, strings.Join(k.Channels, ","), expires, k.CreatedBy, status)
	}
	return tw.Flush()
}

// certBinding reads the PEM certificate at path and returns what binds it
// to a key: its subject and issuer, and its public key when pin.
func certBinding(path string, pin bool) (access.CertBinding, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return access.CertBinding{}, fmt.Errorf("--cert: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return access.CertBinding{}, errors.New("--cert: not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return access.CertBinding{}, fmt.Errorf("--cert: %w", err)
	}
	b, err := access.BindingOf(cert)
	if err != nil {
		return access.CertBinding{}, fmt.Errorf("--cert: %w", err)
	}
	if !pin {
		b.SHA256 = ""
	}
	return b, nil
}
