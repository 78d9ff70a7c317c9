package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/otpledger/otpledger/internal/bench"
)

// benchFlags are the flags of `otpledger bench`.
type benchFlags struct {
	quick      bool
	runs       int
	events     int
	out        string
	format     string
	cpuProfile string
	rows       string
	keep       bool
	// startupSizes: "" the default, "none", or comma-separated event counts
	startupSizes string
}

// sizes parses --startup-sizes.
func (bf *benchFlags) sizes() ([]int, error) {
	switch bf.startupSizes {
	case "":
		return nil, nil
	case "none":
		return []int{}, nil
	}
	var out []int
	for f := range strings.SplitSeq(bf.startupSizes, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 0, 32)
		if err != nil {
			return nil, fmt.Errorf("--startup-sizes %q: want comma-separated event counts, or none", bf.startupSizes)
		}
		out = append(out, int(n))
	}
	return out, nil
}

// benchCmd runs the benchmark and prints its table (or JSON); with --out it
// also writes both forms into that directory, named by date and mode.
func benchCmd(ctx context.Context, cfg *config, bf *benchFlags, stdout, stderr io.Writer) error {
	if bf.format != "markdown" && bf.format != "json" {
		return fmt.Errorf("--format %q: want markdown or json", bf.format)
	}
	if bf.cpuProfile != "" {
		f, err := os.Create(bf.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	sizes, err := bf.sizes()
	if err != nil {
		return err
	}
	r, err := bench.Run(ctx, bench.Config{Quick: bf.quick, Runs: bf.runs, Events: bf.events, DatabaseURL: cfg.databaseURL, Progress: stderr, Keep: bf.keep,
		Rows: strings.FieldsFunc(bf.rows, func(r rune) bool { return r == ',' }), StartupSizes: sizes})
	if err != nil {
		return err
	}
	if bf.out != "" {
		mode := "full"
		if bf.quick {
			mode = "quick"
		}
		if err := os.MkdirAll(bf.out, 0o755); err != nil {
			return err
		}
		base := filepath.Join(bf.out, r.Machine.Date+"-"+mode)
		for ext, write := range map[string]func(io.Writer) error{".md": r.WriteMarkdown, ".json": r.WriteJSON} {
			if err := writeFile(base+ext, write); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "bench: wrote %s.md and %[1]s.json\n", base)
	}
	if bf.format == "json" {
		return r.WriteJSON(stdout)
	}
	return r.WriteMarkdown(stdout)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
