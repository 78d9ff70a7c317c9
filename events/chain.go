package events

import (
	"crypto/sha256"
	"encoding/hex"
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
