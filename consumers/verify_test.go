package consumers

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/streamgen"
)

// TestVerifyCleanStream: a stream the ledger wrote verifies clean.
func TestVerifyCleanStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	gen := e.publish(t, streamgen.Config{Events: 100_000, Devices: 5000, Customers: 2000, Seed: 11})
	rep, err := Verify(ctx, e.j, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.Events != uint64(gen.Events) {
		t.Fatalf("clean stream: %d events, findings %+v", rep.Events, rep.Findings[:min(5, len(rep.Findings))])
	}
}

// TestVerifyNamesTampering copies a stream into one without deny-delete,
// changing one event's payload, deleting one message and inserting one out
// of order: Verify names exactly those three places.
func TestVerifyNamesTampering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 3000, Devices: 100, Customers: 40, Seed: 12})
	nc := journaltest.Conn(t)
	forged := journaltest.Forge(t, nc, "COPY")
	// Pick an error increment to alter, a message to delete, and an earlier
	// message to replay later.
	alter := slices.IndexFunc(gen.Commits[1000:], func(c events.Commit) bool {
		p, ok := c.Events[0].Payload.(events.ErrorIncremented)
		return ok && p.CountAfter != 1 // so that setting it to 1 changes it
	}) + 1000
	deleted, replayed := 1500, 200
	var altered, insertedAt, deletedSeq uint64
	publish := func(c events.Commit) uint64 {
		data, err := events.EncodeCommit(c)
		if err != nil {
			t.Fatal(err)
		}
		return forged.Store(events.Subject(c.Aggregate()), data)
	}
	for i, c := range gen.Commits {
		if i == alter { // the count changed, the recorded hash left as it was
			ev := c.Events[0]
			p := ev.Payload.(events.ErrorIncremented)
			p.CountAfter = 1
			ev.Payload = p
			c = events.Commit{Events: []events.Event{ev}}
		}
		seq := publish(c)
		switch i {
		case alter:
			altered = seq
		case deleted:
			deletedSeq = seq
		case 2000:
			insertedAt = publish(gen.Commits[replayed])
		}
	}
	forged.Delete(deletedSeq)
	rep, err := Verify(ctx, journaltest.Open(t, nc, journal.Config{Stream: "COPY", ReadOnly: true}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var places []uint64
	for _, f := range rep.Findings {
		places = append(places, f.Seq)
	}
	slices.Sort(places)
	want := []uint64{altered, deletedSeq, insertedAt}
	slices.Sort(want)
	if !slices.Equal(places, want) {
		out, _ := json.MarshalIndent(rep.Findings, "", "  ")
		t.Fatalf("findings at %v, want %v:\n%s", places, want, out)
	}
	t.Log(fmt.Sprint(rep.Findings))
}

// TestCheckpointsCatchConsistentForgery: signed checkpoints verify on the
// genuine stream; a copy whose forger recomputed every hash and chain link
// after changing one event passes the chain checks but fails the checkpoint.
func TestCheckpointsCatchConsistentForgery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	pub := key.Public().(ed25519.PublicKey)
	gen := streamgen.Generate(streamgen.Config{Events: 2000, Devices: 50, Customers: 20, Seed: 13})
	e := newEnv(t)
	half := len(gen.Commits) / 2
	for _, part := range [][]events.Commit{gen.Commits[:half], gen.Commits[half:]} {
		if err := streamgen.Publish(ctx, e.j, part); err != nil {
			t.Fatal(err)
		}
		if ok, err := AppendCheckpoint(ctx, e.j, key); err != nil || !ok {
			t.Fatalf("checkpoint: %v %v", ok, err)
		}
	}
	if ok, err := AppendCheckpoint(ctx, e.j, key); err != nil || ok {
		t.Fatalf("a checkpoint with nothing new: %v %v", ok, err)
	}
	rep, err := Verify(ctx, e.j, pub, nil)
	if err != nil || len(rep.Findings) != 0 || rep.Checkpoints != 2 {
		t.Fatalf("genuine stream: %+v %v", rep, err)
	}
	// Projections ignore checkpoints.
	mem, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := mem.Quarantine(ctx); len(q) != 0 {
		t.Fatalf("checkpoints quarantined: %+v", q)
	}

	// The forger changes one early error increment and re-links that
	// aggregate's chain from there on, then copies the checkpoints as stored.
	forged := slices.Clone(gen.Commits)
	target := slices.IndexFunc(forged, func(c events.Commit) bool {
		p, ok := c.Events[0].Payload.(events.ErrorIncremented)
		return ok && p.CountAfter > 1
	})
	ref := forged[target].Aggregate()
	prev := forged[target].Events[0].PrevHash
	for i := target; i < len(forged); i++ {
		if forged[i].Aggregate() != ref {
			continue
		}
		evs := slices.Clone(forged[i].Events)
		if i == target {
			p := evs[0].Payload.(events.ErrorIncremented)
			p.CountAfter, p.Locked = 1, false
			evs[0].Payload = p
		}
		evs, prev, _ = events.Chain(prev, evs)
		forged[i] = events.Commit{Events: evs}
	}
	nc := journaltest.Conn(t)
	copied := journaltest.Forge(t, nc, "FORGED")
	var checkpoints [][]byte
	err = e.j.Scan(ctx, 0, 0, func(msgs []journal.Message) error {
		for _, m := range msgs {
			if m.Subject == events.SubjectCheckpoint {
				checkpoints = append(checkpoints, m.Data)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range [][]events.Commit{forged[:half], forged[half:]} {
		for _, c := range part {
			data, err := events.EncodeCommit(c)
			if err != nil {
				t.Fatal(err)
			}
			copied.Store(events.Subject(c.Aggregate()), data)
		}
		copied.Store(events.SubjectCheckpoint, checkpoints[i])
	}
	rep, err = Verify(ctx, journaltest.Open(t, nc, journal.Config{Stream: "FORGED", ReadOnly: true}), pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 2 || rep.Findings[0].Kind != "checkpoint" || rep.Findings[1].Kind != "checkpoint" {
		t.Fatalf("consistent forgery: %+v", rep.Findings)
	}
}
