package consumers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/projections"
)

// item decodes one journal message for the projections; an undecodable one
// becomes an item to quarantine, never an error that stops the reader.
func item(seq uint64, subject string, data []byte) projections.Item {
	it := projections.Item{Seq: seq, Subject: subject, Data: data}
	if subject == events.SubjectCheckpoint {
		return it // a signed checkpoint: nothing for the views
	}
	if _, ok := events.ParseSubject(subject); !ok {
		it.Err = fmt.Errorf("subject %q is not an aggregate's", subject)
		return it
	}
	it.Commit, it.Err = events.DecodeCommit(data)
	return it
}

// ReadBatch is how many items [ReadStream] hands over at a time.
const ReadBatch = 1000

// ReadStream reads the stream in order from sequence from+1 to upTo (0: the
// last sequence when it starts) with an ordered consumer and calls fn with
// batches of decoded items. It stops at the first error of fn or the server.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream string, from, upTo uint64, fn func([]projections.Item) error) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	if upTo == 0 {
		upTo = s.CachedInfo().State.LastSeq
	}
	if upTo <= from {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4 * ReadBatch))
	if err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	batch := make([]projections.Item, 0, ReadBatch)
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read stream: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > upTo {
			break
		}
		batch = append(batch, item(seq, m.Subject(), m.Data()))
		if len(batch) == ReadBatch || seq == upTo {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		if seq == upTo {
			return nil
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}
