package consumers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/projections"
)

// ProjectorConfig configures [NewProjector].
type ProjectorConfig struct {
	// Journal is the journal the projector consumes (give it a connection
	// of its own: a projector that fails is replaced with a new one).
	Journal *journal.Journal
	Durable string // durable consumer name; default "otpledger-projector"
	// Ephemeral consumes with an ephemeral consumer (named by the server)
	// instead of the durable: for views that are this process's own (in
	// memory), so that replicas each projecting their own never replace
	// each other's consumer. Their checkpoint is the views' position.
	Ephemeral bool
	Store     projections.Writer
	Logger    watermill.LoggerAdapter // default: none
	// Retries of a failed apply before the message is nacked (redelivered later); default 5.
	Retries int
}

func (c *ProjectorConfig) setDefaults() {
	if c.Durable == "" {
		c.Durable = "otpledger-projector"
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
	if c.Retries == 0 {
		c.Retries = 5
	}
}

// Validate reports every problem of c.
func (c ProjectorConfig) Validate() error {
	var errs []error
	if c.Journal == nil {
		errs = append(errs, errors.New("projector: Journal is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("projector: Store is required"))
	}
	return errors.Join(errs...)
}

// Projector applies the journal to a projection store as it grows: a
// Watermill router over a durable JetStream consumer that hands over one
// message at a time in stream order, acks only after the
// store committed the message's rows with its checkpoint, retries failures
// with backoff, and quarantines a message that cannot be decoded or whose
// rows the database refuses. A redelivered message at or below the
// checkpoint is a no-op, so the effect is exactly once.
type Projector struct {
	router      *message.Router
	sub         *subscriber
	cfg         ProjectorConfig
	quarantined atomic.Uint64
	failed      atomic.Pointer[error]
}

// NewProjector builds the router; [Projector.Run] runs it.
func NewProjector(cfg ProjectorConfig) (*Projector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Projector{cfg: cfg}
	sub := newSubscriber(p.durableConsumer)
	p.sub = sub
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	r.AddMiddleware(middleware.Recoverer, middleware.Retry{
		MaxRetries: cfg.Retries, InitialInterval: 50 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2,
		RandomizationFactor: 0.3, Logger: cfg.Logger,
	}.Middleware)
	r.AddConsumerHandler("projector", events.SubjectAll, sub, p.handle)
	p.router = r
	return p, nil
}

// durableConsumer creates the projector's durable consumer starting right
// after the store's checkpoint: the checkpoint, committed with the rows, is
// the truth; a consumer left from an earlier run (whose acks may be ahead of
// a restored or rebuilt store) is replaced.
func (p *Projector) durableConsumer(ctx context.Context) (jetstream.Consumer, error) {
	pos, err := p.cfg.Store.Position(ctx)
	if err != nil {
		return nil, err
	}
	if p.cfg.Ephemeral {
		return p.cfg.Journal.EphemeralConsumer(ctx, pos+1, 4*fetchBatch)
	}
	return p.cfg.Journal.DurableConsumer(ctx, p.cfg.Durable, pos+1, 4*fetchBatch)
}

// handle applies one group of journal messages in one store transaction.
func (p *Projector) handle(msg *message.Message) (err error) {
	items, err := decodeGroup(msg.Payload)
	if err != nil {
		return err
	}
	ctx, span := startApplySpan(msg.Context(), msg.Metadata.Get(traceParentsKey), items)
	defer func() { endSpan(span, err) }()
	err = p.cfg.Store.Apply(ctx, items)
	if refusedRows(err) {
		// The database refused some message's rows: no retry will change
		// that. Apply the group one message at a time; keep the refused aside.
		err = p.applyEach(ctx, items)
	}
	if errors.Is(err, projections.ErrGap) {
		// The store is behind what this consumer delivers (its last commits
		// were lost): stop, so that the next run starts at the checkpoint.
		p.failed.CompareAndSwap(nil, &err)
		go p.router.Close()
		return err
	}
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.Err != nil {
			p.quarantined.Add(1)
			p.cfg.Logger.Error("message quarantined", it.Err, watermill.LogFields{"seq": it.Seq})
		}
	}
	return nil
}

// refusedRows reports whether err is the database refusing the rows
// themselves (SQLSTATE class 22, data exception, or 23, integrity
// constraint) rather than failing (a connection, a timeout: retried).
func refusedRows(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// applyEach applies items one by one, quarantining each whose rows the
// database refuses.
func (p *Projector) applyEach(ctx context.Context, items []projections.Item) error {
	for i := range items {
		err := p.cfg.Store.Apply(ctx, items[i:i+1])
		if refusedRows(err) && items[i].Err == nil {
			items[i].Err = fmt.Errorf("apply refused by the database: %v", err)
			err = p.cfg.Store.Apply(ctx, items[i:i+1])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Run runs the projector until ctx ends or Close is called, or until the
// store reports [projections.ErrGap], which Run then returns: run a new
// Projector, which starts at the store's checkpoint.
func (p *Projector) Run(ctx context.Context) error {
	err := p.router.Run(ctx)
	if failed := p.failed.Load(); failed != nil {
		return *failed
	}
	return err
}

// Running is closed once the projector consumes.
func (p *Projector) Running() chan struct{} { return p.router.Running() }

// Close stops the projector, waiting for the message in flight.
func (p *Projector) Close() error { return p.router.Close() }

// Consuming reports whether the projector consumes the journal: it fetched
// from its consumer within the last 10 s (or was made within them); false
// once it could not subscribe or fetch for that long.
func (p *Projector) Consuming() bool { return p.sub.consuming() }

// Quarantined counts the messages this projector quarantined.
func (p *Projector) Quarantined() uint64 { return p.quarantined.Load() }
