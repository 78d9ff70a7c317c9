package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/otpledger/otpledger/events"
)

// encodeReadable encodes c and checks that the bytes decode, with the codec
// every reader uses, back to the same commit: an event the journal
// acknowledges can always be read back (a time before year 0, for one, cannot).
func encodeReadable(c events.Commit) ([]byte, error) {
	data, err := events.EncodeCommit(c)
	if err != nil {
		return nil, err
	}
	back, err := events.DecodeCommit(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	again, err := events.EncodeCommit(back)
	if err != nil || !bytes.Equal(data, again) {
		return nil, ErrUnreadable
	}
	return data, nil
}

// Message is one stored message as bulk readers see it: undecoded.
type Message struct {
	Seq     uint64
	Subject string
	Data    []byte
	State   []byte    // the state header, nil when none
	Time    time.Time // when the server stored it (set by Get and LastCheckpoint)
}

// ScanBatch is how many messages [Journal.Scan] hands over at a time.
const ScanBatch = 1000

// Scan reads the stream in order from sequence from+1 to upTo (0: the last
// sequence when it starts) with an ordered consumer (a read-only journal:
// batched direct gets) and calls fn with batches of messages (fn must not
// keep the slice). It stops at the first error of fn or the server.
func (j *Journal) Scan(ctx context.Context, from, upTo uint64, fn func([]Message) error) error {
	if upTo == 0 {
		last, err := j.LastSequence(ctx)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		upTo = last
	}
	if upTo <= from {
		return nil
	}
	if j.cfg.ReadOnly {
		return j.scanDirect(ctx, from, upTo, fn)
	}
	// The consumer is deleted when the scan ends: nats.go keeps an ordered
	// consumer on the server for five minutes, and scans in a loop
	// (checkpoints) would pile them up.
	cons, err := j.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: from + 1, InactiveThreshold: time.Minute})
	if err != nil {
		return fmt.Errorf("scan: %w: %w", ErrUnavailable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4 * ScanBatch))
	if err != nil {
		return fmt.Errorf("scan: %w: %w", ErrUnavailable, err)
	}
	defer func() {
		it.Stop()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = j.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
		cancel()
	}()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	batch := make([]Message, 0, ScanBatch)
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scan: %w: %w", ErrUnavailable, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq > upTo {
			break
		}
		msg := Message{Seq: seq, Subject: m.Subject(), Data: m.Data()}
		if s := m.Headers().Get(StateHeader); s != "" {
			msg.State = []byte(s)
		}
		batch = append(batch, msg)
		if len(batch) == ScanBatch || seq == upTo {
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

// scanDirect is [Journal.Scan] for a read-only journal, with batched direct
// gets: a reader can create no consumer (api.md, "The journal's own door"),
// and a direct get changes nothing on the server.
func (j *Journal) scanDirect(ctx context.Context, from, upTo uint64, fn func([]Message) error) error {
	batch := make([]Message, 0, ScanBatch)
	for next := from + 1; next <= upTo; {
		msgs, err := jetstreamext.GetBatch(ctx, j.js, j.cfg.Stream, min(ScanBatch, int(upTo-next+1)), jetstreamext.GetBatchSeq(next))
		if err != nil {
			return fmt.Errorf("scan: %w: %w", ErrUnavailable, err)
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("scan: %w: %w", ErrUnavailable, err)
			}
			if m.Sequence > upTo {
				break
			}
			msg := Message{Seq: m.Sequence, Subject: m.Subject, Data: m.Data}
			if s := m.Header.Get(StateHeader); s != "" {
				msg.State = []byte(s)
			}
			batch = append(batch, msg)
			next = m.Sequence + 1
		}
		if len(batch) == 0 {
			return nil // nothing from next on: the rest of the range is gone
		}
		if err := fn(batch); err != nil {
			return err
		}
		batch = batch[:0]
	}
	return nil
}

// Get returns the message at seq.
func (j *Journal) Get(ctx context.Context, seq uint64) (Message, error) {
	m, err := j.stream.GetMsg(ctx, seq)
	if err != nil {
		return Message{}, fmt.Errorf("get %d: %w: %w", seq, ErrUnavailable, err)
	}
	out := Message{Seq: m.Sequence, Subject: m.Subject, Data: m.Data, Time: m.Time}
	if s := m.Header.Get(StateHeader); s != "" {
		out.State = []byte(s)
	}
	return out, nil
}

// Bulk appends many records in order with pipelined asynchronous publishes:
// for restoring an export, generating test streams and benchmark pre-fills.
// Each message expects the stream's last sequence to be the one before it,
// so nothing interleaves and a failure stops every message after it. It is
// not safe for concurrent use.
type Bulk struct {
	j       *Journal
	next    uint64
	pending []jetstream.PubAckFuture
}

// bulkWindow is how many acknowledgements a Bulk leaves outstanding.
const bulkWindow = 2048

// Bulk starts a bulk append after the stream's current last message.
func (j *Journal) Bulk(ctx context.Context) (*Bulk, error) {
	last, err := j.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	return &Bulk{j: j, next: last + 1}, nil
}

// Add publishes r (its Expect is ignored: the stream's order is the check)
// and returns the sequence it will have. The acknowledgement is awaited
// later, by Add every 2,048 messages, or by [Bulk.Flush].
func (b *Bulk) Add(ctx context.Context, r Record) (uint64, error) {
	m, err := r.msg()
	if err != nil {
		return 0, fmt.Errorf("bulk append at %d: %w", b.next, err)
	}
	f, err := b.j.js.PublishMsgAsync(m, jetstream.WithExpectLastSequence(b.next-1))
	if err != nil {
		return 0, fmt.Errorf("bulk append at %d: %w: %w", b.next, ErrUnavailable, err)
	}
	seq := b.next
	b.next++
	if b.pending = append(b.pending, f); len(b.pending) == bulkWindow {
		return seq, b.Flush(ctx)
	}
	return seq, nil
}

// Flush waits for every outstanding acknowledgement and returns the first
// error.
func (b *Bulk) Flush(ctx context.Context) error {
	defer func() { b.pending = b.pending[:0] }()
	for _, f := range b.pending {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("bulk append: %w", classify(err))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// LastCheckpoint returns the stream's last signed checkpoint message, ok
// false when there is none.
func (j *Journal) LastCheckpoint(ctx context.Context) (m Message, ok bool, err error) {
	raw, err := j.stream.GetLastMsgForSubject(ctx, events.SubjectCheckpoint)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, fmt.Errorf("last checkpoint: %w: %w", ErrUnavailable, err)
	}
	return Message{Seq: raw.Sequence, Subject: raw.Subject, Data: raw.Data, Time: raw.Time}, true, nil
}

// AppendCheckpoint appends a checkpoint body, expecting the last checkpoint
// at sequence last (0: none): it returns [ErrConflict] when another
// checkpoint was appended meanwhile.
func (j *Journal) AppendCheckpoint(ctx context.Context, body []byte, last uint64) error {
	if _, err := j.js.PublishMsg(ctx, &nats.Msg{Subject: events.SubjectCheckpoint, Data: body}, jetstream.WithExpectLastSequencePerSubject(last)); err != nil {
		return fmt.Errorf("append checkpoint: %w", classify(err))
	}
	return nil
}

// DurableConsumer replaces the durable consumer name with one that delivers
// the whole stream from sequence start, acked explicitly: a consumer left
// from an earlier run (whose acks may be ahead of a restored store) is
// deleted first.
func (j *Journal) DurableConsumer(ctx context.Context, name string, start uint64, maxAckPending int) (jetstream.Consumer, error) {
	if err := j.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w: %w", name, ErrUnavailable, err)
	}
	c, err := j.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: events.SubjectAll, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, MaxAckPending: maxAckPending,
		AckWait: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w: %w", name, ErrUnavailable, err)
	}
	return c, nil
}

// EphemeralConsumer creates an ephemeral consumer (named by the server) that
// delivers the whole stream from sequence start, acked explicitly, and that
// the server deletes once unused for a minute: each process consuming for
// views of its own has its own, which no other replaces.
func (j *Journal) EphemeralConsumer(ctx context.Context, start uint64, maxAckPending int) (jetstream.Consumer, error) {
	c, err := j.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: events.SubjectAll, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, MaxAckPending: maxAckPending,
		AckWait: time.Minute, InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("ephemeral consumer: %w: %w", ErrUnavailable, err)
	}
	return c, nil
}

// Follow delivers to fn, in order, every message of the aggregates of kind:
// those already in the stream before Follow returns, and then each new one
// as it is appended, on another goroutine, until ctx ends. It is how every
// server sharing the journal keeps small aggregates (API keys) in memory
// and sees a change within milliseconds. fn must not block for long.
func (j *Journal) Follow(ctx context.Context, kind events.AggregateKind, fn func(Message)) error {
	filter := events.SubjectPrefix + "." + string(kind) + ".>"
	cons, err := j.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("follow %s: %w: %w", kind, ErrUnavailable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("follow %s: %w: %w", kind, ErrUnavailable, err)
	}
	caughtUp := make(chan struct{})
	var once sync.Once
	if info.NumPending == 0 {
		once.Do(func() { close(caughtUp) })
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		msg := Message{Seq: meta.Sequence.Stream, Subject: m.Subject(), Data: m.Data()}
		if s := m.Headers().Get(StateHeader); s != "" {
			msg.State = []byte(s)
		}
		fn(msg)
		if meta.NumPending == 0 {
			once.Do(func() { close(caughtUp) })
		}
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w: %w", kind, ErrUnavailable, err)
	}
	context.AfterFunc(ctx, cc.Stop)
	select {
	case <-caughtUp:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
