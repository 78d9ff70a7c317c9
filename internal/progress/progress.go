// Package progress reports a long job's advance on stderr: a redrawn bar with
// rate and ETA on a terminal, a plain line every few seconds otherwise (logs,
// pipes). It is safe for concurrent use.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar reports done of total items for one job.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	tty      bool
	start    time.Time
	last     time.Time
	done     uint64
	total    uint64
	finished bool
}

// New returns a bar writing to w (a terminal gets a redrawn bar).
func New(w io.Writer, label string) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &Bar{w: w, label: label, tty: tty, start: now, last: now.Add(-time.Hour)}
}

// Update records progress; it draws at most ten times a second on a
// terminal, every five seconds elsewhere.
func (b *Bar) Update(done, total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	every := 5 * time.Second
	if b.tty {
		every = 100 * time.Millisecond
	}
	if time.Since(b.last) >= every || done == total {
		b.draw()
	}
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.draw()
	if b.tty {
		fmt.Fprintln(b.w)
	}
}

func (b *Bar) draw() {
	b.last = time.Now()
	elapsed := time.Since(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.done) / elapsed
	}
	eta := "--"
	if rate > 0 && b.total > b.done {
		eta = (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second).String()
	}
	frac := 1.0
	if b.total > 0 {
		frac = float64(b.done) / float64(b.total)
	}
	if !b.tty {
		fmt.Fprintf(b.w, "%s: %d/%d (%.0f%%) %.0f/s ETA %s\n", b.label, b.done, b.total, 100*frac, rate, eta)
		return
	}
	const width = 30
	fill := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %d/%d %.0f/s ETA %s   ", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		100*frac, b.done, b.total, rate, eta)
}
