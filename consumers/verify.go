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
	var rep Report
	heads := map[events.AggregateRef]chainHead{}
	seen := map[uuid.UUID]uint64{}
	next, lastGap := uint64(1), uint64(0)
	var running runningHash
	hashes := new(recentHashes)
	hashes.put(0, running)
	var covered uint64 // the sequence the last good checkpoint covers
	err = ReadStream(ctx, j, 0, total, func(items []projections.Item) error {
		for _, it := range items {
			if it.Seq > next {
				rep.Findings = append(rep.Findings, Finding{Seq: next, Kind: FindingMissing,
					Detail: fmt.Sprintf("sequences %d to %d are missing", next, it.Seq-1)})
				lastGap = it.Seq
			}
			next = it.Seq + 1
			rep.Messages++
			if it.Subject == events.SubjectCheckpoint {
				var problem string
				if covered, problem = checkCheckpoint(it.Seq, covered, it.Data, hashes, pub); problem != "" {
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Kind: FindingCheckpoint, Detail: problem})
				}
				hashes.put(it.Seq, running)
				rep.Checkpoints++
				continue
			}
			running.add(it.Seq, it.Data)
			hashes.put(it.Seq, running)
			if it.Err != nil {
				rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Kind: FindingUndecodable, Detail: it.Err.Error()})
				continue
			}
			subjectRef, _ := events.ParseSubject(it.Subject)
			for _, e := range it.Commit.Events {
				rep.Events++
				agg := e.Aggregate.String()
				if e.Aggregate != subjectRef {
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Aggregate: agg, Kind: FindingPosition,
						Detail: "stored under the subject of " + subjectRef.String()})
				}
				if first, ok := seen[e.ID]; ok {
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Aggregate: agg, Kind: FindingReplayed,
						Detail: fmt.Sprintf("event %s was already stored at sequence %d", e.ID, first)})
					continue
				}
				seen[e.ID] = it.Seq
				switch h, err := events.HashOf(e); {
				case e.Hash == "":
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Aggregate: agg, Kind: FindingUnchained, Detail: "event has no hash"})
				case err != nil || h != e.Hash:
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Aggregate: agg, Kind: FindingAltered,
						Detail: fmt.Sprintf("event %s does not hash to its recorded hash", e.ID)})
				}
				head := heads[e.Aggregate]
				if e.PrevHash != head.hash && lastGap <= head.seq {
					rep.Findings = append(rep.Findings, Finding{Seq: it.Seq, Aggregate: agg, Kind: FindingBrokenChain,
						Detail: fmt.Sprintf("previous hash does not match the aggregate's event at sequence %d", head.seq)})
				}
				heads[e.Aggregate] = chainHead{hash: e.Hash, seq: it.Seq}
			}
		}
		if progress != nil {
			progress(next-1, total)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	if next <= total {
		rep.Findings = append(rep.Findings, Finding{Seq: next, Kind: FindingMissing, Detail: fmt.Sprintf("sequences %d to %d are missing", next, total)})
	}
	return rep, nil
}
