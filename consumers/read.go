package consumers

import (
	"context"
	"fmt"
	"runtime"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/projections"
	"golang.org/x/sync/errgroup"
)

// item decodes one journal message for the projections; an undecodable one,
// or one holding an event of another aggregate than its subject's (a
// message replayed under a fresh subject), becomes an item to quarantine,
// never an error that stops the reader nor a row.
func item(seq uint64, subject string, data []byte) projections.Item {
	it := projections.Item{Seq: seq, Subject: subject, Data: data}
	if subject == events.SubjectCheckpoint {
		return it // a signed checkpoint: nothing for the views
	}
	ref, ok := events.ParseSubject(subject)
	if !ok {
		it.Err = fmt.Errorf("subject %q is not an aggregate's", subject)
		return it
	}
	if it.Commit, it.Err = events.DecodeCommit(data); it.Err != nil {
		return it
	}
	for i, e := range it.Commit.Events {
		if err := events.CheckPosition(ref, e); err != nil {
			it.Commit, it.Err = events.Commit{}, fmt.Errorf("event %d (%s): %w", i, e.Aggregate, err)
			return it
		}
	}
	return it
}

// ReadStream reads the stream in order from sequence from+1 to upTo (0: the
// last sequence when it starts) through the journal's bulk read and calls fn
// with batches of decoded items, in order. Batches are decoded in parallel
// while the next are read (up to one per processor ahead of fn). It stops at
// the first error of fn or the server.
func ReadStream(ctx context.Context, j *journal.Journal, from, upTo uint64, fn func([]projections.Item) error) error {
	type batch struct {
		items   []projections.Item
		decoded chan struct{}
	}
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan *batch, runtime.GOMAXPROCS(0)) // in stream order
	g.Go(func() error {
		defer close(queue)
		return j.Scan(gctx, from, upTo, func(msgs []journal.Message) error {
			b := &batch{items: make([]projections.Item, len(msgs)), decoded: make(chan struct{})}
			for i, m := range msgs { // Scan reuses msgs: the decoder gets the items
				b.items[i] = projections.Item{Seq: m.Seq, Subject: m.Subject, Data: m.Data}
			}
			go func() {
				defer close(b.decoded)
				for i := range b.items {
					b.items[i] = item(b.items[i].Seq, b.items[i].Subject, b.items[i].Data)
				}
			}()
			select {
			case queue <- b:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	g.Go(func() error {
		for b := range queue {
			<-b.decoded
			if err := fn(b.items); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}
