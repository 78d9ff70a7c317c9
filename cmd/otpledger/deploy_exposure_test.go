package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// What the deployment exposes (docs/security.md "The deployment"): the
// compose file has no default secret and publishes nothing beyond the
// host's loopback unauthenticated, the image carries no secret, the systemd
// units keep secrets out of the unit files. `docker compose` is not
// installed on the machines that test this repository, so the compose file
// is read as compose reads it: YAML with merge keys, then its ${…}
// interpolation (composeInterpolate).

// composeFile is deploy/compose.yaml decoded, merge keys resolved.
type composeFile struct {
	Services map[string]composeService
}

type composeService struct {
	Environment map[string]string
	Ports       []any  // "[ip:][host:]container[/proto]" or {host_ip, published, target}
	NetworkMode string `yaml:"network_mode"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readFile(t, "../../deploy/compose.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Services) == 0 {
		t.Fatal("deploy/compose.yaml has no services")
	}
	return c
}

var composeVar = regexp.MustCompile(`\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// composeInterpolate substitutes as compose does: $$ is a dollar, ${X} and
// $X the variable or empty, ${X:-d} / ${X-d} a default when X is empty /
// unset, ${X:?m} / ${X?m} an error when X is empty / unset.
func composeInterpolate(s string, env map[string]string) (string, error) {
	var errs []string
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := composeVar.FindStringSubmatch(m)
		if sub[2] != "" {
			return env[sub[2]]
		}
		name, op, arg := splitComposeVar(sub[1])
		v, set := env[name]
		empty := v == ""
		switch {
		case op == ":-" && empty, op == "-" && !set:
			return arg
		case op == ":?" && empty, op == "?" && !set:
			errs = append(errs, fmt.Sprintf("required variable %s is missing a value: %s", name, arg))
		}
		return v
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func splitComposeVar(expr string) (name, op, arg string) {
	i := strings.IndexAny(expr, ":-?")
	if i < 0 {
		return expr, "", ""
	}
	name, rest := expr[:i], expr[i:]
	for _, op := range []string{":-", ":?", "-", "?"} {
		if strings.HasPrefix(rest, op) {
			return name, op, rest[len(op):]
		}
	}
	return name, rest, ""
}

// secretFields lists, per service, the environment values that hold a
// secret: a variable named for a password, secret or token, or a URL with
// a password in it.
func secretFields(c composeFile) map[string]string {
	named := regexp.MustCompile(`PASSWORD|SECRET|TOKEN`)
	userinfo := regexp.MustCompile(`://[^/@\s:]+:[^@\s]+@`)
	fields := map[string]string{}
	for svc, s := range c.Services {
		for k, v := range s.Environment {
			if (named.MatchString(k) && !strings.HasSuffix(k, "_FILE")) || userinfo.MatchString(v) {
				fields[svc+" "+k] = v
			}
		}
	}
	return fields
}

// TestComposeRefusesWithoutSecrets: with none of its secrets in the
// environment, compose refuses every value that holds one (no example
// password to fall back to); with them all set, the file interpolates
// cleanly and each secret is the operator's value.
func TestComposeRefusesWithoutSecrets(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	fields := secretFields(c)
	if len(fields) < 10 {
		t.Fatalf("%d secret values found: the check read nothing", len(fields))
	}
	required := map[string]string{}
	for field, v := range fields {
		if _, err := composeInterpolate(v, nil); err == nil {
			t.Errorf("%s starts without its secret: %q", field, v)
		}
		for _, m := range composeVar.FindAllStringSubmatch(v, -1) {
			if name, op, msg := splitComposeVar(m[1]); op == ":?" && msg != "" {
				required[name] = "s3cret-" + strings.ToLower(name)
			}
		}
	}
	names := make([]string, 0, len(required))
	for name := range required {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) < 5 {
		t.Fatalf("required secrets %v: want the route, ledger, auditor, PostgreSQL and Grafana passwords", names)
	}
	for field, v := range fields {
		got, err := composeInterpolate(v, required)
		if err != nil || !strings.Contains(got, "s3cret-") {
			t.Errorf("%s with %v set: %q, %v", field, names, got, err)
		}
	}
	var all any
	_ = yaml.Unmarshal(readFile(t, "../../deploy/compose.yaml"), &all)
	walkStrings(all, func(s string) {
		if _, err := composeInterpolate(s, required); err != nil {
			t.Errorf("%q with %v set: %v", s, names, err)
		}
	})
}

func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for k, e := range v {
			f(k)
			walkStrings(e, f)
		}
	}
}

// publishedHost returns the host address a compose port publishes on: ""
// for every interface.
func publishedHost(p any) string {
	switch p := p.(type) {
	case map[string]any:
		host, _ := p["host_ip"].(string)
		return host
	case string:
		p = strings.SplitN(p, "/", 2)[0]
		if strings.HasPrefix(p, "[") { // [::1]:8080:8080
			return strings.Trim(p[:strings.Index(p, "]")+1], "[]")
		}
		if parts := strings.Split(p, ":"); len(parts) == 3 {
			return parts[0]
		}
	}
	return ""
}

// TestComposePublishesOnlyLoopback: NATS, PostgreSQL and Prometheus (no
// authentication, or the metrics listener's none) are not published on the
// host at all; Grafana and the API only on the host's loopback (the API on
// another address only when serve itself speaks TLS); no service shares
// the host's network.
func TestComposePublishesOnlyLoopback(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	ports := 0
	for name, s := range c.Services {
		if s.NetworkMode == "host" {
			t.Errorf("%s: network_mode host publishes every port it opens", name)
		}
		if len(s.Ports) > 0 && (name == "prometheus" || name == "postgres" || regexp.MustCompile(`^n[0-9]$`).MatchString(name)) {
			t.Errorf("%s publishes %v on the host: it has no authentication of its own to put there", name, s.Ports)
			continue
		}
		tls := s.Environment["OTPLEDGER_TLS_CERT"] != "" && s.Environment["OTPLEDGER_TLS_KEY"] != ""
		for _, p := range s.Ports {
			ports++
			host := publishedHost(p)
			if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && !(strings.HasPrefix(name, "serve") && tls) {
				t.Errorf("%s publishes %v on %q: not loopback", name, p, host)
			}
		}
	}
	if ports < 3 {
		t.Errorf("%d ports read: want the two serve replicas and Grafana", ports)
	}
}

// TestComposeGrafanaSignInRequired: Grafana's admin password is the
// operator's (required, no default admin/admin), anonymous access and
// sign-up are off, and its provisioning sets no password of its own.
func TestComposeGrafanaSignInRequired(t *testing.T) {
	t.Parallel()
	g, ok := readCompose(t).Services["grafana"]
	if !ok {
		t.Fatal("no grafana service")
	}
	env := g.Environment
	if pw := env["GF_SECURITY_ADMIN_PASSWORD"]; env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "" && !regexp.MustCompile(`^\$\{[A-Z_]+:\?.+\}$`).MatchString(pw) {
		t.Errorf("GF_SECURITY_ADMIN_PASSWORD %q: want a required variable (or GF_SECURITY_ADMIN_PASSWORD__FILE)", pw)
	}
	for k, want := range map[string]string{"GF_AUTH_ANONYMOUS_ENABLED": "false", "GF_USERS_ALLOW_SIGN_UP": "false"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	err := filepath.WalkDir("../../deploy/grafana/provisioning", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if m := regexp.MustCompile(`(?i)password|secureJsonData|anonymous`).Find(b); m != nil {
			t.Errorf("%s sets %s", path, m)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDockerImageCarriesNoSecrets: the build context leaves out every file
// that holds a secret in an operator's checkout (BuildKit reads
// deploy/Dockerfile.dockerignore for deploy/Dockerfile), no ARG or ENV holds
// one, and the image's stage copies the binary alone.
func TestDockerImageCarriesNoSecrets(t *testing.T) {
	t.Parallel()
	ignored := map[string]bool{}
	for _, line := range strings.Split(string(readFile(t, "../../deploy/Dockerfile.dockerignore")), "\n") {
		ignored[strings.TrimSpace(line)] = true
	}
	for _, p := range []string{"deploy/keys", "**/.env", "**/*.key", "**/*.token", "**/*.creds", "**/*.pem", "**/reader.json", "**/data"} {
		if !ignored[p] {
			t.Errorf("Dockerfile.dockerignore does not leave out %s", p)
		}
	}
	stages := strings.Split(string(readFile(t, "../../deploy/Dockerfile")), "\nFROM ")
	for _, line := range strings.Split(strings.Join(stages, "\n"), "\n") {
		if regexp.MustCompile(`^(ARG|ENV)\b.*(PASSWORD|SECRET|TOKEN|_KEY\b|_KEY=)`).MatchString(line) {
			t.Errorf("the Dockerfile bakes in a secret: %s", line)
		}
	}
	for _, line := range strings.Split(stages[len(stages)-1], "\n") {
		if (strings.HasPrefix(line, "COPY ") || strings.HasPrefix(line, "ADD ")) && !strings.HasPrefix(line, "COPY --from=build /out/otpledger ") {
			t.Errorf("the image's stage copies more than the binary: %s", line)
		}
	}
}

// TestSystemdUnitsKeepSecretsOut: the units name no secret; serve's take
// theirs from an EnvironmentFile (root's, mode 0600) and its keys as
// systemd credentials, which only the service's user reads, in a state
// directory of mode 0700.
func TestSystemdUnitsKeepSecretsOut(t *testing.T) {
	t.Parallel()
	secretName := regexp.MustCompile(`PASSWORD|SECRET|TOKEN`)
	fileName := regexp.MustCompile(`_KEY_FILE$|_CREDS$|_SECRET_FILE$|_TLS_KEY$`)
	userinfo := regexp.MustCompile(`://[^/@\s:]+:[^@\s]+@`)
	for _, unit := range []string{"otpledger.service", "otpledger-nats.service"} {
		settings := map[string][]string{}
		for _, line := range strings.Split(string(readFile(t, "../../deploy/systemd/"+unit)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
				settings[k] = append(settings[k], v)
			}
		}
		if len(settings["EnvironmentFile"]) == 0 || len(settings["ExecStart"]) == 0 {
			t.Fatalf("%s: no EnvironmentFile or ExecStart: the check read nothing", unit)
		}
		if got := settings["StateDirectoryMode"]; len(got) != 1 || got[0] != "0700" {
			t.Errorf("%s: StateDirectoryMode %v, want 0700", unit, got)
		}
		credentials := map[string]bool{}
		for _, c := range settings["LoadCredential"] {
			credentials[strings.SplitN(c, ":", 2)[0]] = true
		}
		loaded := map[string]bool{}
		for _, assignment := range settings["Environment"] {
			name, value, _ := strings.Cut(strings.Trim(assignment, `"`), "=")
			switch {
			case userinfo.MatchString(value) || (secretName.MatchString(name) && !fileName.MatchString(name)):
				t.Errorf("%s: Environment=%s names a secret in the unit", unit, name)
			case fileName.MatchString(name):
				if !strings.HasPrefix(value, "%d/") || !credentials[strings.TrimPrefix(value, "%d/")] {
					t.Errorf("%s: %s=%s is not a LoadCredential= credential", unit, name, value)
				}
				loaded[name] = true
			}
		}
		if unit == "otpledger.service" && (!loaded["OTPLEDGER_FINGERPRINT_KEY_FILE"] || !loaded["OTPLEDGER_CHECKPOINT_KEY_FILE"]) {
			t.Errorf("%s: the fingerprint and checkpoint keys are not systemd credentials (LoadCredential=, %%d/…): %v", unit, settings["Environment"])
		}
	}
}

// TestSecurityDocNamesRealTests: every test docs/security.md cites as
// showing a door shut is a test function of this module, so a renamed or
// removed test cannot leave the threat model pointing at nothing.
func TestSecurityDocNamesRealTests(t *testing.T) {
	t.Parallel()
	funcs := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range decl.FindAllSubmatch(b, -1) {
			funcs[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`(Test\\w+)`").FindAllStringSubmatch(string(readFile(t, "../../docs/security.md")), -1)
	if len(cited) < 30 {
		t.Fatalf("docs/security.md cites %d tests: the check read nothing", len(cited))
	}
	for _, m := range cited {
		if !funcs[m[1]] {
			t.Errorf("docs/security.md cites %s, which no _test.go file declares", m[1])
		}
	}
}
