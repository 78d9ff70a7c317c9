package consumers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal/journaltest"
	"github.com/otpledger/otpledger/internal/streamgen"
)

// TestVerifyCleanStream: a stream the ledger wrote verifies clean.
func TestVerifyCleanStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 100_000, Devices: 5000, Customers: 2000, Seed: 11})
	if err := streamgen.Publish(ctx, e.j.JetStream(), gen.Commits); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, e.j.JetStream(), e.j.Stream(), nil)
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
	js, _ := jetstream.New(nc)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "COPY", Subjects: []string{events.SubjectAll}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	// Pick an error increment to alter, a message to delete, and an earlier
	// message to replay later.
	alter := slices.IndexFunc(gen.Commits[1000:], func(c events.Commit) bool { return c.Events[0].Type() == events.TypeErrorIncremented }) + 1000
	deleted, replayed := 1500, 200
	var altered, insertedAt, deletedSeq uint64
	publish := func(c events.Commit) uint64 {
		data, err := events.EncodeCommit(c)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: events.Subject(c.Aggregate()), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
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
	if err := s.DeleteMsg(ctx, deletedSeq); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, js, "COPY", nil)
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
