package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// The benchmarks share one embedded server with a stream pre-filled with
// OTPLEDGER_BENCH_EVENTS events (default 1,000,000) over 10,000 devices,
// and print each ledger figure beside the raw JetStream operation measured
// in the same run, as a ratio (x-raw). Run:
//
//	go test ./aggregates/ledger -run '^$' -bench . -benchtime 5000x
const benchDevices = 10_000

var (
	benchOnce sync.Once
	benchJ    *journal.Journal
	benchErr  error
	rawRate   sync.Map // name -> ops/s of the raw baseline
)

func benchJournal(b *testing.B) *journal.Journal {
	benchOnce.Do(func() {
		total := 1_000_000
		if s := os.Getenv("OTPLEDGER_BENCH_EVENTS"); s != "" {
			total, _ = strconv.Atoi(s)
		}
		dir, _ := os.MkdirTemp("", "otpledger-bench")
		var e *journal.Embedded
		if e, benchErr = journal.RunEmbedded(journal.EmbeddedConfig{DataDir: dir}); benchErr != nil {
			return
		}
		if benchJ, benchErr = journal.Open(context.Background(), e.Conn, journal.Config{}); benchErr != nil {
			return
		}
		start := time.Now()
		benchErr = prefill(benchJ, total)
		fmt.Fprintf(os.Stderr, "pre-filled %d events over %d devices in %v\n", total, benchDevices, time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchJ
}

func benchSerial(i int) string { return fmt.Sprintf("BENCH%07d", i) }

// prefill appends per device one registration and then error increments and
// resets, each message carrying its snapshot as the ledger writes it,
// interleaved across devices as real traffic is.
func prefill(j *journal.Journal, total int) error {
	js := j.JetStream()
	p := aggregates.DefaultPolicy(home)
	states := make([]aggregates.Device, benchDevices)
	for i := range states {
		states[i] = aggregates.NewDevice("OTP", benchSerial(i))
	}
	t := businessNow.Add(-24 * time.Hour)
	var futures []jetstream.PubAckFuture
	for n := range total {
		i := n % benchDevices
		d := states[i]
		var cmd aggregates.DeviceCommand = aggregates.IncrementError{Meta: auth("")}
		switch {
		case !d.Known():
			cmd = aggregates.Register{Meta: center("KB001")}
		case d.ErrorCount >= 9:
			cmd = aggregates.ResetErrors{Meta: center("KB001")}
		}
		m := cmd.Metadata()
		m.EventID = uuid.New()
		evs, err := d.Decide(aggregates.WithMeta(cmd, m, nil), t, &p)
		if err != nil {
			return err
		}
		states[i] = aggregates.Fold(d, evs, time.Time{})
		state, _ := marshal(snapshot[aggregates.Device]{V: snapshotVersion, State: states[i]})
		data, err := events.EncodeCommit(events.Commit{Events: evs})
		if err != nil {
			return err
		}
		msg := nats.NewMsg(events.Subject(d.Ref))
		msg.Data = data
		msg.Header.Set(journal.StateHeader, string(state))
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			return err
		}
		futures = append(futures, f)
		if len(futures) == 4096 || n == total-1 {
			if err := journal.WaitAcks(context.Background(), futures); err != nil {
				return err
			}
			futures = futures[:0]
		}
	}
	return nil
}

// measure runs op b.N times over producers goroutines and reports ops/s,
// p50 and p99; with baseline set, also the ratio to that raw rate.
func measure(b *testing.B, name string, producers int, baseline string, op func(worker, i int) error) {
	b.Helper()
	lat := make([][]time.Duration, producers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "ops/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	if baseline == "" {
		rawRate.Store(fmt.Sprintf("%s/p%d", name, producers), rate)
		return
	}
	if raw, ok := rawRate.Load(fmt.Sprintf("%s/p%d", baseline, producers)); ok {
		b.ReportMetric(rate/raw.(float64), "x-raw")
	}
}

// rawMessage returns, for subject, the message the ledger would write for an
// error increment: the same body and a state header of the same size. The
// raw baselines publish it, so that they measure the server on the same
// bytes and the ratio measures what the ledger adds.
func rawMessage(subject string) *nats.Msg {
	e := events.Event{ID: uuid.New(), OccurredAt: businessNow, RecordedAt: businessNow,
		Aggregate: events.DeviceRef("RAW", "RAWSERIAL01"), Institution: home, Channel: events.ChannelAuth,
		Actor: events.Actor{Role: events.RoleSystem, ID: "AUTH"}, Payload: events.ErrorIncremented{CountAfter: 1}}
	data, _ := events.EncodeCommit(events.Commit{Events: []events.Event{e}})
	d := aggregates.NewDevice("RAW", "RAWSERIAL01")
	d.Registrations = map[string]aggregates.Registration{"KB001": {Since: businessNow}}
	d = d.Evolve(e)
	state, _ := marshal(snapshot[aggregates.Device]{V: snapshotVersion, State: d})
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(journal.StateHeader, string(state))
	return m
}

// BenchmarkSingleAggregate: error increments (and the resets that keep
// devices unlocked) through the ledger, against raw CAS publishes.
func BenchmarkSingleAggregate(b *testing.B) {
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("raw-cas-publish/p%d", producers), func(b *testing.B) {
			j := benchJournal(b)
			js := j.JetStream()
			last := make([]map[int]uint64, producers)
			for w := range last {
				last[w] = map[int]uint64{}
			}
			run := rand.IntN(1 << 30)
			measure(b, "cas", producers, "", func(w, i int) error {
				k := i % 1000
				msg := rawMessage(fmt.Sprintf("otpledger.device.RAW.R%dW%dK%d", run, w, k))
				ack, err := js.PublishMsg(context.Background(), msg, jetstream.WithExpectLastSequencePerSubject(last[w][k]))
				if err == nil {
					last[w][k] = ack.Sequence
				}
				return err
			})
		})
		b.Run(fmt.Sprintf("ledger-error-increment/p%d", producers), func(b *testing.B) {
			l := warmLedger(b)
			measure(b, "ledger", producers, "cas", func(w, i int) error {
				// Each producer owns the devices w, w+8, …, so its commands mostly do not conflict.
				serial := benchSerial((i/producers*8 + w) % benchDevices)
				_, err := l.Device(context.Background(), "OTP", serial, aggregates.IncrementError{Meta: auth("")})
				if aggregates.RuleOf(err) == aggregates.RuleHWLock {
					_, err = l.Device(context.Background(), "OTP", serial, aggregates.ResetErrors{Meta: center("KB001")})
				}
				return err
			})
		})
	}
}

var (
	warmOnce sync.Once
	warm     *Ledger
)

// warmLedger returns a ledger whose cache holds every pre-filled device, so
// that command benchmarks measure commands, not cold loads (BenchmarkLoad
// measures those).
func warmLedger(b *testing.B) *Ledger {
	warmOnce.Do(func() {
		warm = newLedger(b, benchJournal(b))
		for i := range benchDevices {
			if _, _, err := warm.LoadDevice(context.Background(), "OTP", benchSerial(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	return warm
}

// BenchmarkTwoAggregates: home registrations and cancellations (device +
// customer in one atomic batch) against raw 2-message atomic batches.
func BenchmarkTwoAggregates(b *testing.B) {
	b.Run("raw-atomic-batch/p1", func(b *testing.B) {
		js := benchJournal(b).JetStream()
		run := rand.IntN(1 << 30)
		measure(b, "batch", 1, "", func(_, i int) error {
			msgs := []*nats.Msg{rawMessage(fmt.Sprintf("otpledger.device.RAW.B%dA%d", run, i)), rawMessage(fmt.Sprintf("otpledger.customer.B%dC%d", run, i))}
			for _, m := range msgs {
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
			}
			_, err := jetstreamext.PublishMsgBatch(context.Background(), js, msgs)
			return err
		})
	})
	b.Run("ledger-home-registration/p1", func(b *testing.B) {
		l := newLedger(b, benchJournal(b))
		run := rand.IntN(1 << 20)
		for c := range 64 {
			profile(b, l, fmt.Sprintf("H%dC%d", run, c))
		}
		// Customer i%64 registers a device in even rounds and cancels it in odd
		// ones: every operation is one two-aggregate batch.
		measure(b, "ledger", 1, "batch", func(_, i int) error {
			round := i / 64
			cust, serial := fmt.Sprintf("H%dC%d", run, i%64), fmt.Sprintf("H%dC%dR%d", run, i%64, round/2)
			var err error
			if round%2 == 0 {
				_, err = l.Device(context.Background(), "OTP", serial, aggregates.Register{Meta: branch(""), CustomerNo: cust})
			} else {
				_, err = l.Device(context.Background(), "OTP", serial, aggregates.Cancel{Meta: branch("")})
			}
			return err
		})
	})
}

// BenchmarkLoad: cold loads (empty cache: one snapshot lookup) and warm
// loads (cache hits) against the raw load of a device's events by subject.
func BenchmarkLoad(b *testing.B) {
	b.Run("raw-load-by-subject/p1", func(b *testing.B) {
		j := benchJournal(b)
		measure(b, "load", 1, "", func(_, i int) error {
			for _, err := range j.Read(context.Background(), events.DeviceRef("OTP", benchSerial(rand.IntN(benchDevices))), 1) {
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("ledger-cold-load/p1", func(b *testing.B) {
		j := benchJournal(b)
		measure(b, "ledger", 1, "load", func(_, i int) error {
			l := newLedger(b, j) // a fresh, empty cache every time
			_, _, err := l.LoadDevice(context.Background(), "OTP", benchSerial(rand.IntN(benchDevices)))
			return err
		})
	})
	b.Run("ledger-warm-load/p1", func(b *testing.B) {
		l := newLedger(b, benchJournal(b))
		for i := range 1000 {
			if _, _, err := l.LoadDevice(context.Background(), "OTP", benchSerial(i)); err != nil {
				b.Fatal(err)
			}
		}
		measure(b, "ledger", 1, "load", func(_, i int) error {
			_, _, err := l.LoadDevice(context.Background(), "OTP", benchSerial(i%1000))
			return err
		})
	})
}
