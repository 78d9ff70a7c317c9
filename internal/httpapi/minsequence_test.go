package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpledger/otpledger/projections"
)

// countedViews counts the views' position reads: what a min_sequence wait
// costs the store (a PostgreSQL query each when views are shared).
type countedViews struct {
	projections.Reader
	reads atomic.Int64
}

func (v *countedViews) Position(ctx context.Context) (uint64, error) {
	v.reads.Add(1)
	return v.Reader.Position(ctx)
}

// TestMinSequenceWaitIsBounded: over views no projector feeds (a stopped
// projector), a min_sequence beyond the stream's end is 400 at once after
// one position read, and one within the stream waits the 2 s bound with at
// most 16 reads of the views' position (polling every 5 ms made ~400).
func TestMinSequenceWaitIsBounded(t *testing.T) {
	t.Parallel()
	views := &countedViews{Reader: projections.NewMemory()}
	a := newTestAPI(t, func(c *Config) { c.Views = views })
	last, err := a.j.LastSequence(context.Background())
	if err != nil || last == 0 {
		t.Fatalf("the stream's last sequence: %d %v", last, err)
	}
	ask := func(seq uint64) (int, string, time.Duration, int64) {
		views.reads.Store(0)
		start := time.Now()
		status, out := a.do(t, "GET", fmt.Sprintf("/v1/devices/OTP/000111222333/institutions?min_sequence=%d", seq), "", "", "Authorization", "Bearer "+a.tokens["S100"])
		return status, out, time.Since(start), views.reads.Load()
	}
	status, out, took, reads := ask(last + 1_000_000)
	t.Logf("min_sequence far beyond the stream's end (%d): %d in %v after %d position reads", last, status, took, reads)
	if status != 400 || !strings.Contains(out, `"field":"min_sequence"`) || took > 1500*time.Millisecond || reads > 1 { // the old wait: 2 s
		t.Errorf("min_sequence beyond the stream's end: %d %s in %v, %d position reads; want 400 at once", status, out, took, reads)
	}
	status, out, took, reads = ask(last)
	t.Logf("min_sequence %d the views never reach: %d in %v after %d position reads", last, status, took, reads)
	if status != 200 || took < 2*time.Second || took > 4*time.Second || reads > 16 {
		t.Errorf("min_sequence within the stream, views behind: %d %s in %v, %d position reads; want 200 after the 2 s bound, at most 16 reads", status, out, took, reads)
	}
}

// TestReadinessCostsTheStoreLittle: /readyz needs no credentials, so 100
// requests in a burst read the views' position at most a few times (what
// it asked is reused for 250 ms), not once each.
func TestReadinessCostsTheStoreLittle(t *testing.T) {
	t.Parallel()
	views := &countedViews{Reader: projections.NewMemory()}
	a := newTestAPI(t, func(c *Config) { c.Views = views })
	start := time.Now()
	for range 100 {
		if status, out := a.do(t, "GET", "/readyz", "", "", "Authorization", ""); status != 200 {
			t.Fatalf("readyz: %d %s", status, out)
		}
	}
	took, reads := time.Since(start), views.reads.Load()
	most := 2 + int64(took/(250*time.Millisecond))
	t.Logf("100 /readyz in %v: %d position reads (at most %d)", took, reads, most)
	if reads > most {
		t.Errorf("100 /readyz in %v read the views' position %d times, at most %d", took, reads, most)
	}
}
