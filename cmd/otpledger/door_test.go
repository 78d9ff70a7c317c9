package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/embedded"
)

// natsCLI runs the nats CLI against servers as user, with a fresh HOME (no
// saved contexts), each run bounded by 10 s.
func natsCLI(t *testing.T, servers, user, password string) func(args ...string) (string, error) {
	cli := natscli(t)
	home := t.TempDir()
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		full := append([]string{"--server", servers, "--user", user, "--password", password, "--timeout", "2s"}, args...)
		cmd := exec.CommandContext(ctx, cli, full...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// readerPrefixes are the flags an auditor's nats CLI needs: its account
// imports the stream's reads under journal.ReaderAPIPrefix, and it may
// subscribe only to its own inbox prefix.
var readerPrefixes = []string{"--js-api-prefix", journal.ReaderAPIPrefix, "--inbox-prefix", journal.ReaderInbox}

// revokedKey creates key DOOR01 through p, revokes it and returns the stream
// sequence of its key_created event (read on nc).
func revokedKey(t *testing.T, p *process, nc *nats.Conn) uint64 {
	t.Helper()
	if status, out := p.requestAs(t, "admin", "POST", "/v1/keys", `{"id":"DOOR01","role":"teller"}`); status != 201 {
		t.Fatalf("create key DOOR01: %d %s", status, out)
	}
	if status, out := p.requestAs(t, "admin", "POST", "/v1/keys/DOOR01/revoke", ""); status != 200 {
		t.Fatalf("revoke key DOOR01: %d %s", status, out)
	}
	j, err := journal.Open(context.Background(), nc, journal.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for e, err := range j.Read(context.Background(), events.KeyRef("DOOR01"), 1) {
		if err != nil {
			t.Fatal(err)
		}
		return e.Sequence
	}
	t.Fatal("key DOOR01 has no message")
	return 0
}

// cliDoors tries, with the nats CLI of a reader (run), the doors of issue
// 25: a direct get of the stored key_created at created whose reply subject
// is a fresh key subject (under both API prefixes, each with and without the
// reader's flags), an edit of the
// projector's durable consumer (headers_only), a subscription to _INBOX.>.
func cliDoors(t *testing.T, run func(args ...string) (string, error), created uint64) {
	t.Helper()
	// no_hdr: the answer without the stored Nats-Msg-Id, which the
	// stream's duplicate window would otherwise drop as a repeat.
	body := fmt.Sprintf(`{"seq":%d,"no_hdr":true}`, created)
	for _, prefix := range []string{"$JS.API", journal.ReaderAPIPrefix} {
		for _, flags := range [][]string{nil, readerPrefixes} {
			out, err := run(append(flags, "pub", prefix+".DIRECT.GET.OTPLEDGER", body, "--reply", "otpledger.key.revived")...)
			t.Logf("nats pub %s.DIRECT.GET.OTPLEDGER --reply otpledger.key.revived: %v %s", prefix, err, firstLine(out))
		}
	}
	for _, flags := range [][]string{nil, readerPrefixes} {
		out, err := run(append(flags, "consumer", "edit", "OTPLEDGER", "otpledger-projector", "--headers-only", "-f")...)
		if err == nil {
			t.Errorf("nats consumer edit otpledger-projector --headers-only as the reader succeeded:\n%s", out)
		}
		out, _ = run(append(flags, "sub", "_INBOX.>", "--count", "1", "--wait", "2s")...)
		if !strings.Contains(out, "Permissions Violation") {
			t.Errorf("nats sub _INBOX.> as the reader was not refused:\n%s", out)
		}
	}
}

func firstLine(s string) string { return strings.TrimSpace(strings.SplitN(s, "\n", 2)[0]) }

// keyStaysRevoked checks, a second after the attempts, that the stream's
// last sequence is still last and that p lists key DOOR01 revoked and no key
// that was not created by the admin.
func keyStaysRevoked(t *testing.T, p *process, nc *nats.Conn, last uint64) {
	t.Helper()
	time.Sleep(time.Second) // the key follower sees a stored message within milliseconds
	j, err := journal.Open(context.Background(), nc, journal.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if now, err := j.LastSequence(context.Background()); err != nil || now != last {
		t.Errorf("the stream's last sequence went from %d to %d (%v): the reader stored messages", last, now, err)
	}
	status, out := p.requestAs(t, "admin", "GET", "/v1/keys", "")
	var keys struct {
		Items []struct {
			ID        string     `json:"id"`
			RevokedAt *time.Time `json:"revoked_at"`
		} `json:"items"`
	}
	if status != 200 || json.Unmarshal(out, &keys) != nil {
		t.Fatalf("list keys: %d %s", status, out)
	}
	for _, k := range keys.Items {
		if k.ID == "DOOR01" && k.RevokedAt == nil {
			t.Errorf("the revoked key DOOR01 is active again")
		}
	}
}

// TestNatsCLIReaderDoorsEmbedded runs the nats CLI with reader.json's
// credentials against a running serve's embedded server: a direct get of a
// revoked key's key_created with a stream subject as its reply stores
// nothing, the projector's consumer cannot be edited, _INBOX.> cannot be
// subscribed to; the key stays revoked, and the reader still reads (stream
// info).
func TestNatsCLIReaderDoorsEmbedded(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	p := start(t, "OTPLEDGER_DATA_DIR="+dataDir, "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=")
	var reader struct{ URL, User, Password string }
	if data, err := os.ReadFile(filepath.Join(dataDir, embedded.ReaderFile)); err != nil || json.Unmarshal(data, &reader) != nil {
		t.Fatalf("reader credentials: %v", err)
	}
	nc, err := embedded.DialReader(dataDir, "door-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	created := revokedKey(t, p, nc)
	j, err := journal.Open(context.Background(), nc, journal.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	last, err := j.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	run := natsCLI(t, reader.URL, reader.User, reader.Password)
	cliDoors(t, run, created)
	keyStaysRevoked(t, p, nc, last)
	if out, err := run(append(readerPrefixes, "stream", "info", "OTPLEDGER", "--json")...); err != nil || !strings.Contains(out, `"deny_delete": true`) {
		t.Errorf("the reader's stream info: %v\n%s", err, out)
	}
}

// TestNatsCLIAuditorDoorsCluster: the same doors, shut for the auditor of
// a three-node cluster started from deploy/nats/cluster.conf; and the
// ledger's own user can neither delete the stream nor set its max_age.
func TestNatsCLIAuditorDoorsCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	t.Parallel()
	cl := startCluster(t)
	dir := t.TempDir()
	fpKey := filepath.Join(dir, "fingerprint.key")
	_ = os.WriteFile(fpKey, []byte(strings.Repeat("cd", 32)), 0o600)
	p := start(t, "OTPLEDGER_NATS_URL="+cl.url("otpledger", clusterLedgerPassword), "OTPLEDGER_DURABILITY=replicated",
		"OTPLEDGER_DATA_DIR="+filepath.Join(dir, "data"), "OTPLEDGER_DATABASE_URL=", "OTPLEDGER_FINGERPRINT_KEY_FILE="+fpKey)
	servers := strings.NewReplacer("otpledger:"+clusterLedgerPassword+"@", "").Replace(cl.url("otpledger", clusterLedgerPassword))
	nc := cl.connect(t) // the ledger's user: what the stream holds, whatever the auditor could do
	created := revokedKey(t, p, nc)
	j, err := journal.Open(context.Background(), nc, journal.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	last, err := j.LastSequence(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	auditor := natsCLI(t, servers, "auditor", clusterAuditorPassword)
	cliDoors(t, auditor, created)
	keyStaysRevoked(t, p, nc, last)
	ledger := natsCLI(t, servers, "otpledger", clusterLedgerPassword)
	for _, args := range [][]string{{"stream", "edit", "OTPLEDGER", "--max-age", "1h", "-f"}, {"stream", "purge", "OTPLEDGER", "-f"},
		{"stream", "rm", "OTPLEDGER", "-f"}} {
		if out, err := ledger(args...); err == nil {
			t.Errorf("nats %s as the ledger's user succeeded:\n%s", strings.Join(args, " "), out)
		} else {
			t.Logf("nats %s as the ledger's user: refused (%s)", strings.Join(args, " "), firstLine(out))
		}
	}
	if out, err := auditor(append(readerPrefixes, "stream", "info", "OTPLEDGER", "--json")...); err != nil || !strings.Contains(out, `"deny_delete": true`) {
		t.Errorf("the auditor's stream info: %v\n%s", err, out)
	}
	// The audit tools read as the auditor (direct gets, its own inbox).
	auditEnv := []string{"OTPLEDGER_NATS_URL=" + cl.url("auditor", clusterAuditorPassword), "OTPLEDGER_DATA_DIR=" + filepath.Join(dir, "audit"),
		"OTPLEDGER_DATABASE_URL=", "OTPLEDGER_FINGERPRINT_KEY_FILE=" + fpKey}
	if out, err := command(t, auditEnv, "verify", "--format", "json"); err != nil || !strings.Contains(out, `"messages"`) {
		t.Errorf("verify as the auditor: %v\n%s", err, out)
	}
	if out, err := ledger("stream", "info", "OTPLEDGER", "--json"); err != nil || !strings.Contains(out, `"deny_delete": true`) || strings.Contains(out, `"max_age": 3600`) {
		t.Errorf("the stream after the attempts: %v\n%s", err, out)
	}
}
