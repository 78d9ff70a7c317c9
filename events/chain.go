package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// HashOf returns an event's hash: the hex SHA-256 of its canonical encoding
// (the journal's, which is deterministic) with the Hash field left empty.
// PrevHash is part of what is hashed, so each hash seals the chain before it.
func HashOf(e Event) (string, error) {
	e.Hash = ""
	data, err := e.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Chain links evs, the next events of one aggregate whose last event's hash
// is prev ("" for a new aggregate): each gets PrevHash and Hash. It returns
// the linked events (evs is not changed) and the last hash.
func Chain(prev string, evs []Event) ([]Event, string, error) {
	out := make([]Event, len(evs))
	for i, e := range evs {
		e.PrevHash = prev
		h, err := HashOf(e)
		if err != nil {
			return nil, "", err
		}
		e.Hash, prev = h, h
		out[i] = e
	}
	return out, prev, nil
}

// The ways a stored event can disagree with its place in the stream
// ([CheckStored]).
var (
	ErrMisplaced   = errors.New("stored under the subject of another aggregate")
	ErrUnchained   = errors.New("event has no hash")
	ErrAltered     = errors.New("event does not hash to its recorded hash")
	ErrBrokenChain = errors.New("previous hash is not the hash of the aggregate's last event")
)

// CheckStored returns every way event e, read from a message stored under
// the subject of aggregate at, disagrees with that place: another aggregate
// ([ErrMisplaced]), no hash ([ErrUnchained]), a hash its content does not
// have ([ErrAltered]), a previous hash that is not prev, the hash of the
// aggregate's last event before it ("" for none) ([ErrBrokenChain]). It is
// the one check of the audit (consumers.Verify) and of everything that acts
// on the stream (the key follower): an event it finds anything wrong with is
// a finding, never a fact.
func CheckStored(at AggregateRef, prev string, e Event) []error {
	var problems []error
	if err := CheckPosition(at, e); err != nil {
		problems = append(problems, err)
	}
	switch h, err := HashOf(e); {
	case e.Hash == "":
		problems = append(problems, ErrUnchained)
	case err != nil || h != e.Hash:
		problems = append(problems, ErrAltered)
	}
	if e.PrevHash != prev {
		problems = append(problems, ErrBrokenChain)
	}
	return problems
}

// CheckPosition returns [ErrMisplaced] when event e, read from a message
// stored under the subject of aggregate at, belongs to another aggregate:
// the part of [CheckStored] that needs no hash, which the views apply to
// every event they fold.
func CheckPosition(at AggregateRef, e Event) error {
	if e.Aggregate != at {
		return ErrMisplaced
	}
	return nil
}
