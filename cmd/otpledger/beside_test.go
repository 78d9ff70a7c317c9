package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpledger/otpledger/internal/streamgen"
)

// TestAuditBesideServe runs serve on the embedded default under write load
// and every audit and operator command beside it: each either works through
// the running server (read-only) or refuses with exit 1, and import (a
// writer) is refused. Afterwards — serve stopped with SIGTERM, or killed with
// SIGKILL in the middle of the load — every acknowledged event is in the
// stream exactly once and verify is clean.
func TestAuditBesideServe(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"sigterm", "sigkill"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			env := []string{"OTPLEDGER_DATA_DIR=" + dataDir, "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
			p := start(t, env...)
			load := startLoad(t, p, 4)
			load.waitFor(t, 200)

			exportFile := filepath.Join(t.TempDir(), "beside.jsonl")
			for _, args := range [][]string{
				{"verify"},
				{"history", "device", "OTP", "W0N000001"},
				{"export", "--format", "jsonl", "--out", exportFile},
				{"approvals", "pending"},
				{"quarantine", "list"},
			} {
				out, code := runCLI(t, env, args...)
				switch {
				case code == 0 && args[0] == "verify" && !strings.Contains(out, ", 0 findings"):
					t.Errorf("verify beside serve: %s", out)
				case code == 0 && args[0] == "verify" && strings.HasPrefix(out, "0 messages"):
					t.Errorf("verify beside serve read nothing: %s", out)
				case code == 0:
					t.Logf("%s beside serve: worked through its server", args[0])
				case code == 1 && strings.Contains(out, "in use"):
					t.Logf("%s beside serve: refused (%s)", args[0], strings.TrimSpace(out))
				default:
					t.Errorf("%s beside serve: exit %d\n%s", strings.Join(args, " "), code, out)
				}
			}
			if out, code := runCLI(t, env, "import", "--in", exportFile); code != 1 || !strings.Contains(out, "in use") {
				t.Errorf("import beside serve: exit %d\n%s", code, out)
			}
			load.waitFor(t, load.count()+100) // the load went on meanwhile

			if stop == "sigkill" {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
				load.stop()
			} else {
				load.stop()
				p.stop(t)
			}
			acked := load.acknowledged()
			if out, code := runCLI(t, env, "verify"); code != 0 || !strings.Contains(out, ", 0 findings") {
				t.Fatalf("verify after serve: exit %d\n%s", code, out)
			}
			out, err := command(t, env, "export", "--format", "jsonl") // stdout only
			if err != nil {
				t.Fatalf("export after serve: %v\n%s", err, out)
			}
			stored := map[string]int{}
			sc := bufio.NewScanner(strings.NewReader(out))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					Event struct {
						ID string `json:"id"`
					} `json:"event"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatal(err)
				}
				if line.Event.ID != "" {
					stored[line.Event.ID]++
				}
			}
			for id := range acked {
				if stored[id] != 1 {
					t.Errorf("acknowledged event %s is stored %d times", id, stored[id])
				}
			}
			t.Logf("%s: %d acknowledged events, %d stored, each acknowledged one exactly once", stop, len(acked), len(stored))
		})
	}
}

// runCLI runs one otpledger command and returns its output (stdout and
// stderr) and exit code.
func runCLI(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang fails, never blocks the suite
	defer cancel()
	cmd := exec.CommandContext(ctx, build(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// load registers new devices through the centre feed from several clients
// and remembers the id of every event the ledger acknowledged.
type load struct {
	mu    sync.Mutex
	acked map[string]bool
	done  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, p *process, clients int) *load {
	l := &load{acked: map[string]bool{}, done: make(chan struct{})}
	body := `{"channel":"CENTER","institution":"KB001","actor":{"role":"SYSTEM","id":"CENTER"}}`
	for w := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/devices/OTP/W%dN%06d/registrations", p.url, w, i), strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+p.tokens["CENTER"])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // serve is gone: nothing acknowledged
					continue
				}
				var a struct{ Events []struct{ ID string } }
				if resp.StatusCode == http.StatusCreated && json.NewDecoder(resp.Body).Decode(&a) == nil {
					l.mu.Lock()
					for _, e := range a.Events {
						l.acked[e.ID] = true
					}
					l.mu.Unlock()
				}
				resp.Body.Close()
			}
		}()
	}
	return l
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *load) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the load acknowledged %d events in a minute, want %d", l.count(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
}

func (l *load) acknowledged() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// TestCLIUsage: a bad command line exits 2 naming the problem, and verify
// on an empty journal exits 1 instead of reporting a clean nothing.
func TestCLIUsage(t *testing.T) {
	t.Parallel()
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"verify", "--format", "xml"}, 2, "--format"},
		{[]string{"export", "--format", "xml"}, 2, "--format"},
		{[]string{"history", "device", "OTP", "000111222333", "extra"}, 2, "unexpected argument"},
		{[]string{"history", "device", "OTP", "000111222333", "--limit", "-1"}, 2, "--limit"},
		{[]string{"import"}, 2, "--in is required"},
		{[]string{"verify", "now"}, 2, "unexpected argument"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"history"}, 2, "want 'history device VENDOR SERIAL'"},
		{[]string{"verify"}, 1, "nothing to verify"},
	} {
		out, code := runCLI(t, env, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("otpledger %s: exit %d, want %d saying %q\n%s", strings.Join(tc.args, " "), code, tc.code, tc.says, out)
		}
	}
	// Each command declares its own flags: serve's are not verify's.
	if out, code := runCLI(t, env, "verify", "--http-addr", "127.0.0.1:0"); code != 2 || !strings.Contains(out, "flag provided but not defined: -http-addr") {
		t.Errorf("verify --http-addr: exit %d\n%s", code, out)
	}
	help, _ := runCLI(t, env, "serve", "--help")
	for _, variable := range []string{"OTPLEDGER_CHECKPOINT_INTERVAL", "OTPLEDGER_SHUTDOWN_GRACE", "OTPLEDGER_LOOKUPS_PER_MINUTE", "OTPLEDGER_PROJECTOR"} {
		if !strings.Contains(help, variable) {
			t.Errorf("serve --help does not name %s", variable)
		}
		// An environment variable that does not parse is bad usage, named.
		if out, code := runCLI(t, append(env, variable+"=soon"), "serve"); code != 2 || !strings.Contains(out, variable) {
			t.Errorf("%s=soon: exit %d\n%s", variable, code, out)
		}
	}
}

// TestVersion: version and --version name the revision the binary was
// built from (the checkout's HEAD when the test built it, "+modified" when
// the tree had changes).
func TestVersion(t *testing.T) {
	t.Parallel()
	build(t)
	want := "revision unknown"
	if binary.revision != "" {
		want = "revision " + binary.revision
	}
	for _, arg := range []string{"version", "--version"} {
		out, code := runCLI(t, nil, arg)
		if code != 0 || !strings.HasPrefix(out, "otpledger ") || !strings.Contains(out, want) || !strings.Contains(out, runtime.Version()) {
			t.Errorf("otpledger %s: exit %d: %q, want %q and %s", arg, code, out, want, runtime.Version())
		}
	}
}

// TestImportIsAllOrNothing: an export cut at 20 random byte offsets, one with
// a changed field and one with a line twice, is refused with exit 1 and
// leaves the journal empty; the untouched file imports.
func TestImportIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, srcSrv := natsServer(t)
	gen := streamgen.Generate(streamgen.Config{Events: 2000, Devices: 100, Customers: 40, Seed: 41})
	if err := streamgen.Publish(ctx, src, gen.Commits); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	file := filepath.Join(t.TempDir(), "export.jsonl")
	if out, code := runCLI(t, []string{"OTPLEDGER_NATS_URL=" + srcSrv.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile}, "export", "--out", file); code != 0 {
		t.Fatalf("export: %s", out)
	}
	whole, _ := os.ReadFile(file)
	dst, dstSrv := natsServer(t)
	env := []string{"OTPLEDGER_NATS_URL=" + dstSrv.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile}
	bad := map[string][]byte{}
	r := rand.New(rand.NewPCG(41, 41))
	for range 20 {
		at := 1 + r.IntN(len(whole)-2)
		bad[fmt.Sprintf("cut at byte %d of %d", at, len(whole))] = whole[:at]
	}
	lines := strings.SplitAfter(string(whole), "\n")
	bad["a changed field"] = []byte(strings.Replace(string(whole), `"count_after":3`, `"count_after":4`, 1))
	bad["a line twice"] = []byte(strings.Join(append(lines[:11], lines[10:]...), ""))
	for name, data := range bad {
		path := filepath.Join(t.TempDir(), "bad.jsonl")
		_ = os.WriteFile(path, data, 0o600)
		out, code := runCLI(t, env, "import", "--in", path)
		if code != 1 {
			t.Errorf("%s: exit %d\n%s", name, code, out)
		}
		if last, err := dst.LastSequence(ctx); err != nil || last != 0 {
			t.Fatalf("%s: the journal holds %d messages after a refused import (%v)", name, last, err)
		}
	}
	if out, code := runCLI(t, env, "import", "--in", file); code != 0 || strings.Contains(out, "closed pipe") {
		t.Fatalf("the untouched export: exit %d\n%s", code, out)
	}
	if last, _ := dst.LastSequence(ctx); last == 0 {
		t.Fatal("the untouched export imported nothing")
	}
}
