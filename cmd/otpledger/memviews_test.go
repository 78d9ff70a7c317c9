package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpledger/otpledger/client"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestReplicasWithMemoryViewsShareTheCluster (issue 26, finding 4): two
// replicas on one external NATS, each with its views in memory, never take
// each other's consumer: after writes through both, each one's views reach
// the stream's end, each says it is ready and current, and neither logs a
// failed subscription.
func TestReplicasWithMemoryViewsShareTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster and two servers")
	}
	t.Parallel()
	cl := startCluster(t)
	dir := t.TempDir()
	fpKey := filepath.Join(dir, "fingerprint.key")
	if err := os.WriteFile(fpKey, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OTPLEDGER_NATS_URL=" + cl.url("otpledger", clusterLedgerPassword), "OTPLEDGER_DURABILITY=replicated",
		"OTPLEDGER_DATA_DIR=" + filepath.Join(dir, "data"), "OTPLEDGER_FINGERPRINT_KEY_FILE=" + fpKey}
	replicas := []*process{start(t, env...)}
	replicas = append(replicas, start(t, env...))
	ctx := context.Background()
	center := client.Common{Institution: "KB001", Channel: "CENTER", OriginChannel: "ONLINE", Actor: client.Actor{Role: "SYSTEM", ID: "CENTER"}}
	for i := range 8 {
		p := replicas[i%2]
		serial := fmt.Sprintf("MV%010d", i)
		if _, err := client.New(p.url, p.tokens["CENTER"], nil).Register(ctx, "OTP", serial, "", client.Registration{Common: center}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.New(p.url, p.tokens["AUTH"], nil).Error(ctx, "OTP", serial, "",
			client.Common{Channel: "AUTH", Actor: client.Actor{Role: "SYSTEM", ID: "AUTH"}}); err != nil {
			t.Fatal(err)
		}
	}
	j := journaltest.Open(t, cl.connect(t), journal.Config{ReadOnly: true})
	last, err := j.LastSequence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range replicas {
		path := fmt.Sprintf("/v1/devices/OTP/MV%010d/errors", 7)
		if status, body := p.readAt(t, "", path, last); status != 200 || lastSequence(map[string]string{path: string(body)}) < last {
			t.Errorf("replica %d's views: %d %s, want them at %d\n%s", i, status, body, last, p.log())
		}
		if status, body := p.request(t, "GET", "/readyz", ""); status != 200 || !strings.Contains(string(body), `"projection":"current"`) {
			t.Errorf("replica %d's readiness: %d %s", i, status, body)
		}
		if log := p.log(); strings.Contains(log, "cannot subscribe") || strings.Contains(log, "do not follow the checkpoint") {
			t.Errorf("replica %d's projector lost its consumer:\n%s", i, log)
		}
	}
}
