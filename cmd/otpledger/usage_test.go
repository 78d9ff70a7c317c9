package main

import (
	"strings"
	"testing"
)

// TestUsageNeverPrintsSecrets: with a token, NATS, database and serve URLs
// carrying passwords in the environment, '--help' and a mistyped flag of
// every command print the flags' defaults as the variables' names, never
// their values; so does an environment variable that does not parse.
func TestUsageNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"otpl_TOKENSECRET", "natspass", "pgpass", "urlpass", "credsfile-secret", "notanumber-secret"}
	env := []string{"OTPLEDGER_DATA_DIR=" + t.TempDir(), "OTPLEDGER_TOKEN=otpl_TOKENSECRET",
		"OTPLEDGER_NATS_URL=nats://ledger:natspass@127.0.0.1:1", "OTPLEDGER_DATABASE_URL=postgres://ledger:pgpass@127.0.0.1:1/otp",
		"OTPLEDGER_URL=https://admin:urlpass@127.0.0.1:1", "OTPLEDGER_NATS_CREDS=/run/credsfile-secret"}
	commands := [][]string{{"serve"}, {"project"}, {"quarantine", "list"}, {"approvals", "pending"}, {"verify"}, {"export"},
		{"rebuild"}, {"bench"}, {"import"}, {"backup"}, {"restore"}, {"keys", "create"}, {"keys", "list"}, {"keys", "revoke", "K"},
		{"history", "device", "OTP", "1"}, {"history", "customer", "C"}, {"history", "key", "K"}, {"history", "lookup", "P"}}
	runs := 0
	for _, c := range commands {
		for _, extra := range [][]string{{"--help"}, {"--no-such-flag"}} {
			out, code := runCLI(t, env, append(c, extra...)...)
			runs++
			if !strings.Contains(out, "Usage: otpledger") {
				t.Errorf("otpledger %s %s: exit %d, no usage\n%s", strings.Join(c, " "), extra[0], code, out)
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("otpledger %s %s prints the secret %q:\n%s", strings.Join(c, " "), extra[0], s, out)
				}
			}
		}
	}
	help, _ := runCLI(t, env, "keys", "list", "--help")
	if !strings.Contains(help, "(set in $OTPLEDGER_TOKEN)") || !strings.Contains(help, "(set in $OTPLEDGER_URL)") {
		t.Errorf("keys list --help does not say where the token and URL come from:\n%s", help)
	}
	out, code := runCLI(t, append(env, "OTPLEDGER_LOOKUPS_PER_MINUTE=notanumber-secret"), "serve")
	if code != 2 || strings.Contains(out, "notanumber-secret") || !strings.Contains(out, "OTPLEDGER_LOOKUPS_PER_MINUTE") {
		t.Errorf("an unparsable variable: exit %d\n%s", code, out)
	}
	t.Logf("%d command lines checked for %d secrets", runs+2, len(secrets))
}
