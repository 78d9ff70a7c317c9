// Command otpledger is the OTP lifecycle ledger: an event-sourced journal of
// hardware and mobile OTP events on NATS JetStream with PostgreSQL or
// in-memory projections. This package is the one composition root: it reads
// flags and environment and wires the adapters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/httpapi"
)

const usage = `otpledger: the OTP lifecycle ledger (hardware registrations, loss reports,
recoveries, error counts and mobile OTP), event-sourced on NATS JetStream.

Usage:
  otpledger <command> [flags]

Commands:
  serve              run the ledger: HTTP API, journal, projections (embedded NATS and
                     in-memory views by default; OTPLEDGER_NATS_URL / OTPLEDGER_DATABASE_URL
                     for an external NATS cluster and PostgreSQL)
  project            run only the projector (external NATS and PostgreSQL)
  verify             re-read the stream and report, by sequence and aggregate, every altered,
                     missing, replayed or misplaced event (exit 1 if any)
  history device VENDOR SERIAL | history customer CUSTOMER_NO
                     an aggregate's events and its state, as of --as-of, straight from the stream;
                     history key ID (an API key's creation and revocation), history lookup PRINCIPAL
                     (that principal's personal-data look-ups: who found whom, never the number),
                     history person FINGERPRINT (which customer number claimed a real-name number)
  export             every event in [--from, --to) as JSON lines or CSV, streaming
  import             append an export's JSON lines to an empty journal (restore, copy)
  claims             claim the real-name number of every customer profiled before R-ONE-PERSON
                     (once, after upgrading); lists the customer numbers sharing one
  backup --out DIR   a snapshot of the stream (sequences, headers, settings) and the keys beside it
                     (fingerprint, checkpoint); serve stopped on the embedded default
  restore --in DIR   restore a backup into a NATS without the stream (an empty data directory, or a
                     cluster with the configured durability's replicas) and put its keys in place
  rebuild            rebuild the PostgreSQL views from the stream and swap them in atomically
  approvals pending  branch events awaiting a manager's approval
  quarantine list    list the journal messages the projector set aside
  keys create --id ID --role ROLE [--channels A,B] | keys list | keys revoke ID
                     API keys of a running serve (OTPLEDGER_URL, OTPLEDGER_TOKEN; default the
                     data directory's admin.token); the token of a new key is printed once
  bench              measure the ledger against the raw servers of this machine in one run
                     (embedded NATS, a PostgreSQL database it creates); --quick under a minute
  version            print the module version, the VCS revision the binary was built from and
                     the Go version (also --version)

Data goes to stdout, progress and logs to stderr. The commands other than serve open the same
journal as serve (stop an embedded serve first: its data directory is locked while it runs).

Run 'otpledger <command> --help' for a command's flags and environment variables.
Exit codes: 0 success, 1 failure, 2 bad usage.
`

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	inv, rest, problem := parseCommand(args)
	if problem != "" {
		fmt.Fprintln(stderr, problem)
		return 2
	}
	if inv.cmd == "version" {
		fmt.Fprintln(stdout, version())
		return 0
	}
	do := inv.action(ctx, stdout, stderr)
	if do == nil {
		fmt.Fprintf(stderr, "otpledger: unknown command %q\n\n%s", inv.cmd, usage)
		return 2
	}
	fs := inv.flagSet(stderr)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(inv.cfg.envErrs) > 0 {
		fmt.Fprintf(stderr, "otpledger %s: %v\n", inv.cmd, errors.Join(inv.cfg.envErrs...))
		return 2
	}
	if problem := usageProblem(inv.cmd, fs, &inv.af, &inv.bf, &inv.kf); problem != "" {
		fmt.Fprintf(stderr, "otpledger %s: %s\n", inv.cmd, problem)
		fs.Usage()
		return 2
	}
	if err := do(); err != nil {
		fmt.Fprintf(stderr, "otpledger %s: %v\n", inv.cmd, err)
		return 1
	}
	return 0
}

// invocation is one command line: the command (two words for the grouped
// ones, e.g. "keys create"), its positional arguments and its flags' values.
type invocation struct {
	cmd        string
	positional []string
	cfg        config
	af         auditFlags
	bf         benchFlags
	kf         keyFlags
}

// parseCommand splits args into the command with its positional arguments
// and the flags that follow; problem names a malformed command.
func parseCommand(args []string) (inv *invocation, rest []string, problem string) {
	inv = &invocation{cmd: args[0]}
	rest = args[1:]
	switch inv.cmd {
	case "quarantine", "approvals":
		want := map[string]string{"quarantine": "list", "approvals": "pending"}[inv.cmd]
		if len(rest) == 0 || rest[0] != want {
			return nil, nil, fmt.Sprintf("otpledger %s: want 'otpledger %[1]s %s'", inv.cmd, want)
		}
		inv.cmd, rest = inv.cmd+" "+want, rest[1:]
	case "keys":
		verbs := map[string]int{"create": 0, "list": 0, "revoke": 1}
		n, ok := 0, false
		if len(rest) > 0 {
			n, ok = verbs[rest[0]]
		}
		if !ok || len(rest) < 1+n {
			return nil, nil, "otpledger keys: want 'keys create --id ID --role ROLE', 'keys list' or 'keys revoke ID'"
		}
		inv.cmd, inv.positional, rest = "keys "+rest[0], rest[1:1+n], rest[1+n:]
	case "history":
		k := 0
		if len(rest) > 0 {
			k = map[string]int{"device": 3, "customer": 2, "person": 2, "key": 2, "lookup": 2}[rest[0]]
		}
		if len(rest) < 2 || k == 0 || len(rest) < k {
			return nil, nil, "otpledger history: want 'history device VENDOR SERIAL', 'history customer CUSTOMER_NO', 'history key ID' or 'history lookup PRINCIPAL'"
		}
		inv.positional, rest = rest[:k], rest[k:]
	}
	return inv, rest, ""
}

// action returns what the command does once its flags are parsed; nil for
// an unknown command.
func (inv *invocation) action(ctx context.Context, stdout, stderr io.Writer) func() error {
	cfg, af := &inv.cfg, &inv.af
	switch inv.cmd {
	case "serve":
		return func() error { return serve(ctx, cfg, stdout, stderr) }
	case "project":
		return func() error { return projectOnly(ctx, cfg, stderr) }
	case "quarantine list":
		return func() error { return quarantineList(ctx, cfg, stdout, stderr) }
	case "approvals pending":
		return func() error { return approvalsCmd(ctx, cfg, stdout, stderr) }
	case "verify":
		return func() error { return verifyCmd(ctx, cfg, af, stdout, stderr) }
	case "export":
		return func() error { return exportCmd(ctx, cfg, af, stdout, stderr) }
	case "rebuild":
		return func() error { return rebuildCmd(ctx, cfg, stderr) }
	case "bench":
		return func() error { return benchCmd(ctx, cfg, &inv.bf, stdout, stderr) }
	case "import":
		return func() error { return importCmd(ctx, cfg, af, stderr) }
	case "claims":
		return func() error { return claimsCmd(ctx, cfg, stdout, stderr) }
	case "backup":
		return func() error { return backupCmd(ctx, cfg, af.out, stdout, stderr) }
	case "restore":
		return func() error { return restoreCmd(ctx, cfg, af.in, stdout, stderr) }
	case "keys create", "keys list", "keys revoke":
		verb := strings.TrimPrefix(inv.cmd, "keys ")
		return func() error {
			return keysCmd(ctx, cfg, &inv.kf, verb, strings.Join(inv.positional, ""), stdout, stderr)
		}
	case "history":
		p := inv.positional
		ref := events.AggregateRef{Kind: events.AggregateKind(p[0]), Key: p[len(p)-1]}
		if p[0] == "device" {
			ref = events.DeviceRef(p[1], p[2])
		}
		return func() error { return historyCmd(ctx, cfg, af, ref, stdout, stderr) }
	}
	return nil
}

// flagSet declares the command's flags, and only its own.
func (inv *invocation) flagSet(stderr io.Writer) *flag.FlagSet {
	cmd, af, bf, kf := inv.cmd, &inv.af, &inv.bf, &inv.kf
	fs := flag.NewFlagSet("otpledger "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	inv.cfg.flags(fs)
	switch cmd {
	case "serve":
		inv.cfg.serveFlags(fs)
	case "verify":
		fs.StringVar(&af.format, "format", "table", "table | json")
	case "history":
		fs.StringVar(&af.format, "format", "table", "table | json")
		fs.StringVar(&af.asOf, "as-of", "", "state and events as of this RFC 3339 instant (default: now)")
		fs.IntVar(&af.limit, "limit", 0, "print at most this many events (0: all)")
		fs.Uint64Var(&af.after, "after", 0, "print the events after this stream sequence (the next page)")
	case "import":
		fs.StringVar(&af.in, "in", "", "JSON lines file of 'otpledger export' (required; read twice: checked whole, then appended)")
	case "backup":
		fs.StringVar(&af.out, "out", "", "a new directory for the backup (required)")
	case "restore":
		fs.StringVar(&af.in, "in", "", "the directory of 'otpledger backup' (required)")
	case "export":
		fs.StringVar(&af.format, "format", "jsonl", "jsonl | csv")
		fs.StringVar(&af.from, "from", "", "first instant (RFC 3339, inclusive; default: the beginning)")
		fs.StringVar(&af.to, "to", "", "last instant (RFC 3339, exclusive; default: the end)")
		fs.StringVar(&af.out, "out", "", "file to write (default: stdout)")
	case "bench":
		fs.BoolVar(&bf.quick, "quick", false, "small sizes, under a minute: checks the benchmark works (figures mean little)")
		fs.IntVar(&bf.runs, "runs", 3, "runs per row; the table gives medians and the spread")
		fs.IntVar(&bf.events, "events", 0, "events pre-filled in the stream (default 1,000,000; quick 20,000)")
		fs.StringVar(&bf.out, "out", "", "also write <date>-<mode>.md and .json into this directory, e.g. bench/results")
		fs.StringVar(&bf.format, "format", "markdown", "markdown | json (stdout)")
		fs.StringVar(&bf.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
		fs.BoolVar(&bf.keep, "keep", false, "keep the data directory (stream, views' snapshot) and say where, to run or profile serve against it")
		fs.StringVar(&bf.rows, "rows", "", "run only the steps whose names contain one of these comma-separated words, e.g. live,rebuild (default: all)")
		fs.StringVar(&bf.startupSizes, "startup-sizes", "", "stream sizes (events, comma-separated) at which serve's start-up from the snapshot is also measured, each on a stream generated for it, or none (default 100000,3000000; quick 5000)")
	}
	if strings.HasPrefix(cmd, "keys ") {
		fs.StringVar(&kf.url, "url", env("OTPLEDGER_URL", "http://127.0.0.1:8080"), "the running serve (env OTPLEDGER_URL)")
		fs.StringVar(&kf.token, "token", env("OTPLEDGER_TOKEN", ""), "an admin's token (env OTPLEDGER_TOKEN, preferred: a flag's value is visible to every user in the process list; default: <data dir>/admin.token)")
	}
	if cmd == "keys create" {
		fs.StringVar(&kf.id, "id", "", "the key's id: the principal's staff, approver or SYSTEM actor id (required)")
		fs.StringVar(&kf.role, "role", "", "teller | manager | producer | auditor | operator | admin (required)")
		fs.StringVar(&kf.channels, "channels", "", "a producer's channels, comma-separated, e.g. AUTH or MTS,MOBILE_WEB")
		fs.StringVar(&kf.expires, "expires", "", "when the key stops working (RFC 3339; default: never)")
		fs.StringVar(&kf.certFile, "cert", "", "a PEM client certificate whose subject and issuer authenticate as this key (mutual TLS)")
		fs.BoolVar(&kf.certPin, "cert-pin", false, "with --cert: also pin the certificate's public key (a renewed certificate with a new key then needs a new key)")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: otpledger %s [flags]\n\nFlags (each defaults to its environment variable):\n", cmd)
		printDefaults(fs, os.Environ())
	}
	return fs
}

// printDefaults is fs.PrintDefaults with every default that an environment
// variable set shown as that variable's name, never its value: tokens and
// URLs with passwords come from there, and --help or any flag typo prints
// this to stderr, which ends up in logs.
func printDefaults(fs *flag.FlagSet, environ []string) {
	fs.VisitAll(func(f *flag.Flag) {
		for _, kv := range environ {
			name, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(name, "OTPLEDGER_") && v != "" && v == f.DefValue {
				f.DefValue = "(set in $" + name + ")"
				return
			}
		}
	})
	fs.PrintDefaults()
}

// usageProblem names what is wrong with a command line that parsed: extra
// arguments, a value out of its set, a missing required flag.
func usageProblem(cmd string, fs *flag.FlagSet, af *auditFlags, bf *benchFlags, kf *keyFlags) string {
	formats := map[string][]string{"verify": {"table", "json"}, "history": {"table", "json"}, "export": {"jsonl", "csv"}, "bench": {"markdown", "json"}}
	format := af.format
	if cmd == "bench" {
		format = bf.format
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case formats[cmd] != nil && !slices.Contains(formats[cmd], format):
		return fmt.Sprintf("--format %q: want %s", format, strings.Join(formats[cmd], " or "))
	case af.limit < 0:
		return "--limit: want 0 (all) or more"
	case cmd == "import" && af.in == "":
		return "--in is required (the JSON lines file of 'otpledger export')"
	case cmd == "backup" && af.out == "":
		return "--out is required (a new directory)"
	case cmd == "restore" && af.in == "":
		return "--in is required (the directory of 'otpledger backup')"
	case cmd == "keys create" && (kf.id == "" || kf.role == ""):
		return "--id and --role are required"
	}
	return ""
}

// quarantineList prints the quarantined messages: from PostgreSQL when
// configured, else by folding the embedded stream (serve must not be
// running on the same data directory).
func quarantineList(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	cfg.projector = false
	n, err := open(ctx, cfg, newLogger("warn", stderr), stderr, reads)
	if err != nil {
		return err
	}
	defer n.close()
	q, err := n.store.Quarantine(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQUENCE\tSUBJECT\tERROR")
	for _, x := range q {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", x.Seq, x.Subject, x.Error)
	}
	return tw.Flush()
}

// version names the build: the module version and the VCS revision and time
// that go build stamps ("+modified" when the tree had changes), and Go's.
func version() string {
	b, at := buildInfo()
	if b.Version == "" {
		return "otpledger (no build information)"
	}
	out := fmt.Sprintf("otpledger %s, revision %s", b.Version, b.Revision)
	if at != "" {
		out += " of " + at
	}
	return out + ", " + b.GoVersion
}

// buildInfo reads the binary's module version, VCS revision ("+modified"
// when the tree had changes; "unknown" when not stamped) and commit time.
func buildInfo() (httpapi.BuildInfo, string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return httpapi.BuildInfo{}, ""
	}
	vcs := map[string]string{"vcs.revision": "unknown"}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	rev := vcs["vcs.revision"]
	if vcs["vcs.modified"] == "true" {
		rev += "+modified"
	}
	return httpapi.BuildInfo{Version: bi.Main.Version, Revision: rev, GoVersion: bi.GoVersion}, vcs["vcs.time"]
}
