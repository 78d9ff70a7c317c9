package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Figure is one measured operation over the runs: the median of the runs'
// rates (or of their single values) with its spread, and the medians of
// the runs' latency percentiles.
type Figure struct {
	Name   string        `json:"name"`
	Unit   string        `json:"unit"`             // of Median, Min, Max: "ev/s", "req/s", "MiB", "s", …
	Median float64       `json:"median,omitempty"` // 0 for latency-only figures
	Min    float64       `json:"min,omitempty"`
	Max    float64       `json:"max,omitempty"`
	P50    time.Duration `json:"p50_ns,omitempty"`
	P99    time.Duration `json:"p99_ns,omitempty"`
	Runs   int           `json:"runs"`
}

// Row is one workload: the ledger's figure beside its baselines, measured
// in the same run, and the target it is held to.
type Row struct {
	Workload  string   `json:"workload"`
	Ledger    Figure   `json:"ledger"`
	Baselines []Figure `json:"baselines,omitempty"`
	// Ratio is the ledger against the first baseline: rate over rate, or,
	// for latency rows, baseline p99 over ledger p99 (both: higher is better).
	Ratio  float64 `json:"ratio,omitempty"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
	Note   string  `json:"note,omitempty"`
}

// Machine describes where the report was measured.
type Machine struct {
	Date       string `json:"date"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	OS         string `json:"os"`
	Go         string `json:"go"`
	NATSServer string `json:"nats_server"`
	PostgreSQL string `json:"postgresql"`
}

// Report is a whole run of the benchmark.
type Report struct {
	Machine   Machine       `json:"machine"`
	Quick     bool          `json:"quick"`
	Runs      int           `json:"runs"`
	Events    int           `json:"events"`
	Devices   int           `json:"devices"`
	Customers int           `json:"customers"`
	Prefill   time.Duration `json:"prefill_ns"`
	Took      time.Duration `json:"took_ns"`
	Rows      []Row         `json:"rows"`
}

// figure summarises the samples of one operation over the runs.
func figure(name, unit string, samples []sample) Figure {
	f := Figure{Name: name, Unit: unit, Runs: len(samples)}
	if len(samples) == 0 {
		return f
	}
	median := func(get func(sample) float64) (med, lo, hi float64) {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = get(s)
		}
		slices.Sort(v)
		return v[len(v)/2], v[0], v[len(v)-1]
	}
	f.Median, f.Min, f.Max = median(func(s sample) float64 { return s.value })
	p50, _, _ := median(func(s sample) float64 { return float64(s.p50) })
	p99, _, _ := median(func(s sample) float64 { return float64(s.p99) })
	f.P50, f.P99 = time.Duration(p50), time.Duration(p99)
	return f
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report as a Markdown table with the machine and
// a list of the missed targets.
func (r *Report) WriteMarkdown(w io.Writer) error {
	m := r.Machine
	mode := "full"
	if r.Quick {
		mode = "quick (sizes too small for the targets: check completeness, not figures)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "otpledger bench, %s: %s, %d cores, %s, Go %s, nats-server %s (embedded), PostgreSQL %s.\n\n",
		m.Date, m.CPU, m.Cores, m.OS, m.Go, m.NATSServer, m.PostgreSQL)
	fmt.Fprintf(&b, "Mode %s; stream pre-filled with %s events over %s devices and %s customers in %s; medians of %d runs (spread min–max); took %s.\n\n",
		mode, count(float64(r.Events)), count(float64(r.Devices)), count(float64(r.Customers)), r.Prefill.Round(time.Second), r.Runs, r.Took.Round(time.Second))
	b.WriteString("| workload | ledger | baseline in the same run | ratio | target | |\n|---|---|---|---|---|---|\n")
	var missed []string
	for _, row := range r.Rows {
		var bases []string
		for _, f := range row.Baselines {
			bases = append(bases, f.String())
		}
		ratio := "–"
		if row.Ratio != 0 {
			ratio = fmt.Sprintf("%.2f×", row.Ratio)
		}
		mark := "met"
		if !row.Met {
			mark, missed = "**missed**", append(missed, row.Workload)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Workload, row.Ledger.String(), orDash(strings.Join(bases, "; ")), ratio, row.Target, mark)
	}
	var notes []string
	for _, row := range r.Rows {
		if row.Note != "" {
			notes = append(notes, fmt.Sprintf("- %s: %s", row.Workload, row.Note))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n" + strings.Join(notes, "\n") + "\n")
	}
	if len(missed) > 0 {
		fmt.Fprintf(&b, "\nTargets missed: %s.\n", strings.Join(missed, "; "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders a figure for the table: "name: median unit (min–max), p50 …, p99 …".
func (f Figure) String() string {
	var parts []string
	if f.Median != 0 || f.P50 == 0 {
		v := fmt.Sprintf("%s %s", count(f.Median), f.Unit)
		if f.Runs > 1 && f.Max > f.Min {
			v += fmt.Sprintf(" (%s–%s)", count(f.Min), count(f.Max))
		}
		parts = append(parts, v)
	}
	if f.P50 != 0 {
		parts = append(parts, "p50 "+dur(f.P50), "p99 "+dur(f.P99))
	}
	s := strings.Join(parts, ", ")
	if f.Name != "" {
		s = f.Name + ": " + s
	}
	return s
}

// count renders a number with thousands separators (one decimal under 100).
func count(v float64) string {
	if math.Abs(v) < 100 && v != math.Trunc(v) {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
