package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/pii"
	"github.com/otpledger/otpledger/internal/securefile"
)

// config is everything the commands read from flags and the environment.
// Each flag's default comes from its environment variable, then the default.
type config struct {
	envErrs       []error // environment variables that do not parse
	home          string
	httpAddr      string
	dataDir       string
	natsURL       string
	natsCreds     string
	natsListen    string
	databaseURL   string
	durability    string
	policyFile    string
	fpKeyFile     string
	cpKeyFile     string
	cpInterval    time.Duration
	verifyEvery   time.Duration
	projector     bool
	shutdownGrace time.Duration
	logLevel      string
	serveOnly
}

// serveOnly is what only serve reads: identity, TLS and the metrics listener.
type serveOnly struct {
	oidcIssuer, oidcAudience, oidcRoleClaim string
	tlsCert, tlsKey, tlsClientCA            string
	metricsAddr                             string
	lookupsPerMinute                        int
	consoleIdle, consoleLifetime            time.Duration
	consoleURL, oidcSecretFile              string
	consolePlainHTTP                        bool
	consoleProxies                          string
}

// serveFlags registers the flags of serve alone.
func (c *config) serveFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.oidcIssuer, "oidc-issuer", env("OTPLEDGER_OIDC_ISSUER", ""), "accept ID tokens of this OpenID Connect issuer besides API keys (env OTPLEDGER_OIDC_ISSUER)")
	fs.StringVar(&c.oidcAudience, "oidc-audience", env("OTPLEDGER_OIDC_AUDIENCE", ""), "the audience (client id) those tokens must name (env OTPLEDGER_OIDC_AUDIENCE)")
	fs.StringVar(&c.oidcRoleClaim, "oidc-role-claim", env("OTPLEDGER_OIDC_ROLE_CLAIM", "otpledger_role"), "the claim holding the principal's role (env OTPLEDGER_OIDC_ROLE_CLAIM)")
	fs.StringVar(&c.tlsCert, "tls-cert", env("OTPLEDGER_TLS_CERT", ""), "serve HTTPS with this PEM certificate (env OTPLEDGER_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", env("OTPLEDGER_TLS_KEY", ""), "and this PEM key (env OTPLEDGER_TLS_KEY)")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", env("OTPLEDGER_TLS_CLIENT_CA", ""), "require client certificates of this PEM CA; a certificate bound to a key (its subject and issuer, and the key's pin if any) authenticates (env OTPLEDGER_TLS_CLIENT_CA)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", env("OTPLEDGER_METRICS_ADDR", ""), "also serve /metrics here, without authentication, e.g. 127.0.0.1:9090 (env OTPLEDGER_METRICS_ADDR)")
	fs.IntVar(&c.lookupsPerMinute, "lookups-per-minute", envParsed(c, "OTPLEDGER_LOOKUPS_PER_MINUTE", 30, strconv.Atoi),
		"personal-data look-ups (find customer by real-name or account number) per principal per minute (env OTPLEDGER_LOOKUPS_PER_MINUTE)")
	fs.StringVar(&c.consoleURL, "console-url", env("OTPLEDGER_CONSOLE_URL", ""),
		"the console's address as browsers reach it, e.g. https://otp.example.com; with the OIDC client secret the console offers sign-in at the issuer, which sends people back to <url>/console/oidc/callback (env OTPLEDGER_CONSOLE_URL)")
	fs.StringVar(&c.oidcSecretFile, "oidc-client-secret-file", env("OTPLEDGER_OIDC_CLIENT_SECRET_FILE", ""),
		"a file holding the console's OIDC client secret (the client id is the audience); never a flag's value or a log line (env OTPLEDGER_OIDC_CLIENT_SECRET_FILE)")
	fs.DurationVar(&c.consoleIdle, "console-idle-timeout", envParsed(c, "OTPLEDGER_CONSOLE_IDLE_TIMEOUT", 15*time.Minute, time.ParseDuration),
		"the branch console (/console/) signs a session out after this long unused (env OTPLEDGER_CONSOLE_IDLE_TIMEOUT)")
	fs.DurationVar(&c.consoleLifetime, "console-max-lifetime", envParsed(c, "OTPLEDGER_CONSOLE_MAX_LIFETIME", 8*time.Hour, time.ParseDuration),
		"and this long after sign-in, however used (env OTPLEDGER_CONSOLE_MAX_LIFETIME)")
	fs.BoolVar(&c.consolePlainHTTP, "console-plain-http", envParsed(c, "OTPLEDGER_CONSOLE_PLAIN_HTTP", false, strconv.ParseBool),
		"console cookies without Secure, for a browser on this machine at http://127.0.0.1; only with a loopback --http-addr and no TLS (serve refuses otherwise). By default they are Secure: behind a load balancer that terminates TLS, as in production (env OTPLEDGER_CONSOLE_PLAIN_HTTP)")
	fs.StringVar(&c.consoleProxies, "console-trusted-proxies", env("OTPLEDGER_CONSOLE_TRUSTED_PROXIES", ""),
		"comma-separated addresses or CIDRs of the load balancers in front: their X-Forwarded-For names the client whose console sign-in attempts are limited; without them every client behind one balancer shares its limit (env OTPLEDGER_CONSOLE_TRUSTED_PROXIES)")
	fs.StringVar(&c.httpAddr, "http-addr", env("OTPLEDGER_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env OTPLEDGER_HTTP_ADDR)")
	fs.StringVar(&c.natsListen, "nats-listen", env("OTPLEDGER_NATS_LISTEN", ""), "embedded server: also listen on this loopback address, e.g. 127.0.0.1:4223 (env OTPLEDGER_NATS_LISTEN)")
	fs.DurationVar(&c.cpInterval, "checkpoint-interval", envParsed(c, "OTPLEDGER_CHECKPOINT_INTERVAL", time.Minute, time.ParseDuration),
		"how often serve appends a signed checkpoint when the stream grew (env OTPLEDGER_CHECKPOINT_INTERVAL)")
	fs.DurationVar(&c.verifyEvery, "verify-interval", envParsed(c, "OTPLEDGER_VERIFY_INTERVAL", 6*time.Hour, time.ParseDuration),
		"how often serve verifies the whole stream (as otpledger verify; the audit screen shows the last result); 0: only when asked (env OTPLEDGER_VERIFY_INTERVAL)")
	fs.BoolVar(&c.projector, "projector", envParsed(c, "OTPLEDGER_PROJECTOR", true, strconv.ParseBool), "run the projector in this process (env OTPLEDGER_PROJECTOR)")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", envParsed(c, "OTPLEDGER_SHUTDOWN_GRACE", 20*time.Second, time.ParseDuration),
		"how long a shutdown waits for requests in flight (env OTPLEDGER_SHUTDOWN_GRACE)")
}

// envParsed returns environment variable name parsed, or def when it is
// unset; a value that does not parse is recorded in c.envErrs, which the
// command line reports as bad usage.
func envParsed[T any](c *config, name string, def T, parse func(string) (T, error)) T {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	parsed, err := parse(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s: its value does not parse as %T", name, def)) // the value is not repeated: it may be a secret set in the wrong variable
		return def
	}
	return parsed
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// flags registers the shared flags on fs.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.home, "home-institution", env("OTPLEDGER_HOME_INSTITUTION", "IBKS"), "the home institution's code (env OTPLEDGER_HOME_INSTITUTION)")
	fs.StringVar(&c.dataDir, "data-dir", env("OTPLEDGER_DATA_DIR", "./data"), "data directory: embedded JetStream store, generated fingerprint key (env OTPLEDGER_DATA_DIR)")
	fs.StringVar(&c.natsURL, "nats-url", env("OTPLEDGER_NATS_URL", ""), "external NATS URL(s), comma-separated; tls:// for TLS; empty: embedded server (env OTPLEDGER_NATS_URL)")
	fs.StringVar(&c.natsCreds, "nats-creds", env("OTPLEDGER_NATS_CREDS", ""), "NATS credentials file for an external server (env OTPLEDGER_NATS_CREDS)")
	fs.StringVar(&c.databaseURL, "database-url", env("OTPLEDGER_DATABASE_URL", ""), "PostgreSQL URL for the projections; empty: in memory, rebuilt at start (env OTPLEDGER_DATABASE_URL)")
	fs.StringVar(&c.durability, "durability", env("OTPLEDGER_DURABILITY", ""), "fsync | interval | replicated; default fsync embedded, interval external (env OTPLEDGER_DURABILITY)")
	fs.StringVar(&c.policyFile, "policy", env("OTPLEDGER_POLICY_FILE", ""), "JSON policy file over the manual's defaults: limits, channels, documents, hours, holidays (env OTPLEDGER_POLICY_FILE)")
	fs.StringVar(&c.fpKeyFile, "fingerprint-key-file", env("OTPLEDGER_FINGERPRINT_KEY_FILE", ""), "file holding the hex HMAC key for personal-data fingerprints; embedded default: generated in the data directory (env OTPLEDGER_FINGERPRINT_KEY_FILE)")
	fs.StringVar(&c.cpKeyFile, "checkpoint-key-file", env("OTPLEDGER_CHECKPOINT_KEY_FILE", ""), "file holding the hex Ed25519 seed that signs checkpoints; embedded default: generated in the data directory; external without it: no checkpoints (env OTPLEDGER_CHECKPOINT_KEY_FILE)")
	fs.StringVar(&c.logLevel, "log-level", env("OTPLEDGER_LOG_LEVEL", "info"), "debug | info | warn | error (env OTPLEDGER_LOG_LEVEL)")
}

func (c *config) embedded() bool { return c.natsURL == "" }

func (c *config) durabilityMode() journal.Durability {
	switch {
	case c.durability != "":
		return journal.Durability(c.durability)
	case c.embedded():
		return journal.Fsync
	}
	return journal.Interval
}

func (c *config) policy() (aggregates.Policy, error) {
	if c.policyFile == "" {
		return aggregates.DefaultPolicy(c.home), nil
	}
	data, err := os.ReadFile(c.policyFile)
	if err != nil {
		return aggregates.Policy{}, fmt.Errorf("policy: %w", err)
	}
	return aggregates.ParsePolicy(data, c.home)
}

// secret reads a hex key from path, or — when path is empty and the
// default is embedded — from name in the data directory, generating it
// (32 random bytes, mode 0600) on first start. It returns nil, nil when
// there is no key and none is to be generated.
func (c *config) secret(path, name string) ([]byte, error) {
	if path == "" {
		if path = c.keyPath(path, name); path == "" {
			return nil, nil
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
			if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if err := securefile.Write(path, []byte(hex.EncodeToString(key)+"\n")); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %s is not hex", name, path)
	}
	return key, nil
}

// keyPath is where the key name is read from: path when configured, else
// (embedded default) the data directory's file of that name; "" when an
// external deployment configured none.
func (c *config) keyPath(path, name string) string {
	switch {
	case path != "":
		return path
	case c.embedded():
		return filepath.Join(c.dataDir, name)
	}
	return ""
}

// keyFiles names the key files a backup carries beside the stream and
// where this configuration reads each.
func (c *config) keyFiles() map[string]string {
	return map[string]string{"fingerprint.key": c.keyPath(c.fpKeyFile, "fingerprint.key"), "checkpoint.key": c.keyPath(c.cpKeyFile, "checkpoint.key")}
}

// fingerprinter loads the personal-data fingerprint key (required).
func (c *config) fingerprinter() (*pii.Fingerprinter, error) {
	key, err := c.secret(c.fpKeyFile, "fingerprint.key")
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("fingerprint key: set OTPLEDGER_FINGERPRINT_KEY_FILE (a file of 64 hex digits) when using an external NATS")
	}
	return pii.NewFingerprinter(key)
}

// checkpointKey loads the Ed25519 key that signs checkpoints (its 32-byte
// seed, hex); nil when an external deployment configured none.
func (c *config) checkpointKey() (ed25519.PrivateKey, error) {
	seed, err := c.secret(c.cpKeyFile, "checkpoint.key")
	if err != nil || seed == nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("checkpoint key: want a 32-byte seed (64 hex digits)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
