package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// natsServer runs a JetStream server for t and opens the journal on it.
func natsServer(t *testing.T) (*journal.Journal, journaltest.Server) {
	t.Helper()
	srv := journaltest.Run(t)
	j := journaltest.Open(t, srv.Conn, journal.Config{})
	return j, srv
}

// digest reads a stream and returns one hash per message (subject and body).
func digest(t *testing.T, j *journal.Journal) [][32]byte {
	t.Helper()
	var out [][32]byte
	err := j.Scan(context.Background(), 0, 0, func(msgs []journal.Message) error { // raw: nothing to decode
		for _, m := range msgs {
			out = append(out, sha256.Sum256(append([]byte(m.Subject+"\x00"), m.Data...)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExportImport exports a generated stream (OTPLEDGER_EXPORT_TEST_EVENTS,
// default 100,000 events) as JSON lines with the binary, reporting its peak
// memory, and imports it into an empty stream: the copy holds the same
// messages, verifies clean and projects the same views.
func TestExportImport(t *testing.T) {
	t.Parallel()
	n := 100_000
	if s := os.Getenv("OTPLEDGER_EXPORT_TEST_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	src, srcSrv := natsServer(t)
	gen := streamgen.Generate(streamgen.Config{Events: n, Devices: n / 20, Customers: n / 50, Seed: 31})
	if err := streamgen.Publish(ctx, src, gen.Commits); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	file := filepath.Join(t.TempDir(), "export.jsonl")

	cmd := exec.Command(build(t), "export", "--format", "jsonl", "--out", file)
	cmd.Env = append(os.Environ(), "OTPLEDGER_NATS_URL="+srcSrv.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE="+keyFile)
	peakMiB, out, err := runMeasured(cmd)
	if err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	t.Logf("export of %d events: peak RSS %.0f MiB", gen.Events, peakMiB)
	if peakMiB > 200 {
		t.Errorf("export peak RSS %.0f MiB, over 200 MiB", peakMiB)
	}

	dst, dstSrv := natsServer(t)
	cmd = exec.Command(build(t), "import", "--in", file)
	cmd.Env = append(os.Environ(), "OTPLEDGER_NATS_URL="+dstSrv.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE="+keyFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	a, b := digest(t, src), digest(t, dst)
	if len(a) != len(b) {
		t.Fatalf("import holds %d messages, export source %d", len(b), len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("message %d differs after export and import", i+1)
		}
	}
	if rep, err := consumers.Verify(ctx, dst, nil, nil); err != nil || len(rep.Findings) != 0 {
		t.Fatalf("the imported stream does not verify: %v %+v", err, rep.Findings)
	}
	ma, err := consumers.Fold(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := consumers.Fold(ctx, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	for serial := range gen.Devices {
		x, _, _, _ := ma.DeviceErrors(ctx, "OTP", serial)
		y, _, _, _ := mb.DeviceErrors(ctx, "OTP", serial)
		h1, _ := ma.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
		h2, _ := mb.DeviceHistory(ctx, "OTP", serial, projections.Page{Limit: projections.MaxLimit})
		jx, _ := json.Marshal(x)
		jy, _ := json.Marshal(y)
		if string(jx) != string(jy) || len(h1.Items) != len(h2.Items) {
			t.Fatalf("device %s: views differ after import", serial)
		}
	}
}

// runMeasured runs cmd and returns its peak resident memory in MiB, read
// from /proc/<pid>/status (VmHWM) while it runs: the rusage of a child also
// counts the parent's pages at fork time, which would measure this test.
func runMeasured(cmd *exec.Cmd) (float64, []byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	peakKB := 0
	for {
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
			for _, line := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
					peakKB = max(peakKB, kb)
				}
			}
		}
		select {
		case err := <-done:
			return float64(peakKB) / 1024, out.Bytes(), err
		case <-time.After(5 * time.Millisecond):
		}
	}
}
