package consumers

import (
	"context"
	"fmt"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
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

// ReadStream reads the stream in order from sequence from+1 to upTo (0: the
// last sequence when it starts) through the journal's bulk read and calls fn
// with batches of decoded items. It stops at the first error of fn or the
// server.
func ReadStream(ctx context.Context, j *journal.Journal, from, upTo uint64, fn func([]projections.Item) error) error {
	items := make([]projections.Item, 0, journal.ScanBatch)
	return j.Scan(ctx, from, upTo, func(msgs []journal.Message) error {
		items = items[:0]
		for _, m := range msgs {
			items = append(items, item(m.Seq, m.Subject, m.Data))
		}
		return fn(items)
	})
}
