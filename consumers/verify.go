package consumers

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/projections"
)

// ErrNothingToVerify is returned by [Verify] for an empty journal: a clean
// report of nothing proves nothing.
var ErrNothingToVerify = errors.New("verify: the journal is empty: nothing to verify")

// Finding is one place where the stream is not what the ledger wrote.
type Finding struct {
	Seq       uint64      `json:"sequence"`
	Aggregate string      `json:"aggregate,omitempty"`
	Kind      FindingKind `json:"kind"`
	Detail    string      `json:"detail"`
}

// FindingKind names what [Verify] found wrong with a message.
type FindingKind string

// The kinds of finding.
const (
	FindingMissing     FindingKind = "missing"      // a sequence the stream does not hold
	FindingUndecodable FindingKind = "undecodable"  // a message no decoder reads
	FindingPosition    FindingKind = "position"     // an event stored under another aggregate's subject
	FindingReplayed    FindingKind = "replayed"     // an event id seen before
	FindingUnchained   FindingKind = "unchained"    // an event without a hash
	FindingAltered     FindingKind = "altered"      // an event whose hash does not match its content
	FindingBrokenChain FindingKind = "broken-chain" // an event whose previous hash is not its predecessor's
	FindingCheckpoint  FindingKind = "checkpoint"   // a checkpoint that does not verify
)

// Report is the result of [Verify].
type Report struct {
	Messages    uint64    `json:"messages"`
	Events      uint64    `json:"events"`
	Checkpoints uint64    `json:"checkpoints"`
	Findings    []Finding `json:"findings"`
}

// chainHead is what Verify remembers of each aggregate.
type chainHead struct {
	hash string
	seq  uint64
}

// Verify re-reads the whole stream and reports, by sequence and aggregate,
// every message missing from the sequence, stored under another aggregate's
// subject, undecodable, replayed out of order (an event seen before), altered
// (its content does not hash to its Hash), or whose PrevHash is not its
// aggregate's previous Hash. A chain break right after missing messages is
// attributed to them, not reported twice.
//
// Each checkpoint message is checked against the running hash of the
// messages before it and, with pub, its Ed25519 signature: a forgery that
// rewrote hashes and chains consistently still fails there.
func Verify(ctx context.Context, j *journal.Journal, pub ed25519.PublicKey, progress Progress) (Report, error) {
	total, err := j.LastSequence(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	if total == 0 {
		return Report{}, ErrNothingToVerify
	}
	v := &verifier{pub: pub, heads: map[events.AggregateRef]chainHead{}, seen: map[uuid.UUID]uint64{}, next: 1, hashes: new(recentHashes)}
	v.hashes.put(0, v.running)
	err = ReadStream(ctx, j, 0, total, func(items []projections.Item) error {
		for _, it := range items {
			v.message(it)
		}
		if progress != nil {
			progress(v.next-1, total)
		}
		return nil
	})
	if err != nil {
		return v.rep, fmt.Errorf("verify: %w", err)
	}
	if v.next <= total {
		v.find(Finding{Seq: v.next, Kind: FindingMissing, Detail: fmt.Sprintf("sequences %d to %d are missing", v.next, total)})
	}
	return v.rep, nil
}

// verifier is what Verify knows of the stream read so far.
type verifier struct {
	pub     ed25519.PublicKey
	rep     Report
	heads   map[events.AggregateRef]chainHead
	seen    map[uuid.UUID]uint64 // event id → the sequence that stored it
	next    uint64               // the sequence expected next
	lastGap uint64               // the sequence after the last gap
	running runningHash
	hashes  *recentHashes
	covered uint64 // the sequence the last good checkpoint covers
}

func (v *verifier) find(f Finding) { v.rep.Findings = append(v.rep.Findings, f) }

// message checks one message: its place in the sequence, a checkpoint's
// signature and hash, an event's hash, chain and uniqueness.
func (v *verifier) message(it projections.Item) {
	if it.Seq > v.next {
		v.find(Finding{Seq: v.next, Kind: FindingMissing, Detail: fmt.Sprintf("sequences %d to %d are missing", v.next, it.Seq-1)})
		v.lastGap = it.Seq
	}
	v.next = it.Seq + 1
	v.rep.Messages++
	if it.Subject == events.SubjectCheckpoint {
		var problem string
		if v.covered, problem = checkCheckpoint(it.Seq, v.covered, it.Data, v.hashes, v.pub); problem != "" {
			v.find(Finding{Seq: it.Seq, Kind: FindingCheckpoint, Detail: problem})
		}
		v.hashes.put(it.Seq, v.running)
		v.rep.Checkpoints++
		return
	}
	v.running.add(it.Seq, it.Data)
	v.hashes.put(it.Seq, v.running)
	if it.Err != nil {
		v.find(Finding{Seq: it.Seq, Kind: FindingUndecodable, Detail: it.Err.Error()})
		return
	}
	subjectRef, _ := events.ParseSubject(it.Subject)
	for _, e := range it.Commit.Events {
		v.event(it.Seq, subjectRef, e)
	}
}

// event checks one event of the message at seq stored under subjectRef.
func (v *verifier) event(seq uint64, subjectRef events.AggregateRef, e events.Event) {
	v.rep.Events++
	agg := e.Aggregate.String()
	if first, ok := v.seen[e.ID]; ok {
		if e.Aggregate != subjectRef {
			v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingPosition, Detail: "stored under the subject of " + subjectRef.String()})
		}
		v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingReplayed, Detail: fmt.Sprintf("event %s was already stored at sequence %d", e.ID, first)})
		return
	}
	v.seen[e.ID] = seq
	head := v.heads[e.Aggregate]
	for _, problem := range events.CheckStored(subjectRef, head.hash, e) {
		switch problem {
		case events.ErrMisplaced:
			v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingPosition, Detail: "stored under the subject of " + subjectRef.String()})
		case events.ErrUnchained:
			v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingUnchained, Detail: "event has no hash"})
		case events.ErrAltered:
			v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingAltered, Detail: fmt.Sprintf("event %s does not hash to its recorded hash", e.ID)})
		case events.ErrBrokenChain:
			if v.lastGap <= head.seq { // a break right after missing messages is theirs
				v.find(Finding{Seq: seq, Aggregate: agg, Kind: FindingBrokenChain,
					Detail: fmt.Sprintf("previous hash does not match the aggregate's event at sequence %d", head.seq)})
			}
		}
	}
	v.heads[e.Aggregate] = chainHead{hash: e.Hash, seq: seq}
}
