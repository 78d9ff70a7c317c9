// Package journalbench gives benchmarks the raw JetStream operations that
// the journal is measured against: the same publishes and reads without the
// journal's encoding, checks and bookkeeping. It writes to the stream
// without the journal's checks on purpose, so it belongs to the journal
// package tree (the one door to the stream) and only otpledger bench may
// import it; the one-door test in package journal enforces both.
package journalbench

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// Raw performs raw JetStream operations on one stream. It is safe for
// concurrent use.
type Raw struct {
	js     jetstream.JetStream
	stream string
}

// New returns a Raw over connection nc for stream.
func New(nc *nats.Conn, stream string) (*Raw, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Raw{js: js, stream: stream}, nil
}

// CAS publishes m expecting its subject's last sequence to be expect, as the
// ledger's appends do, and returns the stored sequence.
func (r *Raw) CAS(ctx context.Context, m *nats.Msg, expect uint64) (uint64, error) {
	ack, err := r.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(expect))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// NewBatch publishes msgs as one atomic batch, each expecting a new subject.
func (r *Raw) NewBatch(ctx context.Context, msgs []*nats.Msg) error {
	for _, m := range msgs {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	_, err := jetstreamext.PublishMsgBatch(ctx, r.js, msgs)
	return err
}

// LoadBySubject reads up to 256 messages of subject with one batch direct
// get: a load by replay.
func (r *Raw) LoadBySubject(ctx context.Context, subject string) error {
	msgs, err := jetstreamext.GetBatch(ctx, r.js, r.stream, 256, jetstreamext.GetBatchSubject(subject))
	if err != nil {
		return err
	}
	for _, err := range msgs {
		if err != nil && !errors.Is(err, jetstreamext.ErrNoMessages) {
			return err
		}
	}
	return nil
}
