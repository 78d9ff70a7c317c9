package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/fixture"
)

// registered returns a journal and a ledger with 64 registered devices,
// and the serial of the i-th one (in turn).
func registered(b *testing.B) (*journal.Journal, *Ledger, func(i int) string) {
	j := journaltest.Journal(b)
	l := newLedger(b, j)
	const devices = 64
	serial := func(i int) string { return fmt.Sprintf("SERIAL%04d", i%devices) }
	for i := range devices {
		if _, err := l.Device(context.Background(), "OTP", serial(i), aggregates.Register{Meta: fixture.Center("KB001")}); err != nil {
			b.Fatal(err)
		}
	}
	return j, l, serial
}

// BenchmarkWarm measures, on one embedded JetStream, what a command and a
// read of a cached device cost: an error increment (a centre reset when
// locked), and a load of the device's current state.
func BenchmarkWarm(b *testing.B) {
	_, l, serial := registered(b)
	ctx := context.Background()
	b.Run("increment", func(b *testing.B) {
		for i := range b.N {
			_, err := l.Device(ctx, "OTP", serial(i), aggregates.IncrementError{Meta: fixture.Auth("")})
			if aggregates.RuleOf(err) == aggregates.RuleHWLock {
				_, err = l.Device(ctx, "OTP", serial(i), aggregates.ResetErrors{Meta: fixture.Center("KB001")})
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		for i := range b.N {
			if _, _, err := l.LoadDevice(ctx, "OTP", serial(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCold measures a load that misses the cache (a cache of one
// aggregate, 64 devices in turn): the last message and its state header,
// checked against the message's commit.
func BenchmarkCold(b *testing.B) {
	j, _, serial := registered(b)
	ctx := context.Background()
	cold, err := New(j, Config{Policy: aggregates.DefaultPolicy(home), CacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := cold.LoadDevice(ctx, "OTP", serial(i)); err != nil {
			b.Fatal(err)
		}
	}
}
