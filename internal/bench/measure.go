package bench

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// sample is one run of one operation: its value (a rate, or a single
// measurement such as a size) and its latency percentiles.
type sample struct {
	value    float64
	p50, p99 time.Duration
}

// op is one operation of worker w, the i-th of the run.
type op func(ctx context.Context, w, i int) error

// measure runs n operations over workers goroutines, each taking the next
// index, and returns the rate (operations per second) and the latencies.
func measure(ctx context.Context, workers, n int, do op) (sample, error) {
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	g, ctx := errgroup.WithContext(ctx)
	start := time.Now()
	for w := range workers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				t0 := time.Now()
				if err := do(ctx, w, i); err != nil {
					return err
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	if err := g.Wait(); err != nil {
		return sample{}, err
	}
	s := latencies(slices.Concat(lat...))
	s.value = float64(n) / time.Since(start).Seconds()
	return s, nil
}

// latencies returns a sample with the p50 and p99 of lat.
func latencies(lat []time.Duration) sample {
	if len(lat) == 0 {
		return sample{}
	}
	slices.Sort(lat)
	return sample{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

// runs measures each of the named operations runs times, interleaved (a,
// b, a, b, …) so that the machine's drift weighs on all of them alike.
func runs(ctx context.Context, n int, ops ...func(ctx context.Context) (sample, error)) ([][]sample, error) {
	out := make([][]sample, len(ops))
	for range n {
		for k, o := range ops {
			s, err := o(ctx)
			if err != nil {
				return nil, err
			}
			out[k] = append(out[k], s)
		}
	}
	return out, nil
}
