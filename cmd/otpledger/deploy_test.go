package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/otpledger/otpledger/internal/pgtest"
)

// The files of deploy/ are tested here as far as this machine allows: the
// NATS configurations by starting servers from them (TestClusterFailover,
// events/journal TestDocumentedServerConfig), the dashboard against a
// running serve's metrics, the Dockerfile's build command by running it, the
// systemd units by systemd-analyze, the compose file's mounts by reading
// it. What needs a container runtime (building the image, running compose)
// is not run here (README "Running beyond one machine").

// TestDashboardMetricsExist: every metric the Grafana dashboard queries is
// in the metrics of a serve replica over NATS and PostgreSQL (the lease's
// metric exists only there), once it served a command and a refusal.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	_, ns := natsServer(t)
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	p := start(t, "OTPLEDGER_DATA_DIR="+t.TempDir(), "OTPLEDGER_NATS_URL="+ns.URL, "OTPLEDGER_DATABASE_URL="+pgtest.Database(t),
		"OTPLEDGER_FINGERPRINT_KEY_FILE="+keyFile)
	register := `{"channel":"CENTER","institution":"KB001","origin_channel":"ONLINE","actor":{"role":"SYSTEM","id":"CENTER"}}`
	for _, want := range []int{201, 409} {
		if status, body := p.request(t, "POST", "/v1/devices/OTP/000111222666/registrations", register); status != want {
			t.Fatalf("registration: %d %s, want %d", status, body, want)
		}
	}
	_, metrics := p.request(t, "GET", "/metrics", "")
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(readFile(t, "../../deploy/grafana/dashboards/otpledger.json"), &dash); err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:otpledger|go|process)_[a-z_]+\b`)
	checked := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			for _, name := range names.FindAllString(target.Expr, -1) {
				checked++
				if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).Match(metrics) {
					t.Errorf("panel %q queries %s, which /metrics does not have", panel.Title, name)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("the dashboard names %d metrics: the check read nothing", checked)
	}
}

// TestDockerfileBuild runs the Dockerfile's build command (its go build line,
// as written) and checks the binary: static (no interpreter, no dynamic
// libraries), and it runs. The Dockerfile has two stages and runs as a
// non-root user.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	dockerfile := string(readFile(t, "../../deploy/Dockerfile"))
	line := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o \S+ (\./cmd/otpledger)$`).FindStringSubmatch(dockerfile)
	if line == nil {
		t.Fatal("the Dockerfile has no 'RUN CGO_ENABLED=0 go build … -o … ./cmd/otpledger' line")
	}
	if strings.Count(dockerfile, "\nFROM ") < 2 || !regexp.MustCompile(`(?m)^USER 65532:65532$`).MatchString(dockerfile) {
		t.Error("the Dockerfile is not multi-stage with a non-root USER")
	}
	out := filepath.Join(t.TempDir(), "otpledger")
	cmd := exec.Command("sh", "-c", line[1]+" -o "+out+" "+line[2]) // as the image's shell runs it
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line[1], err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || len(libs) > 0 {
			t.Fatalf("the binary is not static: interpreter or libraries %v", libs)
		}
	}
	if b, err := exec.Command(out, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "otpledger ") {
		t.Errorf("the container's binary: %v %s", err, b)
	}
}

// TestSystemdUnits: systemd-analyze verifies the units, their ExecStart
// pointed at the binaries built here.
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing (.ci/run installs systemd)")
		}
		t.Skip("systemd-analyze is missing")
	}
	dir := t.TempDir()
	replace := strings.NewReplacer("/usr/local/bin/otpledger", build(t), "/usr/local/bin/nats-server", buildNATSServer(t))
	for _, unit := range []string{"otpledger.service", "otpledger-nats.service"} {
		path := filepath.Join(dir, unit)
		if err := os.WriteFile(path, []byte(replace.Replace(string(readFile(t, "../../deploy/systemd/"+unit)))), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
}

// TestComposeFileMountsExist: every file the compose file mounts or builds
// from is in the repository (the keys, which an operator provides, aside).
func TestComposeFileMountsExist(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Build struct {
				Context, Dockerfile string
			}
			Volumes []string
		}
	}
	if err := yaml.Unmarshal(readFile(t, "../../deploy/compose.yaml"), &compose); err != nil {
		t.Fatal(err)
	}
	mounts := 0
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if !strings.HasPrefix(src, "./") || src == "./keys" {
				continue
			}
			mounts++
			if _, err := os.Stat(filepath.Join("../../deploy", src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
		if s.Build.Dockerfile != "" {
			if _, err := os.Stat(filepath.Join("../../deploy", s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s builds from %s: %v", name, s.Build.Dockerfile, err)
			}
		}
	}
	if len(compose.Services) != 8 || mounts < 8 {
		t.Errorf("%d services, %d mounts read: want 3 NATS nodes, PostgreSQL, two serve, Prometheus, Grafana", len(compose.Services), mounts)
	}
}
