package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/otpledger/otpledger/events"
)

// StateHeader carries the aggregate's state after the message's commit.
const StateHeader = "Otpledger-State"

// Durability is how an acknowledged append survives failures.
type Durability string

// Durability modes; see the package documentation for what each costs.
const (
	Fsync      Durability = "fsync"
	Interval   Durability = "interval"
	Replicated Durability = "replicated"
)

// MinServerVersion is the oldest nats-server with atomic batch publish.
const MinServerVersion = "2.12.0"

// Config configures [Open].
type Config struct {
	Stream     string     // default "OTPLEDGER"
	Durability Durability // default Interval
	// DuplicateWindow is how long the server remembers a Nats-Msg-Id, to
	// answer a publish retried after a lost acknowledgement; default 2
	// minutes. It is a transport retry window, not the commands'
	// idempotency, which the aggregates' snapshots keep for 24 h (see the
	// ledger). The server reloads every message inside it when it starts,
	// so a long window is start-up time.
	DuplicateWindow time.Duration
	// MaxAge is how long events are kept: 0 (the default) keeps them forever;
	// otherwise at least 10 years (R-APPROVAL's retention).
	MaxAge time.Duration
	// ReadOnly opens an existing stream as it is, for audit tools: nothing
	// is provisioned or checked, and a missing stream is [ErrNoJournal].
	ReadOnly bool
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = "OTPLEDGER"
	}
	if c.Durability == "" {
		c.Durability = Interval
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
}

const tenYears = 10 * 365 * 24 * time.Hour

// DefaultDuplicateWindow is [Config.DuplicateWindow]'s default.
const DefaultDuplicateWindow = 2 * time.Minute

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	switch c.Durability {
	case Fsync, Interval, Replicated:
	default:
		errs = append(errs, fmt.Errorf("durability %q: want fsync, interval or replicated", c.Durability))
	}
	if c.MaxAge != 0 && c.MaxAge < tenYears {
		errs = append(errs, fmt.Errorf("max age %v: events are kept at least 10 years (or 0: forever)", c.MaxAge))
	}
	if c.DuplicateWindow < time.Minute {
		errs = append(errs, errors.New("duplicate window under a minute"))
	}
	return errors.Join(errs...)
}

// Replicas is how many servers hold the stream in mode d: three when
// replicated, else one.
func (d Durability) Replicas() int {
	if d == Replicated {
		return 3
	}
	return 1
}

func (c Config) stream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: c.Stream, Subjects: []string{events.SubjectAll}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew, Replicas: c.Durability.Replicas(),
		MaxAge: c.MaxAge, MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1,
		Duplicates: c.DuplicateWindow, DenyDelete: true, DenyPurge: true, AllowDirect: true, AllowAtomicPublish: true,
	}
}

// ReaderAPIPrefix is the JetStream API prefix under which a reader's
// account (deploy/nats/accounts.conf AUDIT, the embedded server's reader)
// imports the stream's read-only services: stream info, direct and message
// gets. Its own $JS.API is answered by its server ("JetStream not enabled
// for account"), which is how [Open] knows to use this one.
const ReaderAPIPrefix = "$JS.OTPLEDGER.API"

// ReaderInbox is the inbox prefix of a reader's connections: the only
// subjects a reader may subscribe to, so that it sees no other user's
// replies (nats.CustomInboxPrefix).
const ReaderInbox = "_INBOX_reader"

// Journal is the event journal on one JetStream stream. It is safe for
// concurrent use.
type Journal struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
	api    string // the JetStream API's prefix: $JS.API, or ReaderAPIPrefix for a reader in an account of its own
}

// Open checks the server's version and provisions the stream, idempotently:
// an existing stream with the same settings is used as it is; one whose
// settings conflict is an error naming each conflict, and nothing is changed.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Journal, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, MinServerVersion) {
		return nil, fmt.Errorf("open journal: nats-server %s found, %s or newer needed (atomic batch publish)", v, MinServerVersion)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	api := jetstream.DefaultAPIPrefix
	want := cfg.stream()
	stream, err := js.Stream(ctx, cfg.Stream)
	if cfg.ReadOnly && errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		// A reader in an account of its own: the stream's read-only
		// services are imported under ReaderAPIPrefix.
		if js, err = jetstream.NewWithAPIPrefix(nc, ReaderAPIPrefix); err != nil {
			return nil, fmt.Errorf("open journal: %w", err)
		}
		api = ReaderAPIPrefix + "."
		stream, err = js.Stream(ctx, cfg.Stream)
	}
	switch {
	case cfg.ReadOnly && errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("open journal: stream %s: %w", cfg.Stream, ErrNoJournal)
	case cfg.ReadOnly && err == nil:
	case errors.Is(err, jetstream.ErrStreamNotFound):
		if stream, err = js.CreateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("open journal: create stream %s: %w", cfg.Stream, err)
		}
	case err != nil:
		return nil, fmt.Errorf("open journal: %w: %w", ErrUnavailable, err)
	default:
		have := stream.CachedInfo().Config
		if conflicts := diffStream(have, want); len(conflicts) > 0 {
			return nil, fmt.Errorf("open journal: stream %s exists with conflicting settings: %s", cfg.Stream, strings.Join(conflicts, "; "))
		}
		if have.Duplicates != want.Duplicates {
			// The one update Open asks for. The ledger's user of
			// deploy/nats and of the embedded server may not update the
			// stream (it could shorten max_age): there the stream keeps its
			// window, which is a retry window, not a safety property, until
			// an operator sets it (nats stream edit --dupe-window).
			if migrated, err := migrateWindow(ctx, js, have, want.Duplicates); err == nil {
				stream = migrated
			}
		}
	}
	return &Journal{js: js, stream: stream, cfg: cfg, api: api}, nil
}

// migrateWindow sets an existing stream's duplicate window: the one setting
// Open changes rather than refuses, since it holds no data (streams created
// before 2026-11-27 have 24 h, which made every start reload a day of
// messages).
func migrateWindow(ctx context.Context, js jetstream.JetStream, have jetstream.StreamConfig, window time.Duration) (jetstream.Stream, error) {
	have.Duplicates = window
	stream, err := js.UpdateStream(ctx, have)
	if err != nil {
		return nil, fmt.Errorf("open journal: set the duplicate window of stream %s to %v: %w", have.Name, window, err)
	}
	return stream, nil
}

// diffStream lists the settings of have that differ from want.
func diffStream(have, want jetstream.StreamConfig) []string {
	var out []string
	check := func(name string, h, w any) {
		if fmt.Sprint(h) != fmt.Sprint(w) {
			out = append(out, fmt.Sprintf("%s is %v, want %v", name, h, w))
		}
	}
	check("subjects", have.Subjects, want.Subjects)
	check("storage", have.Storage, want.Storage)
	check("retention", have.Retention, want.Retention)
	check("replicas", have.Replicas, want.Replicas)
	check("max_age", have.MaxAge, want.MaxAge)
	check("max_msgs_per_subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	check("deny_delete", have.DenyDelete, want.DenyDelete)
	check("deny_purge", have.DenyPurge, want.DenyPurge)
	check("allow_direct", have.AllowDirect, want.AllowDirect)
	check("allow_atomic", have.AllowAtomicPublish, want.AllowAtomicPublish)
	return out
}

// versionAtLeast compares dotted versions such as "2.15.2" (a suffix such as
// "-beta" is ignored).
func versionAtLeast(have, want string) bool {
	parse := func(s string) [3]int {
		var v [3]int
		s, _, _ = strings.Cut(s, "-")
		for i, part := range strings.SplitN(s, ".", 3) {
			v[i], _ = strconv.Atoi(part)
		}
		return v
	}
	h, w := parse(have), parse(want)
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

// Stream returns the stream's name.
func (j *Journal) Stream() string { return j.cfg.Stream }

// Durability returns the journal's durability mode.
func (j *Journal) Durability() Durability { return j.cfg.Durability }

// Record is one message to append: one aggregate's commit, the sequence its
// subject must have now (0: the aggregate must be new), a message id for the
// server's deduplication, and the aggregate's encoded state after the commit.
type Record struct {
	Commit events.Commit
	Expect uint64
	MsgID  string
	State  []byte
}

func (r Record) msg() (*nats.Msg, error) {
	data, err := encodeReadable(r.Commit)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(events.Subject(r.Commit.Aggregate()))
	m.Data = data
	if r.MsgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, r.MsgID)
	}
	if len(r.State) > 0 {
		m.Header.Set(StateHeader, string(r.State))
	}
	return m, nil
}

// Append stores recs atomically and returns each record's stream sequence:
// one record as one compare-and-set publish, several as one atomic batch in
// which every message carries its own expectation. It returns [ErrConflict]
// when an expectation fails, [ErrDuplicate] when the message ids were already
// stored, a [*events.FieldError] for an invalid commit, or an error wrapping
// [ErrUnavailable]; in every error case nothing was stored.
func (j *Journal) Append(ctx context.Context, recs ...Record) (seqs []uint64, err error) {
	if len(recs) == 0 {
		return nil, nil
	}
	ctx, span := startAppend(ctx, recs)
	defer func() { endAppend(span, seqs, err) }()
	msgs := make([]*nats.Msg, len(recs))
	for i, r := range recs {
		m, err := r.msg()
		if err != nil {
			return nil, fmt.Errorf("append %s: %w", r.Commit.Aggregate(), err)
		}
		traceParent(ctx, m)
		msgs[i] = m
	}
	if len(recs) == 1 {
		ack, err := j.js.PublishMsg(ctx, msgs[0], jetstream.WithExpectLastSequencePerSubject(recs[0].Expect))
		if err != nil {
			return nil, fmt.Errorf("append %s: %w", recs[0].Commit.Aggregate(), classify(err))
		}
		if ack.Duplicate {
			return nil, fmt.Errorf("append %s: %w", recs[0].Commit.Aggregate(), &DuplicateError{Seq: ack.Sequence})
		}
		return []uint64{ack.Sequence}, nil
	}
	for i, m := range msgs {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(recs[i].Expect, 10))
	}
	ack, err := jetstreamext.PublishMsgBatch(ctx, j.js, msgs)
	if err != nil {
		return nil, fmt.Errorf("append batch of %d at %s: %w", len(recs), recs[0].Commit.Aggregate(), classify(err))
	}
	seqs = make([]uint64, len(recs))
	for i := range seqs { // a batch is stored contiguously, ending at the ack's sequence
		seqs[i] = ack.Sequence - uint64(len(recs)-1-i)
	}
	return seqs, nil
}

// Entry is one stored message: its stream sequence, its commit, and the
// state snapshot it carries (nil when it has none).
type Entry struct {
	Sequence uint64
	Commit   events.Commit
	State    []byte
}

func entry(m *jetstream.RawStreamMsg) (Entry, error) {
	c, err := events.DecodeCommit(m.Data)
	if err != nil {
		return Entry{Sequence: m.Sequence}, undecodable(m.Sequence, err)
	}
	e := Entry{Sequence: m.Sequence, Commit: c}
	if s := m.Header.Get(StateHeader); s != "" {
		e.State = []byte(s)
	}
	return e, nil
}

// undecodable is the error of a stored message no decoder reads: the
// stream's, never a caller's input (the decoder's error is kept as text
// only, so that it is not taken for a refusal of a request).
func undecodable(seq uint64, err error) error {
	return fmt.Errorf("%w: message %d: %v", ErrUndecodable, seq, err)
}

// Last returns the stream sequence and state snapshot of aggregate ref's last
// message, as the stream's leader has it (the commit itself is not decoded),
// and ok false when the aggregate has none.
func (j *Journal) Last(ctx context.Context, ref events.AggregateRef) (seq uint64, state []byte, ok bool, err error) {
	t, ok, err := j.Tail(ctx, ref)
	return t.Seq, t.State, ok, err
}

// LastMessage is an aggregate's last message as the stream's leader has it:
// its sequence, its data (undecoded) and its state snapshot (nil: none).
type LastMessage struct {
	Seq   uint64
	Data  []byte
	State []byte
}

// Tail returns aggregate ref's last message, as the stream's leader has it,
// and ok false when the aggregate has none: what a load checks the state
// snapshot against, in one round trip.
func (j *Journal) Tail(ctx context.Context, ref events.AggregateRef) (LastMessage, bool, error) {
	m, ok, err := j.lastMsg(ctx, ref, false)
	if !ok || err != nil {
		return LastMessage{}, false, err
	}
	t := LastMessage{Seq: m.Sequence, Data: m.Data}
	if len(m.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return LastMessage{}, false, fmt.Errorf("load %s: message %d: %w", ref, m.Sequence, err)
		}
		if s := hdr.Get(StateHeader); s != "" {
			t.State = []byte(s)
		}
	}
	return t, true, nil
}

// LastSeq returns the stream sequence of aggregate ref's last message as the
// stream's leader has it (0: the aggregate has none), without its snapshot:
// what a cached aggregate is confirmed current against.
func (j *Journal) LastSeq(ctx context.Context, ref events.AggregateRef) (uint64, error) {
	m, _, err := j.lastMsg(ctx, ref, true)
	return m.Sequence, err
}

// storedMsg is a message as STREAM.MSG.GET answers it.
type storedMsg struct {
	Sequence uint64 `json:"seq"`
	Header   []byte `json:"hdrs,omitempty"`
	Data     []byte `json:"data,omitempty"`
}

// lastMsg asks the stream's leader for aggregate ref's last message with
// STREAM.MSG.GET, which only the leader answers: a direct get may be
// answered by a follower that has not yet stored what the leader
// acknowledged, and a load must reflect every acknowledged append.
func (j *Journal) lastMsg(ctx context.Context, ref events.AggregateRef, noHeaders bool) (storedMsg, bool, error) {
	req, err := json.Marshal(struct {
		LastFor   string `json:"last_by_subj"`
		NoHeaders bool   `json:"no_hdr,omitempty"`
	}{events.Subject(ref), noHeaders})
	if err != nil {
		return storedMsg{}, false, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.js.Options().DefaultTimeout)
		defer cancel()
	}
	msg, err := j.js.Conn().RequestWithContext(ctx, j.api+"STREAM.MSG.GET."+j.cfg.Stream, req)
	if err != nil {
		return storedMsg{}, false, fmt.Errorf("load %s: %w: %w", ref, ErrUnavailable, err)
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *storedMsg          `json:"message"`
	}
	switch err := json.Unmarshal(msg.Data, &resp); {
	case err != nil:
		return storedMsg{}, false, fmt.Errorf("load %s: %w: %w", ref, ErrUnavailable, err)
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return storedMsg{}, false, nil
	case resp.Error != nil:
		return storedMsg{}, false, fmt.Errorf("load %s: %w: %w", ref, ErrUnavailable, resp.Error)
	case resp.Message == nil:
		return storedMsg{}, false, fmt.Errorf("load %s: %w: %w", ref, ErrUnavailable, jetstream.ErrInvalidJetStreamResponse)
	}
	return *resp.Message, true, nil
}

// readBatch is how many messages one direct batch get asks for.
const readBatch = 256

// Read yields the messages of aggregate ref in order, from sequence from
// (1: all), with direct batch gets. It stops at the first error, which it
// yields — but for a message no decoder reads ([ErrUndecodable], yielded
// with its sequence): a caller that goes on past it reads the next.
func (j *Journal) Read(ctx context.Context, ref events.AggregateRef, from uint64) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		subject, next := events.Subject(ref), max(from, 1)
		for {
			msgs, err := jetstreamext.GetBatch(ctx, j.js, j.cfg.Stream, readBatch,
				jetstreamext.GetBatchSubject(subject), jetstreamext.GetBatchSeq(next))
			if err != nil {
				yield(Entry{}, fmt.Errorf("read %s: %w: %w", ref, ErrUnavailable, err))
				return
			}
			n := 0
			for m, err := range msgs {
				if errors.Is(err, jetstreamext.ErrNoMessages) {
					return
				}
				if err != nil {
					yield(Entry{}, fmt.Errorf("read %s: %w: %w", ref, ErrUnavailable, err))
					return
				}
				e, err := entry(m)
				if !yield(e, err) || err != nil && !errors.Is(err, ErrUndecodable) {
					return
				}
				n, next = n+1, m.Sequence+1
			}
			if n < readBatch {
				return
			}
		}
	}
}

// LastSequence returns the stream's last sequence (0 when empty).
func (j *Journal) LastSequence(ctx context.Context) (uint64, error) {
	info, err := j.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w: %w", ErrUnavailable, err)
	}
	return info.State.LastSeq, nil
}
