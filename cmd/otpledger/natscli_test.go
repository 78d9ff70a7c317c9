package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// natscliVersion is the nats CLI the test runs against the embedded listener.
const natscliVersion = "v0.5.0"

var natscliBinary tool

// natscli builds the nats CLI (github.com/nats-io/natscli) once per
// machine, in a module of its own, so that it never becomes a dependency of
// otpledger's.
func natscli(t *testing.T) string {
	t.Helper()
	return natscliBinary.get(t, func() (string, error) {
		dir := filepath.Join(os.TempDir(), "otpledger-natscli-"+natscliVersion)
		bin := filepath.Join(dir, "nats")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module natscli\n\ngo 1.26\n"), 0o644); err != nil {
			return "", err
		}
		for _, args := range [][]string{{"get", "github.com/nats-io/natscli/nats@" + natscliVersion}, {"build", "-o", bin + ".tmp", "github.com/nats-io/natscli/nats"}} {
			cmd := exec.Command("go", args...)
			cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("build the nats CLI: go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return bin, os.Rename(bin+".tmp", bin)
	})
}

// TestNatsCLIAgainstTheEmbeddedListener runs the standard nats CLI against
// a running serve's NATS listener, as an attacker on the same host would:
// without credentials it connects to nothing; with the reader credentials
// it reads the stream but can neither delete nor purge it nor publish to
// otpledger.>; the ledger keeps working.
func TestNatsCLIAgainstTheEmbeddedListener(t *testing.T) {
	t.Parallel()
	cli := natscli(t)
	dataDir := t.TempDir()
	env := []string{"OTPLEDGER_DATA_DIR=" + dataDir, "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
	p := start(t, env...)
	if status, out := p.request(t, "POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`); status != 201 {
		t.Fatalf("register: %d %s", status, out)
	}
	var reader struct{ URL, User, Password string }
	data, err := os.ReadFile(filepath.Join(dataDir, "reader.json"))
	if err != nil || json.Unmarshal(data, &reader) != nil {
		t.Fatalf("reader credentials: %v", err)
	}
	nats := func(creds bool, args ...string) (string, error) {
		full := []string{"--server", reader.URL, "--timeout", "2s"}
		if creds {
			full = append(full, "--user", reader.User, "--password", reader.Password)
		}
		cmd := exec.Command(cli, append(full, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no saved contexts
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{{"stream", "rm", "OTPLEDGER", "-f"}, {"stream", "ls"}, {"pub", "otpledger.device.OTP.999888777666", "{}"}} {
		if out, err := nats(false, args...); err == nil || !strings.Contains(strings.ToLower(out), "authorization") {
			t.Errorf("nats %s without credentials: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := nats(true, append(readerPrefixes, "stream", "info", "OTPLEDGER", "--json")...); err != nil || !strings.Contains(out, `"deny_delete": true`) {
		t.Errorf("the reader reads the stream's info: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"stream", "rm", "OTPLEDGER", "-f"}, {"stream", "purge", "OTPLEDGER", "-f"}, {"stream", "rmm", "OTPLEDGER", "1", "-f"},
		{"req", "otpledger.device.OTP.999888777666", `{"events":[]}`}} {
		// nats req reports the server's refusal but exits 0: the refusal is what counts.
		if out, err := nats(true, args...); err == nil && !strings.Contains(out, "Permissions Violation") {
			t.Errorf("nats %s as the reader succeeded:\n%s", strings.Join(args, " "), out)
		} else {
			t.Logf("nats %s as the reader: refused (%s)", strings.Join(args, " "), strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
		}
	}
	if status, out := p.request(t, "POST", "/v1/devices/OTP/000111222334/registrations", `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`); status != 201 {
		t.Fatalf("the ledger after the attempts: %d %s", status, out)
	}
	p.stop(t)
	if out, err := command(t, env, "verify"); err != nil || !strings.Contains(out, "0 findings") {
		t.Errorf("verify after the attempts: %v\n%s", err, out)
	}
}
