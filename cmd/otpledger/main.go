// Command otpledger is the OTP lifecycle ledger: an event-sourced journal of
// hardware and mobile OTP events on NATS JetStream with PostgreSQL or
// in-memory projections. This file is the one composition root: it reads
// flags and environment and wires the adapters.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `otpledger: the OTP lifecycle ledger (hardware registrations, loss reports,
recoveries, error counts and mobile OTP), event-sourced on NATS JetStream.

Usage:
  otpledger <command> [flags]

Commands:
  serve     run the ledger (not yet: lands with the journal and HTTP API)
  version   print the version

Run 'otpledger <command> --help' for a command's flags.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "otpledger dev")
		return 0
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		fmt.Fprintln(stderr, "otpledger serve: not yet — the journal and HTTP API land in the next issues; run the tests meanwhile")
		return 1
	}
	fmt.Fprintf(stderr, "otpledger: unknown command %q\n\n%s", args[0], usage)
	return 2
}
