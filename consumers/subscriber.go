package consumers

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

// subscriber is a Watermill subscriber over one JetStream pull consumer. It
// stands in for watermill-nats/v2's JetStream subscriber, whose shutdown
// closes the output channel while its consume callback may still send on it
// ("send on closed channel", found by TestKillAndResume): here the goroutine
// that sends is the one that closes.
//
// It fetches in batches (deliveries are pipelined) but hands messages over
// one at a time, in stream order, and waits for each to be acked or nacked.
// A nack returns the rest of the batch to the server too, so that nothing is
// handled out of order.
type subscriber struct {
	consumer func(ctx context.Context) (jetstream.Consumer, error)
	closing  chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

func newSubscriber(consumer func(ctx context.Context) (jetstream.Consumer, error)) *subscriber {
	return &subscriber{consumer: consumer, closing: make(chan struct{})}
}

// fetchBatch is how many messages one pull asks for.
const fetchBatch = 256

func (s *subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	cons, err := s.consumer(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for ctx.Err() == nil && !s.closed() {
			batch, err := cons.Fetch(fetchBatch, jetstream.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				if !s.pause(ctx, time.Second) {
					return
				}
				continue
			}
			if !s.deliver(ctx, batch, out) {
				return
			}
		}
	}()
	return out, nil
}

// deliver hands the batch's messages over in order; false means stop.
func (s *subscriber) deliver(ctx context.Context, batch jetstream.MessageBatch, out chan<- *message.Message) bool {
	nacked := false
	for m := range batch.Messages() {
		if nacked {
			_ = m.Nak() // behind a nacked message: back to the server, in order
			continue
		}
		wm := toMessage(m)
		wm.SetContext(ctx)
		select {
		case out <- wm:
		case <-ctx.Done():
			return false
		case <-s.closing:
			return false
		}
		select {
		case <-wm.Acked():
			_ = m.Ack()
		case <-wm.Nacked():
			_ = m.Nak()
			nacked = true
		case <-ctx.Done():
			return false
		case <-s.closing:
			return false
		}
	}
	return batch.Error() == nil || errors.Is(batch.Error(), context.DeadlineExceeded) || s.pause(ctx, time.Second)
}

func toMessage(m jetstream.Msg) *message.Message {
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	wm := message.NewMessage(strconv.FormatUint(seq, 10), m.Data())
	wm.Metadata.Set("seq", strconv.FormatUint(seq, 10))
	wm.Metadata.Set("subject", m.Subject())
	return wm
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
