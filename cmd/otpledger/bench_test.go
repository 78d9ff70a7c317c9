package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpledger/otpledger/internal/bench"
	"github.com/otpledger/otpledger/internal/pgtest"
)

// TestBenchQuick runs `otpledger bench --quick` as CI does: it must
// complete and print every row, in Markdown on stdout and in both files of
// --out. It checks that each row was measured, not what it measured.
func TestBenchQuick(t *testing.T) {
	bin := build(t)
	out := t.TempDir()
	cmd := exec.Command(bin, "bench", "--quick", "--out", out)
	cmd.Env = append(os.Environ(), "OTPLEDGER_DATABASE_URL="+pgtest.Database(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench --quick: %v\n%s", err, stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*-quick.json"))
	if len(files) != 1 {
		t.Fatalf("--out wrote %v, want one <date>-quick.json", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(strings.TrimSuffix(files[0], ".json") + ".md")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"single-aggregate commands", "same over HTTP", "authentication", "two-aggregate commands", "fsync durability",
		"HTTP commands, 64 keep-alive clients, fsync durability",
		"single-aggregate commands on an R3 stream",
		"cold aggregate load", "warm aggregate load", "projection rebuild to memory", "projection rebuild to PostgreSQL",
		"live projection under a 5,000 events/s load", "live projection under the full HTTP write rate", "2376 history and error-count queries",
		"memory: `serve`", "start-up: embedded `serve` ready, views folded", "start-up: embedded `serve` ready from the views' snapshot, ",
		"start-up: embedded `serve` ready from the views' snapshot, "}
	if len(r.Rows) != len(want) {
		t.Errorf("%d rows, want %d", len(r.Rows), len(want))
	}
	for i, w := range want {
		if i >= len(r.Rows) {
			break
		}
		row := r.Rows[i]
		if !strings.HasPrefix(row.Workload, w) {
			t.Errorf("row %d is %q, want %q", i, row.Workload, w)
		}
		if row.Ledger.Runs != r.Runs || (row.Ledger.Median == 0 && row.Ledger.P99 == 0) || row.Target == "" {
			t.Errorf("row %q not measured: %+v", row.Workload, row)
		}
		for _, b := range row.Baselines {
			if b.Median == 0 && b.P99 == 0 {
				t.Errorf("row %q: baseline %q not measured", row.Workload, b.Name)
			}
		}
		line := "| " + row.Workload + " |"
		if !strings.Contains(string(stdout), line) || !strings.Contains(string(md), line) {
			t.Errorf("row %q missing from the Markdown table", row.Workload)
		}
	}
	if r.Runs != 3 || r.Machine.PostgreSQL == "" || r.Machine.NATSServer == "" || r.Machine.Cores == 0 {
		t.Errorf("report header incomplete: runs %d, machine %+v", r.Runs, r.Machine)
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int // 2: a bad command line; 1: values the benchmark refuses
	}{{[]string{"bench", "--runs", "-1"}, 1}, {[]string{"bench", "--format", "xml"}, 2}, {[]string{"bench", "--events", "10"}, 1},
		{[]string{"bench", "--startup-sizes", "100k"}, 1}, {[]string{"bench", "--startup-sizes", "500"}, 1}} {
		var stdout, stderr strings.Builder
		if code := run(t.Context(), tc.args, &stdout, &stderr); code != tc.code || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, want %d, stderr %q", tc.args, code, tc.code, stderr.String())
		}
	}
}
