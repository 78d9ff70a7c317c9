package consumers

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/projections"
)

// subscriber is a Watermill subscriber over one JetStream pull consumer. It
// stands in for watermill-nats/v2's JetStream subscriber, whose shutdown
// closes the output channel while its consume callback may still send on it
// ("send on closed channel", found by TestKillAndResume): here the goroutine
// that sends is the one that closes.
//
// It fetches in batches (deliveries are pipelined) and hands messages over in
// stream order, grouped as they arrive ([subscriber.deliver]), waiting for
// each group to be acked or nacked. A nack returns the rest of the batch to
// the server too, so that nothing is handled out of order.
type subscriber struct {
	consumer func(ctx context.Context) (jetstream.Consumer, error)
	closing  chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	// consumed is when (unix ns) a fetch last ended well or a group was
	// handed over, or the subscriber was made: what [subscriber.consuming]
	// reads.
	consumed atomic.Int64
}

func newSubscriber(consumer func(ctx context.Context) (jetstream.Consumer, error)) *subscriber {
	s := &subscriber{consumer: consumer, closing: make(chan struct{})}
	s.consumed.Store(time.Now().UnixNano()) // the time it has to subscribe
	return s
}

// fetchBatch is how many messages one pull asks for.
const fetchBatch = 256

func (s *subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	cons, err := s.consumer(ctx)
	if err != nil {
		return nil, err
	}
	s.consumed.Store(time.Now().UnixNano())
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for ctx.Err() == nil && !s.closed() {
			batch, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				cons = s.replace(ctx, cons)
				if !s.pause(ctx, time.Second) {
					return
				}
				continue
			}
			ok, more := s.deliver(ctx, batch, out)
			if !more {
				return
			}
			if !ok {
				cons = s.replace(ctx, cons)
				if !s.pause(ctx, time.Second) {
					return
				}
			}
		}
	}()
	return out, nil
}

// maxGroup bounds how many journal messages one Watermill message carries.
const maxGroup = 128

// consumingWithin is how long after its last good fetch a subscriber is
// still consuming: a fetch waits 500 ms at most, a failed one 1 s more.
const consumingWithin = 10 * time.Second

// consuming reports whether the subscription fetched well or handed a
// message over within consumingWithin (or was made within it): false once
// its consumer could not be created or fetched from for that long (deleted
// by another process, NATS unreachable).
func (s *subscriber) consuming() bool {
	return time.Since(time.Unix(0, s.consumed.Load())) < consumingWithin
}

// replace returns a new consumer in place of cons when the server no
// longer has cons (deleted, or an ephemeral consumer lost with its server),
// else cons: fetching from a consumer that is gone fails forever.
func (s *subscriber) replace(ctx context.Context, cons jetstream.Consumer) jetstream.Consumer {
	if _, err := cons.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return cons
	}
	if c, err := s.consumer(ctx); err == nil {
		return c
	}
	return cons
}

// deliver hands the batch's messages over in order: each Watermill message
// carries the next journal message and those already arrived behind it (up
// to maxGroup), so that under load one store transaction applies many,
// without waiting for more. ok reports whether the batch ended well; more
// false means stop.
func (s *subscriber) deliver(ctx context.Context, batch jetstream.MessageBatch, out chan<- *message.Message) (ok, more bool) {
	msgs := batch.Messages()
	for {
		first, open := <-msgs
		if !open {
			break
		}
		group := []jetstream.Msg{first}
	more:
		for len(group) < maxGroup {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				group = append(group, m)
			default:
				break more
			}
		}
		wm := message.NewMessage(watermill.NewUUID(), encodeGroup(group))
		wm.SetContext(ctx)
		if parents := traceParents(group); parents != "" {
			wm.Metadata.Set(traceParentsKey, parents)
		}
		select {
		case out <- wm:
		case <-ctx.Done():
			return false, false
		case <-s.closing:
			return false, false
		}
		select {
		case <-wm.Acked():
			s.consumed.Store(time.Now().UnixNano())
			for _, m := range group {
				_ = m.Ack()
			}
		case <-wm.Nacked():
			for _, m := range group {
				_ = m.Nak()
			}
			for m := range msgs { // behind a nacked message: back to the server, in order
				_ = m.Nak()
			}
		case <-ctx.Done():
			return false, false
		case <-s.closing:
			return false, false
		}
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return false, true
	}
	s.consumed.Store(time.Now().UnixNano())
	return true, true
}

// encodeGroup frames journal messages into one payload: for each, its
// stream sequence (8 bytes), subject length (2) and subject, body length
// (4) and body.
func encodeGroup(group []jetstream.Msg) []byte {
	var out []byte
	for _, m := range group {
		var seq uint64
		if meta, err := m.Metadata(); err == nil {
			seq = meta.Sequence.Stream
		}
		out = binary.BigEndian.AppendUint64(out, seq)
		out = binary.BigEndian.AppendUint16(out, uint16(len(m.Subject())))
		out = append(out, m.Subject()...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(m.Data())))
		out = append(out, m.Data()...)
	}
	return out
}

// decodeGroup is the inverse of encodeGroup, decoding each message as an item.
func decodeGroup(payload []byte) ([]projections.Item, error) {
	var items []projections.Item
	for len(payload) > 0 {
		if len(payload) < 10 {
			return nil, errors.New("projector: truncated message group")
		}
		seq := binary.BigEndian.Uint64(payload)
		n := int(binary.BigEndian.Uint16(payload[8:]))
		payload = payload[10:]
		if len(payload) < n+4 {
			return nil, errors.New("projector: truncated message group")
		}
		subject := string(payload[:n])
		size := int(binary.BigEndian.Uint32(payload[n:]))
		payload = payload[n+4:]
		if len(payload) < size || seq == 0 {
			return nil, errors.New("projector: truncated message group")
		}
		items = append(items, item(seq, subject, payload[:size]))
		payload = payload[size:]
	}
	return items, nil
}

func (s *subscriber) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// pause waits d unless the subscription ends first; false means it ended.
func (s *subscriber) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// Close stops every subscription and waits for their goroutines.
func (s *subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}
