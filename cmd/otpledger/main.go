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
	"text/tabwriter"
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
  quarantine list    list the journal messages the projector set aside
  version            print the version

Run 'otpledger <command> --help' for a command's flags and environment variables.
Exit codes: 0 success, 1 failure, 2 bad usage.
`

func main() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "quarantine" {
		if len(rest) == 0 || rest[0] != "list" {
			fmt.Fprintln(stderr, "otpledger quarantine: want 'quarantine list'")
			return 2
		}
		cmd, rest = "quarantine list", rest[1:]
	}
	var cfg config
	fs := flag.NewFlagSet("otpledger "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: otpledger %s [flags]\n\nFlags (each defaults to its environment variable):\n", cmd)
		fs.PrintDefaults()
	}
	var do func() error
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "otpledger dev")
		return 0
	case "serve":
		do = func() error { return serve(ctx, &cfg, stdout, stderr) }
	case "project":
		do = func() error { return projectOnly(ctx, &cfg, stderr) }
	case "quarantine list":
		do = func() error { return quarantineList(ctx, &cfg, stdout, stderr) }
	default:
		fmt.Fprintf(stderr, "otpledger: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := do(); err != nil {
		fmt.Fprintf(stderr, "otpledger %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// quarantineList prints the quarantined messages: from PostgreSQL when
// configured, else by folding the embedded stream (serve must not be
// running on the same data directory).
func quarantineList(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	cfg.projector = false
	n, err := open(ctx, cfg, newLogger("warn", stderr), stderr)
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
