package consumers

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/fixture"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/streamgen"
	"github.com/otpledger/otpledger/projections"
)

// runEphemeral runs projectors over store with an ephemeral consumer, as a
// replica with views in memory does, until the test ends: one that stops on
// a gap is replaced by a new one starting at the checkpoint, as serve does.
// It returns the projector running now.
func runEphemeral(t *testing.T, e env, store projections.Writer) func() *Projector {
	t.Helper()
	j := journaltest.Open(t, e.dial(), journal.Config{})
	var running atomic.Pointer[Projector]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		for ctx.Err() == nil {
			p, err := NewProjector(ProjectorConfig{Journal: j, Store: store, Ephemeral: true})
			if err != nil {
				done <- err
				return
			}
			if running.Swap(p) == nil {
				go func() { <-p.Running(); close(started) }()
			}
			if err = p.Run(ctx); !errors.Is(err, projections.ErrGap) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("projector did not start: %v", err)
	}
	return running.Load
}

// TestReplicasMemoryViewsStayCurrent (issue 26, finding 4): two replicas
// each projecting into views of their own on one NATS never take each
// other's consumer: both consume and both reach the stream's end.
func TestReplicasMemoryViewsStayCurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := projections.NewMemory(), projections.NewMemory()
	pa, pb := runEphemeral(t, e, a), runEphemeral(t, e, b)
	e.publish(t, streamgen.Config{Events: 3000, Devices: 100, Customers: 40, Seed: 26})
	last := lastSeq(t, e.j)
	waitFor(t, a, last, time.Minute)
	waitFor(t, b, last, time.Minute)
	if !pa().Consuming() || !pb().Consuming() {
		t.Errorf("consuming: %v and %v, want both", pa().Consuming(), pb().Consuming())
	}
}

// TestProjectorReplacesItsLostConsumer: a projector whose consumer the
// server no longer has (deleted, or an ephemeral lost with its server)
// creates a new one at its checkpoint and goes on consuming.
func TestProjectorReplacesItsLostConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	store := projections.NewMemory()
	p, err := NewProjector(ProjectorConfig{Journal: journaltest.Open(t, e.dial(), journal.Config{}), Store: store, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-p.Running()
	e.publish(t, streamgen.Config{Events: 500, Devices: 20, Customers: 10, Seed: 27})
	waitFor(t, store, lastSeq(t, e.j), time.Minute)
	journaltest.DeleteConsumers(t, e.dial(), e.j.Stream())
	if _, err := e.j.Append(context.Background(), journal.Record{Commit: lateCommit(), MsgID: "after-the-loss"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, store, lastSeq(t, e.j), time.Minute)
	if !p.Consuming() {
		t.Error("a projector consuming again does not report it")
	}
}

// lateCommit is one more message, for a customer no generated stream has.
func lateCommit() events.Commit {
	t0 := fixture.BusinessHours
	return events.Commit{Events: []events.Event{{ID: uuid.New(), OccurredAt: t0, RecordedAt: t0,
		Aggregate: events.CustomerRef("LATE0001"), Institution: "IBKS", Channel: events.ChannelBranch, Staff: "S1",
		Actor: events.Actor{Role: events.RoleSelf}, Payload: events.Registered{Vendor: "OTP", Serial: "SERIAL0001", CustomerNo: "LATE0001"}}}}
}

// TestConsumingLapses: a subscriber is consuming for consumingWithin after
// it is made or last fetched well, and no longer after.
func TestConsumingLapses(t *testing.T) {
	s := newSubscriber(nil)
	if !s.consuming() {
		t.Error("a subscriber just made has no time to subscribe")
	}
	s.consumed.Store(time.Now().Add(-consumingWithin - time.Second).UnixNano())
	if s.consuming() {
		t.Errorf("a subscriber that has not fetched well for %v reports itself consuming", consumingWithin+time.Second)
	}
}
