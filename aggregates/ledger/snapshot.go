package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// snapshotVersion is the shape of [snapshot]; a message carrying another
// version is loaded by replaying the aggregate's events instead.
const snapshotVersion = 1

// recentWindow and recentMax bound the idempotency answers an aggregate keeps:
// the journal's duplicate window, and a count.
const (
	recentWindow = 24 * time.Hour
	recentMax    = 64
)

// remembered is the answer to one idempotent command, kept with the
// aggregates it touched. Base is the stream sequence of the command's first
// message; it is 0 while unknown (in the snapshot written with the command's
// own messages), and Pos is then this message's position in its batch.
type remembered struct {
	Key     string    `json:"key"`
	Command string    `json:"command,omitempty"` // the command's fingerprint ([fingerprint])
	At      time.Time `json:"at"`
	Base    uint64    `json:"base,omitempty"`
	Pos     int       `json:"pos,omitempty"`
	Events  []Event   `json:"events"` // Sequence relative to Base
}

func (r remembered) answer() Answer {
	out := Answer{Events: slices.Clone(r.Events)}
	for i := range out.Events {
		out.Events[i].Sequence += r.Base
	}
	return out
}

// snapshot is what every journal message carries in its state header: the
// aggregate's state after the message, and its recent idempotency answers.
type snapshot[S any] struct {
	V        int          `json:"v"`
	State    S            `json:"state"`
	LastHash string       `json:"last_hash,omitempty"` // the aggregate's last event's hash (the chain's head)
	Recent   []remembered `json:"recent,omitempty"`
}

// Snapshot returns the state header the ledger writes with a message after
// which an aggregate is in state, lastHash being its chain's head: for tools
// that write the journal beside the ledger (stream generators, benchmarks),
// so that the ledger loads what they wrote with one lookup.
func Snapshot[S aggregates.State[S]](state S, lastHash string) ([]byte, error) {
	return marshal(snapshot[S]{V: snapshotVersion, State: state, LastHash: lastHash})
}

// loaded is an aggregate as the ledger holds it: its snapshot and the stream
// sequence of its last message (0: new).
type loaded[S any] struct {
	seq  uint64
	snap snapshot[S]
}

// recall returns the answer remembered for key: ok false when there is
// none, [ErrIdempotencyMismatch] when key was used for another command.
func (l loaded[S]) recall(key, command string) (Answer, bool, error) {
	if key == "" {
		return Answer{}, false, nil
	}
	for _, r := range l.snap.Recent {
		if r.Key == key {
			if r.Command != command {
				return Answer{}, false, ErrIdempotencyMismatch
			}
			return r.answer(), true, nil
		}
	}
	return Answer{}, false, nil
}

// evicted reports whether the recent answers may have dropped one still
// inside the duplicate window: the list is full and its oldest is recent.
func (l loaded[S]) evicted(now time.Time) bool {
	r := l.snap.Recent
	return len(r) >= recentMax && now.Sub(r[0].At) < recentWindow
}

// next returns the snapshot after appending: the new state and the recent
// answers with this command's added (Base unknown) and old ones pruned.
func (l loaded[S]) next(state S, lastHash, key, command string, pos int, evs []Event, now time.Time) snapshot[S] {
	recent := slices.DeleteFunc(slices.Clone(l.snap.Recent), func(r remembered) bool { return now.Sub(r.At) > recentWindow })
	if key != "" {
		recent = append(recent, remembered{Key: key, Command: command, At: now, Pos: pos, Events: slices.Clone(evs)})
	}
	if len(recent) > recentMax {
		recent = recent[len(recent)-recentMax:]
	}
	return snapshot[S]{V: snapshotVersion, State: state, LastHash: lastHash, Recent: recent}
}

// settled returns s with the unknown Base of the remembered answers carried
// by the message at seq filled in.
func settled[S any](s snapshot[S], seq uint64) snapshot[S] {
	s.Recent = slices.Clone(s.Recent)
	for i, r := range s.Recent {
		if r.Base == 0 {
			s.Recent[i].Base = seq - uint64(r.Pos)
		}
	}
	return s
}

// store loads and caches one kind of aggregate.
type store[S aggregates.State[S]] struct {
	j        *journal.Journal
	cache    *lru[loaded[S]]
	zero     func(events.AggregateRef) S
	findings *atomic.Uint64 // messages a load skipped ([store.skip]); nil: not counted
}

// skip records that the message at seq, under ref's subject, is not folded
// into ref: its subject, chain and payload disagree (verify names it). It
// is logged by sequence and problem only, never the aggregate's key.
func (s *store[S]) skip(ref events.AggregateRef, seq uint64, problem error) {
	if s.findings != nil {
		s.findings.Add(1)
	}
	slog.Warn("ledger: a message on an aggregate's subject is not the ledger's own: skipped",
		"kind", ref.Kind, "sequence", seq, "problem", problem.Error())
}

// agrees returns why commit c, read under ref's subject after the event
// whose hash is prev ("" for none), is not ref's next commit: no event, or
// an event that [events.CheckStored] finds anything wrong with.
func agrees(ref events.AggregateRef, prev string, c events.Commit) error {
	if len(c.Events) == 0 {
		return errors.New("a commit of no event")
	}
	for _, e := range c.Events {
		if problems := events.CheckStored(ref, prev, e); len(problems) > 0 {
			return fmt.Errorf("%w%s", problems[0], joinRest(problems[1:]))
		}
		prev = e.Hash
	}
	return nil
}

func joinRest(errs []error) string {
	var out string
	for _, err := range errs {
		out += "; " + err.Error()
	}
	return out
}

// vouched returns the state snapshot of ref's last message when the
// message vouches for it: it decodes to a commit of at least one event of
// ref, chained within itself, whose last hash is the snapshot's chain head.
// Anything else (a forged header on junk, or on a commit of another
// aggregate) is not trusted, and the aggregate is replayed instead. The
// events' own hashes are not recomputed: that is the replay's and verify's
// work, off the hot path.
func vouched[S aggregates.State[S]](ref events.AggregateRef, m journal.LastMessage) (snapshot[S], bool) {
	var snap snapshot[S]
	if m.State == nil || json.Unmarshal(m.State, &snap) != nil || snap.V != snapshotVersion || snap.LastHash == "" {
		return snap, false
	}
	c, err := events.DecodeCommit(m.Data)
	if err != nil || len(c.Events) == 0 || c.Events[len(c.Events)-1].Hash != snap.LastHash ||
		snap.State.AggregateVersion() < uint64(len(c.Events)) {
		return snap, false
	}
	for i, e := range c.Events {
		if events.CheckPosition(ref, e) != nil || i > 0 && e.PrevHash != c.Events[i-1].Hash {
			return snap, false
		}
	}
	return snap, true
}

// newCache returns a cache of loaded aggregates whose entries only move
// forward in the stream.
func newCache[S any](size int) *lru[loaded[S]] {
	c := newLRU[loaded[S]](size)
	c.older = func(have, v loaded[S]) bool { return v.seq < have.seq }
	return c
}

// load returns the aggregate as current as the stream's leader: every append
// acknowledged before load began, by any replica, is in it. A cached
// aggregate is served once one round trip confirms that the leader's last
// message for it is the cached one; otherwise, or when not cached, the last
// message's snapshot is read (one lookup); only a message without a usable
// snapshot makes it replay the aggregate's events.
func (s *store[S]) load(ctx context.Context, ref events.AggregateRef) (loaded[S], error) {
	if l, ok := s.cache.get(ref); ok {
		seq, err := s.j.LastSeq(ctx, ref)
		if err != nil {
			return loaded[S]{}, err
		}
		if seq <= l.seq {
			return l, nil
		}
	}
	m, ok, err := s.j.Tail(ctx, ref)
	if err != nil {
		return loaded[S]{}, err
	}
	l := loaded[S]{snap: snapshot[S]{V: snapshotVersion, State: s.zero(ref)}}
	if ok {
		if snap, good := vouched[S](ref, m); good {
			l = loaded[S]{seq: m.Seq, snap: settled(snap, m.Seq)}
		} else if l, err = s.replay(ctx, ref, m.Seq); err != nil {
			return loaded[S]{}, err
		}
	}
	s.cache.put(ref, l)
	return l, nil
}

// cached returns the aggregate as cached, unconfirmed (current false), for
// a command whose append's compare-and-set rejects it if stale; with
// confirm, or when not cached, it loads it as [store.load] does (current).
func (s *store[S]) cached(ctx context.Context, ref events.AggregateRef, confirm bool) (l loaded[S], current bool, err error) {
	if l, ok := s.cache.get(ref); ok && !confirm {
		return l, false, nil
	}
	l, err = s.load(ctx, ref)
	return l, true, err
}

// find looks for the answer to key among ref's messages up to sequence
// last (the aggregate as loaded): the one holding the event eventID (the
// command's first) carries it in its snapshot. It is the slow path of an
// idempotent retry whose answer the recent list dropped.
func (s *store[S]) find(ctx context.Context, ref events.AggregateRef, last uint64, key, command string, eventID uuid.UUID) (Answer, bool, error) {
	read := uint64(0)
	for e, err := range s.j.Read(ctx, ref, 1) {
		if err != nil && !errors.Is(err, journal.ErrUndecodable) {
			return Answer{}, false, fmt.Errorf("find %s: %w", ref, err)
		}
		read = e.Sequence
		if !slices.ContainsFunc(e.Commit.Events, func(ev events.Event) bool { return ev.ID == eventID }) {
			continue
		}
		var snap snapshot[S]
		if json.Unmarshal(e.State, &snap) != nil {
			return Answer{}, false, nil
		}
		return loaded[S]{seq: e.Sequence, snap: settled(snap, e.Sequence)}.recall(key, command)
	}
	if read < last { // the direct gets were answered by a follower still behind the leader
		return Answer{}, false, fmt.Errorf("find %s: read up to %d of %d: %w", ref, read, last, journal.ErrUnavailable)
	}
	return Answer{}, false, nil
}

// replay folds every event of ref up to the leader's last message for it,
// at sequence last. A message whose subject, chain and payload disagree
// (undecodable, no event, another aggregate's event, replayed, altered) is
// skipped as a finding: the next event chains from the last one folded,
// and the aggregate's sequence is still last, the subject's real last
// message, so that the aggregate stays writable. Idempotency answers of
// commands appended under an older snapshot format are not recovered; the
// server's duplicate window still refuses their messages.
func (s *store[S]) replay(ctx context.Context, ref events.AggregateRef, last uint64) (loaded[S], error) {
	l := loaded[S]{snap: snapshot[S]{V: snapshotVersion, State: s.zero(ref)}}
	read := uint64(0)
	for e, err := range s.j.Read(ctx, ref, 1) {
		bad := errors.Is(err, journal.ErrUndecodable)
		if err != nil && !bad {
			return loaded[S]{}, fmt.Errorf("replay %s: %w", ref, err)
		}
		if e.Sequence > last {
			break
		}
		read = e.Sequence
		if !bad {
			err = agrees(ref, l.snap.LastHash, e.Commit)
		}
		if err != nil {
			s.skip(ref, e.Sequence, err)
			continue
		}
		l.snap.State = aggregates.Fold(l.snap.State, e.Commit.Events, time.Time{})
		l.snap.LastHash = e.Commit.Events[len(e.Commit.Events)-1].Hash
	}
	if read != last { // the direct gets were answered by a follower still behind the leader
		return loaded[S]{}, fmt.Errorf("replay %s: read up to %d of %d: %w", ref, read, last, journal.ErrUnavailable)
	}
	l.seq = last
	return l, nil
}

// asOf folds the events of ref up to stream sequence upTo (0: all) that
// occurred at or before t (zero: any time), skipping as [store.replay] does
// the messages that are not ref's own; seq is the last message folded.
func (s *store[S]) asOf(ctx context.Context, ref events.AggregateRef, upTo uint64, t time.Time) (S, uint64, error) {
	state, seq, prev := s.zero(ref), uint64(0), ""
	for e, err := range s.j.Read(ctx, ref, 1) {
		bad := errors.Is(err, journal.ErrUndecodable)
		if err != nil && !bad {
			return state, 0, fmt.Errorf("load %s as of: %w", ref, err)
		}
		if upTo != 0 && e.Sequence > upTo {
			break
		}
		if !bad {
			err = agrees(ref, prev, e.Commit)
		}
		if err != nil {
			s.skip(ref, e.Sequence, err)
			continue
		}
		if !aggregates.Recorded(e.Commit.Events[0], t) {
			break // as of t: the messages recorded by then, in append order
		}
		state, seq = aggregates.Fold(state, e.Commit.Events, t), e.Sequence
		prev = e.Commit.Events[len(e.Commit.Events)-1].Hash
	}
	return state, seq, nil
}
