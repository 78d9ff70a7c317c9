package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/internal/apitest"
	"github.com/otpledger/otpledger/internal/pgtest"
	"github.com/otpledger/otpledger/internal/streamgen"
)

// The walkthrough of the README: a day at a branch. Personal data used, which
// must never be found in clear anywhere afterwards.
const (
	realNameNumber = "900101-1234567"
	phoneOld       = "010-1111-2222"
	phoneNew       = "010-3333-4444"
)

var personalData = []string{realNameNumber, strings.ReplaceAll(realNameNumber, "-", ""), phoneOld, phoneNew,
	strings.ReplaceAll(phoneOld, "-", ""), strings.ReplaceAll(phoneNew, "-", "")}

const branch = `"channel":"BRANCH","actor":{"role":"SELF","id":"CUST0001"},"staff":"S100","documents":["REAL_NAME_ID","PROCESSING_FORM","SEAL_OR_SIGNATURE"]`

// step is one request of the walkthrough and the answer it must get.
type step struct {
	method, path, body string
	status             int
	rule               string
}

var walkthrough = []step{
	{"PUT", "/v1/customers/C0001", `{` + branch + `,"type":"INDIVIDUAL","residency":"DOMESTIC","real_name_number":"` + realNameNumber + `","accounts":["12345678901"]}`, 201, ""},
	{"POST", "/v1/devices/OTP/000111222333/registrations", `{` + branch + `,"customer_no":"C0001","response_code":"482913","warranty_from":"2024-01-01","warranty_to":"2027-01-01"}`, 201, ""},
	{"POST", "/v1/devices/OTP/000111222333/registrations", `{"channel":"CENTER","institution":"KB001","origin_channel":"BRANCH","actor":{"role":"SYSTEM","id":"CENTER"}}`, 201, ""},
	{"POST", "/v1/devices/OTP/000111222333/loss-reports", `{"channel":"PHONE","actor":{"role":"SELF","id":"CUST0001"}}`, 201, ""}, // 2374 collects no reason
	{"POST", "/v1/devices/OTP/000111222333/loss-reports/IBKS/recover", `{"channel":"MOBILE_WEB","actor":{"role":"SELF","id":"CUST0001"}}`, 409, "R-HW-RECOVER-ONLINE"},
	{"POST", "/v1/devices/OTP/000111222333/loss-reports/KB001/recover", `{"channel":"CENTER","origin_channel":"BRANCH","actor":{"role":"SYSTEM","id":"CENTER"}}`, 201, ""},
	{"POST", "/v1/devices/OTP/000111222333/loss-reports/IBKS/recover", `{"channel":"MOBILE_WEB","actor":{"role":"SELF","id":"CUST0001"}}`, 201, ""},
}

func init() {
	for range 10 {
		walkthrough = append(walkthrough, step{"POST", "/v1/devices/OTP/000111222333/errors", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}}`, 201, ""})
	}
	walkthrough = append(walkthrough,
		step{"POST", "/v1/devices/OTP/000111222333/errors", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}}`, 409, "R-HW-LOCK"},
		step{"POST", "/v1/devices/OTP/000111222333/errors/reset", `{` + branch + `}`, 201, ""},
	)
	// The mobile OTP replaces the hardware OTP at home in the same append
	// (R-ONE-OTP): the answer lists the registration's end on the customer
	// and the device besides the issuance; KB001 keeps the device.
	replacedByMobile = len(walkthrough)
	walkthrough = append(walkthrough,
		step{"POST", "/v1/customers/C0001/mobile-otp", `{"channel":"MTS","actor":{"role":"SELF","id":"CUST0001"},"phone_id":"` + phoneOld + `","verification":{"home_account":true,"phone_identity":true,"one_won_transfer":true}}`, 201, ""},
		step{"POST", "/v1/customers/C0001/mobile-otp", `{"channel":"MTS","actor":{"role":"SELF","id":"CUST0001"},"phone_id":"` + phoneNew + `","verification":{"home_account":true,"phone_identity":true,"otp_or_security_card":true}}`, 201, ""},
		// A branch never issues a mobile OTP (R-MOB-VERIFY), and only the
		// authentication service lowers its PIN count (R-MOB-PIN-LOCK).
		step{"POST", "/v1/customers/C0001/mobile-otp", `{` + branch + `,"phone_id":"` + phoneNew + `"}`, 409, "R-MOB-VERIFY"},
		step{"POST", "/v1/customers/C0001/mobile-otp/errors", `{"channel":"AUTH","actor":{"role":"SYSTEM","id":"AUTH"}}`, 201, ""},
		step{"POST", "/v1/customers/C0001/mobile-otp/errors/reset", `{"channel":"MTS","actor":{"role":"SELF","id":"CUST0001"}}`, 409, "R-MOB-PIN-LOCK"},
		// A stolen device, cancelled everywhere during the accident, cannot
		// come back without a recovery (R-HW-LOST-BLOCKS).
		step{"POST", "/v1/devices/OTP/000111222444/registrations", `{"channel":"CENTER","institution":"KB001","origin_channel":"BRANCH","actor":{"role":"SYSTEM","id":"CENTER"}}`, 201, ""},
		step{"POST", "/v1/devices/OTP/000111222444/loss-reports", `{"channel":"PHONE","actor":{"role":"SELF","id":"CUST0001"},"reason":"STOLEN"}`, 400, ""},
		step{"POST", "/v1/devices/OTP/000111222444/loss-reports", `{"channel":"PHONE","actor":{"role":"SELF","id":"CUST0001"},"reason":"STOLEN","customer_no":"C0001"}`, 201, ""},
		step{"POST", "/v1/devices/OTP/000111222444/registrations/KB001/cancel", `{"channel":"CENTER","origin_channel":"ONLINE","actor":{"role":"SYSTEM","id":"CENTER"}}`, 201, ""},
		step{"POST", "/v1/devices/OTP/000111222444/registrations", `{"channel":"CENTER","institution":"KB001","origin_channel":"ONLINE","actor":{"role":"SYSTEM","id":"CENTER"}}`, 409, "R-HW-LOST-BLOCKS"},
		step{"POST", "/v1/devices/OTP/000111222444/registrations", `{"channel":"HTS","actor":{"role":"SELF","id":"CUST0001"},"customer_no":"C0001"}`, 409, "R-HW-LOST-BLOCKS"},
		// One person, one customer number (R-ONE-PERSON): the real-name
		// number is C0001's, claimed with its profile; the refusal names
		// C0001 and nothing of the number.
		step{"PUT", "/v1/customers/C0002", `{` + branch + `,"type":"INDIVIDUAL","nationality":"KOREAN","real_name_number":"` + realNameNumber + `"}`, 409, "R-ONE-PERSON"},
	)
}

// replacedByMobile is the walkthrough's step whose mobile issuance ends the
// home hardware registration; its answer lists every event, in this order.
var (
	replacedByMobile       int
	replacedByMobileEvents = "customer/cancelled customer/mobile_issued device/cancelled"
)

// views are the queries whose answers must survive a restart.
var views = []string{
	"/v1/customers/C0001/devices", "/v1/customers/C0001/media", "/v1/customers?account_no=12345678901",
	"/v1/customers?real_name_number=" + realNameNumber,
	"/v1/devices/OTP/000111222333", "/v1/devices/OTP/000111222333/institutions", "/v1/devices/OTP/000111222333/history?limit=100",
	"/v1/devices/OTP/000111222333/errors", "/v1/institutions/KB001/devices", "/v1/approvals/pending",
	"/v1/customers/C0001/mobile-otp", "/v1/customers/C0001/media?kind=MOBILE", "/v1/devices/OTP/000111222444/institutions",
}

// tool is a binary the tests build once per run, on first use.
type tool struct {
	once sync.Once
	path string
	err  error
}

// get returns the binary, made by build on first use.
func (b *tool) get(t *testing.T, build func() (string, error)) string {
	t.Helper()
	b.once.Do(func() { b.path, b.err = build() })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

var binary struct {
	tool
	revision string // the checkout's HEAD when it was built ("" outside git)
}

// build compiles otpledger once per test run.
func build(t *testing.T) string {
	t.Helper()
	return binary.get(t, func() (string, error) {
		dir, err := os.MkdirTemp("", "otpledger-bin")
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, "otpledger")
		if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			binary.revision = strings.TrimSpace(string(head))
		}
		// -buildvcs=auto: stamp the revision where there is one, whatever
		// GOFLAGS says (TestVersion reads it).
		if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", path, ".").CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build: %v\n%s", err, out)
		}
		return path, nil
	})
}

// process is a running 'otpledger serve'.
type process struct {
	cmd    *exec.Cmd
	url    string
	logs   *bytes.Buffer
	logsMu *sync.Mutex
	tokens map[string]string // apitest.Keys by id
	http   *http.Client      // with TLS settings when serve speaks HTTPS
}

// tokensByDir keeps the test keys' tokens of each data directory: made with
// the bootstrap admin token at a directory's first start, used after restarts.
var tokensByDir = struct {
	sync.Mutex
	m map[string]map[string]string
}{m: map[string]map[string]string{}}

// authorize gives p the test keys of its data directory, creating them with
// the admin token the first start wrote there.
func (p *process) authorize(t *testing.T, env []string) {
	t.Helper()
	dataDir := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "OTPLEDGER_DATA_DIR="); ok {
			dataDir = v
		}
	}
	tokensByDir.Lock()
	defer tokensByDir.Unlock()
	if tokens, ok := tokensByDir.m[dataDir]; ok {
		p.tokens = tokens
		return
	}
	admin, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatalf("the first start wrote no admin token: %v\n%s", err, p.log())
	}
	p.tokens = map[string]string{"admin": strings.TrimSpace(string(admin))}
	for _, nk := range apitest.Keys {
		body, _ := json.Marshal(map[string]any{"id": nk.ID, "role": nk.Role, "channels": nk.Channels})
		status, out := p.requestAs(t, "admin", "POST", "/v1/keys", string(body))
		var k struct{ Token string }
		if status != 201 || json.Unmarshal(out, &k) != nil || !strings.HasPrefix(k.Token, "otpl_") {
			t.Fatalf("create key %s: %d %s", nk.ID, status, out)
		}
		p.tokens[nk.ID] = k.Token
	}
	tokensByDir.m[dataDir] = p.tokens
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs serve with env and waits until it is ready.
func start(t *testing.T, env ...string) *process {
	t.Helper()
	return startWith(t, http.DefaultClient, env...)
}

// startWith runs serve with env and waits until it answers hc on /readyz.
func startWith(t *testing.T, hc *http.Client, env ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	for _, kv := range env { // an address the test chose (and named elsewhere, e.g. in OTPLEDGER_CONSOLE_URL)
		if a, ok := strings.CutPrefix(kv, "OTPLEDGER_HTTP_ADDR="); ok {
			addr = a
		}
	}
	cmd := exec.Command(build(t), "serve", "--http-addr", addr)
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, logs: &bytes.Buffer{}, logsMu: &sync.Mutex{}, http: hc}
	cmd.Stderr = lockedBuffer{p.logsMu, p.logs}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	for lines.Scan() && !strings.Contains(lines.Text(), "listening") {
		if !strings.Contains(lines.Text(), "admin token is in") {
			t.Fatalf("serve printed %q before listening\n%s", lines.Text(), p.log())
		}
	}
	if !strings.Contains(lines.Text(), "listening") {
		t.Fatalf("serve did not start:\n%s", p.log())
	}
	p.url = lines.Text()[strings.Index(lines.Text(), "http"):]
	go func() {
		for lines.Scan() {
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := p.http.Get(p.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				p.authorize(t, env)
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready:\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) log() string {
	p.logsMu.Lock()
	defer p.logsMu.Unlock()
	return p.logs.String()
}

// stop sends SIGTERM and expects a clean exit 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// request sends a request as the test principal that would send it
// (apitest.PrincipalFor).
// readAt reads a view at stream sequence seq at least, as the principal of
// the route: it asks with min_sequence and asks again while the answer is
// older (the server's wait is bounded; a loaded machine's projector may
// take longer), for up to two minutes.
func (p *process) readAt(t *testing.T, who, path string, seq uint64) (int, []byte) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	if who == "" {
		who = apitest.PrincipalFor("GET", path, "")
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		status, body := p.requestAs(t, who, "GET", fmt.Sprintf("%s%smin_sequence=%d", path, sep, seq), "")
		if status != 200 || lastSequence(map[string]string{path: string(body)}) >= seq || time.Now().After(deadline) {
			return status, body
		}
	}
}

func (p *process) request(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	return p.requestAs(t, apitest.PrincipalFor(method, path, body), method, path, body)
}

// requestAs sends a request with the token of key who; its answer must be
// one schema/openapi.json documents (checkAnswer).
func (p *process) requestAs(t *testing.T, who, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+p.tokens[who])
	}
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	checkAnswer(t, req, resp, data)
	return resp.StatusCode, data
}

// walk drives the walkthrough, approves the branch registration, and returns
// the views' answers once they reflect every event.
func (p *process) walk(t *testing.T) (map[string]string, uint64) {
	t.Helper()
	var last uint64
	var registration string
	for i, s := range walkthrough {
		status, body := p.request(t, s.method, s.path, s.body)
		var answer struct {
			Events []struct {
				ID        string `json:"id"`
				Type      string `json:"type"`
				Sequence  uint64 `json:"sequence"`
				Aggregate struct {
					Kind string `json:"kind"`
				} `json:"aggregate"`
			} `json:"events"`
			Error struct{ Rule string } `json:"error"`
		}
		_ = json.Unmarshal(body, &answer)
		if status != s.status || answer.Error.Rule != s.rule {
			t.Fatalf("step %d %s %s: %d %s", i, s.method, s.path, status, body)
		}
		scanForPersonalData(t, fmt.Sprintf("the answer to step %d", i), body)
		var types []string
		for _, e := range answer.Events {
			last = max(last, e.Sequence)
			types = append(types, e.Aggregate.Kind+"/"+e.Type)
		}
		if i == replacedByMobile && strings.Join(types, " ") != replacedByMobileEvents {
			t.Fatalf("step %d, the mobile OTP replacing the hardware: %s, want %s", i, types, replacedByMobileEvents)
		}
		if i == 1 {
			registration = answer.Events[0].ID
		}
	}
	// Maker-checker against real identities: the teller who processed it
	// may not approve, nor may a manager sign as that teller.
	status, body := p.requestAs(t, "S100", "POST", "/v1/events/"+registration+"/approval", `{}`)
	if status != 403 {
		t.Fatalf("approval by the processing teller: %d %s", status, body)
	}
	status, body = p.requestAs(t, "M200", "POST", "/v1/events/"+registration+"/approval", `{"approver":"S100"}`)
	if status != 403 {
		t.Fatalf("approval under the teller's name: %d %s", status, body)
	}
	status, body = p.readAt(t, "", "/v1/approvals/pending", last)
	if status != 200 || !strings.Contains(string(body), registration) {
		t.Fatalf("pending approvals: %d %s", status, body)
	}
	status, body = p.requestAs(t, "M200", "POST", "/v1/events/"+registration+"/approval", `{}`)
	if status != 201 {
		t.Fatalf("approval: %d %s", status, body)
	}
	var approved struct{ Events []struct{ Sequence uint64 } }
	_ = json.Unmarshal(body, &approved)
	seq := approved.Events[0].Sequence
	p.checkScreens(t, seq)
	return p.views(t, seq), seq
}

// checkScreens reads the screens a teller uses after the walkthrough: the
// mobile OTP view, 2373's issue status, a stale generator number refused
// (R-MOB-REVOKE-CHANNEL), and the stolen device's cancelled registration,
// still in accident.
func (p *process) checkScreens(t *testing.T, seq uint64) {
	t.Helper()
	get := func(path string, v any) {
		t.Helper()
		status, body := p.readAt(t, "", path, seq)
		if status != 200 || json.Unmarshal(body, v) != nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
	}
	var mobile struct {
		GeneratorNumber string `json:"generator_number"`
		Status          string `json:"status"`
		Errors          int    `json:"errors"`
		ValidUntil      string `json:"valid_until"`
	}
	get("/v1/customers/C0001/mobile-otp", &mobile)
	if mobile.Status != "ACTIVE" || mobile.Errors != 1 || mobile.GeneratorNumber == "" || mobile.ValidUntil == "" {
		t.Fatalf("mobile OTP view: %+v", mobile)
	}
	var media struct {
		Items []struct {
			GeneratorNumber string `json:"generator_number"`
			IssueStatus     string `json:"issue_status"`
			Kind            string `json:"kind"`
		} `json:"items"`
	}
	get("/v1/customers/C0001/media", &media)
	var issued, ended []string
	for _, m := range media.Items {
		if m.Kind == "MOBILE" && m.IssueStatus == "ISSUED" {
			issued = append(issued, m.GeneratorNumber)
		} else if m.Kind == "MOBILE" {
			ended = append(ended, m.GeneratorNumber)
		}
	}
	if len(issued) != 1 || issued[0] != mobile.GeneratorNumber || len(ended) != 1 {
		t.Fatalf("2373 mobile media: issued %v ended %v, in force %s", issued, ended, mobile.GeneratorNumber)
	}
	status, body := p.request(t, "POST", "/v1/customers/C0001/mobile-otp/revoke",
		`{"channel":"MTS","actor":{"role":"SELF","id":"CUST0001"},"generator_number":"`+ended[0]+`"}`)
	if status != 409 || !strings.Contains(string(body), "R-MOB-REVOKE-CHANNEL") {
		t.Fatalf("revoking a stale generator number: %d %s", status, body)
	}
	type institution struct {
		Institution       string  `json:"institution"`
		EndedAt           *string `json:"ended_at"`
		InAccident        bool    `json:"in_accident"`
		RecoveredAt       *string `json:"recovered_at"`
		RecoveredInBranch bool    `json:"recovered_in_branch"`
	}
	var insts struct{ Items []institution }
	get("/v1/devices/OTP/000111222444/institutions", &insts)
	if len(insts.Items) != 1 || insts.Items[0].EndedAt == nil || !insts.Items[0].InAccident {
		t.Fatalf("the stolen device's cancelled registration: %+v", insts.Items)
	}
	// The values the walkthrough shows for the first device: recovered at
	// both institutions (KB001 in branch, IBKS online), cancelled at home,
	// ten errors then a reset.
	get("/v1/devices/OTP/000111222333/institutions", &insts)
	want := map[string]func(i institution) bool{
		"IBKS": func(i institution) bool {
			return i.EndedAt != nil && !i.InAccident && i.RecoveredAt != nil && !i.RecoveredInBranch
		},
		"KB001": func(i institution) bool {
			return i.EndedAt == nil && !i.InAccident && i.RecoveredAt != nil && i.RecoveredInBranch
		},
	}
	for _, i := range insts.Items {
		if ok := want[i.Institution]; ok == nil || !ok(i) {
			t.Errorf("institution row %+v", i)
		}
	}
	var errs struct {
		Count       int     `json:"count"`
		Locked      bool    `json:"locked"`
		LastErrorAt *string `json:"last_error_at"`
		LastResetAt *string `json:"last_reset_at"`
	}
	get("/v1/devices/OTP/000111222333/errors", &errs)
	if errs.Count != 0 || errs.Locked || errs.LastErrorAt == nil || errs.LastResetAt == nil {
		t.Errorf("error count after ten errors and a reset: %+v", errs)
	}
	var devices struct {
		Items []struct{ Kind, Status string }
	}
	get("/v1/customers/C0001/devices", &devices)
	var statuses []string
	for _, d := range devices.Items {
		statuses = append(statuses, d.Kind+" "+d.Status)
	}
	if strings.Join(statuses, ", ") != "HARDWARE CANCELLED, MOBILE ACTIVE, MOBILE REVOKED" && strings.Join(statuses, ", ") != "HARDWARE CANCELLED, MOBILE REVOKED, MOBILE ACTIVE" {
		t.Errorf("per-customer list: %v", statuses)
	}
}

func (p *process) views(t *testing.T, minSeq uint64) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range views {
		status, body := p.readAt(t, "", v, minSeq)
		if status != 200 || lastSequence(map[string]string{v: string(body)}) < minSeq {
			t.Fatalf("GET %s: %d %s", v, status, body)
		}
		// The position moves with signed checkpoints (one at each shutdown);
		// the views' content must not.
		out[v] = asOfRE.ReplaceAllString(string(body), `"as_of_sequence":N`)
	}
	return out
}

// policyFile writes a policy whose branches never close, so that the
// walkthrough's branch steps pass whenever the test runs.
func policyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.json")
	policy := `{"business_hours":{"timezone":"Asia/Seoul","open":"00:00","close":"24:00","days":["MON","TUE","WED","THU","FRI","SAT","SUN"]}}`
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeEmbedded runs the walkthrough against 'otpledger serve' on the
// embedded default, restarts it, and gets the same views back; then finds no
// personal data in clear in the store files or the logs.
func TestServeEmbedded(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	env := []string{"OTPLEDGER_DATA_DIR=" + dataDir, "OTPLEDGER_POLICY_FILE=" + policyFile(t), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
	before, logs := walkAndRestart(t, env)
	scanForPersonalData(t, "logs", []byte(logs))
	scanDir(t, dataDir)
	if !strings.Contains(logs, "views' snapshot saved") || !strings.Contains(logs, "views loaded from a snapshot") {
		t.Errorf("the restart did not go through the views' snapshot:\n%s", logs)
	}

	// The audit commands on the same journal.
	if out, err := command(t, env, "verify"); err != nil || !strings.Contains(out, "signed checkpoints, 0 findings") || strings.Contains(out, " 0 signed") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	out, err := command(t, env, "history", "device", "OTP", "000111222333", "--format", "json")
	if err != nil || !strings.Contains(out, `"last_reset_at"`) || !strings.Contains(out, `"reported_lost"`) {
		t.Errorf("history: %v\n%s", err, out)
	}
	// The access log of personal data and the keys' own history.
	out, err = command(t, env, "history", "lookup", "S100")
	if err != nil || !strings.Contains(out, "real_name_number") || !strings.Contains(out, `"customers":["C0001"]`) {
		t.Errorf("history lookup: %v\n%s", err, out)
	}
	scanForPersonalData(t, "the look-up log", []byte(out))
	if out, err := command(t, env, "history", "key", "S100"); err != nil || !strings.Contains(out, "key_created") || !strings.Contains(out, "admin (admin, api_key)") {
		t.Errorf("history key: %v\n%s", err, out)
	}
	out, err = command(t, env, "export", "--format", "jsonl")
	accepted := 0
	for _, s := range walkthrough {
		if s.status == 201 {
			accepted++
		}
	}
	if lines := strings.Count(out, "\n"); err != nil || lines < accepted {
		t.Errorf("export: %d lines, %v", lines, err)
	}
	scanForPersonalData(t, "export", []byte(out))
	if !strings.Contains(out, `"type":"person_claimed"`) || !strings.Contains(out, `"kind":"person"`) {
		t.Errorf("the export holds no real-name claim: the scan proved nothing of them")
	}
	for _, v := range before {
		scanForPersonalData(t, "answers", []byte(v))
	}
}

// walkAndRestart runs the walkthrough on a serve process, restarts it, and
// checks that the views come back the same; it returns them and the logs.
func walkAndRestart(t *testing.T, env []string) (map[string]string, string) {
	t.Helper()
	p := start(t, env...)
	before, lastSeq := p.walk(t)
	p.stop(t)
	logs := p.log()
	p = start(t, env...)
	after := p.views(t, lastSeq)
	for _, v := range views {
		if before[v] != after[v] {
			t.Errorf("GET %s after restart:\n%s\nbefore:\n%s", v, after[v], before[v])
		}
	}
	// The operations' answers, checked against the description as every
	// answer is (requestAs).
	for _, path := range []string{"/healthz", "/readyz", "/v1/keys"} {
		if code, body := p.request(t, "GET", path, ""); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	p.stop(t)
	return before, logs + p.log()
}

// scanDir scans every file of a JetStream store for personal data, and
// checks that the scan reads the events themselves, or it would prove nothing.
func scanDir(t *testing.T, dir string) {
	t.Helper()
	sawEvents := false
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "admin.token" { // the one place a token is kept, by design
			if info, _ := d.Info(); info == nil || info.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", path, info.Mode().Perm())
			}
			return nil
		}
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(path)
			scanForPersonalData(t, path, data)
			sawEvents = sawEvents || bytes.Contains(data, []byte("reported_lost"))
		}
		return nil
	})
	if !sawEvents {
		t.Errorf("no file under %s holds the events in a form the scan can read", dir)
	}
}

// TestServeExternal runs the same walkthrough against external NATS (a
// server reached by URL) and PostgreSQL, with a restart.
func TestServeExternal(t *testing.T) {
	t.Parallel()
	_, ns := natsServer(t)
	dbURL := pgtest.Database(t)
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_POLICY_FILE=" + policyFile(t), "OTPLEDGER_NATS_URL=" + ns.URL,
		"OTPLEDGER_DATABASE_URL=" + dbURL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile}
	_, logs := walkAndRestart(t, env)
	scanForPersonalData(t, "logs", []byte(logs))
	if out, err := command(t, env, "rebuild"); err != nil {
		t.Errorf("rebuild: %v\n%s", err, out)
	}
	if out, err := command(t, env, "approvals", "pending"); err != nil || !strings.Contains(out, "error_reset") {
		t.Errorf("approvals pending after the rebuild: %v\n%s", err, out)
	}
	if out, err := command(t, env, "quarantine", "list"); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("quarantine list: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(), `SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema IN ('proj', 'public')`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, _ := conn.Query(context.Background(), fmt.Sprintf(`SELECT t::text FROM %s t`, table))
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		scanForPersonalData(t, table, []byte(strings.Join(texts, "\n")))
	}
	scanDir(t, ns.StoreDir)
}

var asOfRE = regexp.MustCompile(`"as_of_sequence":(\d+)`)

func lastSequence(answers map[string]string) uint64 {
	var seq uint64
	for _, a := range answers {
		if m := asOfRE.FindStringSubmatch(a); m != nil {
			var n uint64
			fmt.Sscan(m[1], &n)
			seq = max(seq, n)
		}
	}
	return seq
}

// scanForPersonalData fails when data holds a real-name number or phone id
// of the walkthrough in clear, or any API key token the tests created.
func scanForPersonalData(t *testing.T, where string, data []byte) {
	t.Helper()
	for _, secret := range personalData {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds personal data in clear (%s…)", where, secret[:4])
		}
	}
	tokensByDir.Lock()
	defer tokensByDir.Unlock()
	for _, tokens := range tokensByDir.m {
		for id, token := range tokens {
			if bytes.Contains(data, []byte(token)) || bytes.Contains(data, []byte(token[len("otpl_"):])) {
				t.Errorf("%s holds the token of key %s", where, id)
			}
		}
	}
}

// command runs one otpledger command to completion and returns its stdout.
func command(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(build(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

// TestHistoryAsOf asks 'otpledger history --as-of' for 50 random instants
// and compares the state with the one recorded while generating the stream.
func TestHistoryAsOf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	j, ns := natsServer(t)
	gen := streamgen.Generate(streamgen.Config{Events: 20_000, Devices: 20, Customers: 10, Seed: 21, Track: "GEN0000007"})
	if err := streamgen.Publish(ctx, j, gen.Commits); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	_ = os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	env := []string{"OTPLEDGER_NATS_URL=" + ns.URL, "OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile, "OTPLEDGER_DATABASE_URL="}
	r := rand.New(rand.NewPCG(21, 21))
	first, last := gen.Timeline[0].At, gen.Timeline[len(gen.Timeline)-1].At
	for range 50 {
		at := first.Add(time.Duration(r.Int64N(int64(last.Sub(first)))))
		i := sort.Search(len(gen.Timeline), func(i int) bool { return gen.Timeline[i].At.After(at) }) - 1
		want := gen.Timeline[max(i, 0)].State
		out, err := command(t, env, "history", "device", "OTP", "GEN0000007", "--as-of", at.Format(time.RFC3339Nano), "--format", "json")
		if err != nil {
			t.Fatalf("history: %v\n%s", err, out)
		}
		var got struct{ State aggregates.Device }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if got.State.Version != want.Version || got.State.ErrorCount != want.ErrorCount || got.State.Locked != want.Locked ||
			len(got.State.Registrations) != len(want.Registrations) || len(got.State.Accident) != len(want.Accident) {
			t.Fatalf("as of %s: got %+v, want %+v", at, got.State, want)
		}
	}
}

// TestRevocationReachesEveryServe runs two serve processes on one external
// NATS: a key revoked through the first is refused by the second within a
// second, and only the first start made an admin token.
func TestRevocationReachesEveryServe(t *testing.T) {
	t.Parallel()
	_, ns := natsServer(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "fingerprint.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"OTPLEDGER_NATS_URL=" + ns.URL, "OTPLEDGER_DATABASE_URL=", "OTPLEDGER_POLICY_FILE=" + policyFile(t),
		"OTPLEDGER_FINGERPRINT_KEY_FILE=" + keyFile}
	a := start(t, append(common, "OTPLEDGER_DATA_DIR="+dirA)...)
	tokensByDir.Lock()
	tokensByDir.m[dirB] = a.tokens
	tokensByDir.Unlock()
	b := start(t, append(common, "OTPLEDGER_DATA_DIR="+dirB)...)
	if _, err := os.Stat(filepath.Join(dirB, "admin.token")); !os.IsNotExist(err) {
		t.Fatalf("the second serve bootstrapped an admin key too: %v", err)
	}
	status, out := a.requestAs(t, "admin", "POST", "/v1/keys", `{"id":"S777","role":"teller"}`)
	var k struct{ Token string }
	if status != 201 || json.Unmarshal(out, &k) != nil {
		t.Fatalf("create: %d %s", status, out)
	}
	b.tokens = map[string]string{"S777": k.Token, "admin": a.tokens["admin"]}
	query := func() int {
		status, _ := b.requestAs(t, "S777", "GET", "/v1/approvals/pending", "")
		return status
	}
	deadline := time.Now().Add(time.Second)
	for query() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the second serve does not know the new key after 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, out := a.requestAs(t, "admin", "POST", "/v1/keys/S777/revoke", `{}`); status != 200 {
		t.Fatalf("revoke: %d %s", status, out)
	}
	revoked := time.Now()
	for query() != 401 {
		if time.Since(revoked) > time.Second {
			t.Fatal("the second serve still accepts the revoked key after 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("revocation reached the second serve in %v", time.Since(revoked).Round(time.Millisecond))
	a.stop(t)
	b.stop(t)
}

// TestServeExportsTraces: with OTEL_EXPORTER_OTLP_ENDPOINT set, serve sends
// its spans over OTLP/HTTP (to a stand-in collector here), flushed at
// shutdown; without it, nothing is sent (the other tests run so).
func TestServeExportsTraces(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	received := map[string]int{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received[r.URL.Path] += len(body)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL}
	p := start(t, env...)
	if status, body := p.request(t, "POST", "/v1/devices/OTP/000111222555/registrations",
		`{"channel":"CENTER","institution":"KB001","origin_channel":"ONLINE","actor":{"role":"SYSTEM","id":"CENTER"}}`); status != 201 {
		t.Fatalf("command: %d %s", status, body)
	}
	p.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if received["/v1/traces"] == 0 {
		t.Fatalf("the collector received %v, want spans on /v1/traces", received)
	}
}

// TestMemoryViewsCollectSooner: with the views in memory, serve runs the
// garbage collector at GOGC 60 (the views are most of the heap, and the
// default 100 let a fold's peak reach twice their size), unless the
// environment sets GOGC; /metrics shows which (go_gc_gogc_percent).
func TestMemoryViewsCollectSooner(t *testing.T) {
	t.Parallel()
	for gogc, want := range map[string]string{"": "60", "150": "150"} {
		p := start(t, "OTPLEDGER_DATA_DIR="+t.TempDir(), "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL=", "GOGC="+gogc)
		status, metrics := p.request(t, "GET", "/metrics", "")
		if line := "\ngo_gc_gogc_percent " + want + "\n"; status != 200 || !strings.Contains(string(metrics), line) {
			t.Errorf("GOGC=%q: /metrics %d, want the line %q", gogc, status, strings.TrimSpace(line))
		}
		p.stop(t)
	}
}
