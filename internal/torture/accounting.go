package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// Stored is one event of a test device as the journal holds it after
// healing, in the device's order (Version 1 is its first event).
type Stored struct {
	Device  string
	Version uint64
	Seq     uint64 // the message's stream sequence
	ID      string
	Key     string // the Idempotency-Key of the command that appended it
	Type    string
	Count   int // the error count after the event
}

// journalKey is the idempotency key the journal stores for a command the
// client sent under key as principal (internal/httpapi: a key is the
// principal's, stored as a digest of both).
func journalKey(key, principal string) string {
	h := sha256.New()
	for _, part := range []string{key, principal} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "http-" + hex.EncodeToString(h.Sum(nil)[:20])
}

// principal is the API key a workload operation is sent with.
func principal(k Kind) string {
	if k == Increment {
		return "AUTH"
	}
	return "CENTER" // registrations and resets: the centre feed
}

// clientKeys rewrites the journal's keys of stored to the clients' keys of
// ops, so that [Account] finds the events of commands of unknown outcome
// or answered refused. An acknowledged event whose journal key is not its
// command's is an error: the journal no longer derives keys as journalKey
// does, and the accounting would be blind.
func clientKeys(ops []Op, stored []Stored) error {
	keys, byID := map[string]string{}, map[string]string{}
	for _, o := range ops {
		if o.Key == "" || o.Kind == Read {
			continue
		}
		keys[journalKey(o.Key, principal(o.Kind))] = o.Key
		if o.Outcome == Accepted {
			for _, id := range o.EventIDs {
				byID[id] = o.Key
			}
		}
	}
	for i, s := range stored {
		k, ok := keys[s.Key]
		if want, acked := byID[s.ID]; acked && k != want {
			return fmt.Errorf("event %s of the command under key %q is stored under %q: not the key the harness derives", s.ID, want, s.Key)
		}
		if ok {
			stored[i].Key = k
		}
	}
	return nil
}

// Accounting is Jepsen's accounting of acknowledged events: every event id a
// 201 answer named must be in the journal exactly once.
type Accounting struct {
	Acknowledged int      // event ids named by 201 answers
	Lost         []string // acknowledged, not in the journal
	Duplicated   []string // in the journal more than once
	// Unexpected are events in the journal that no answer named and no
	// operation of unknown outcome explains (their key is no such
	// operation's).
	Unexpected []string
	// StoredButRefused are operations answered 409 (or 503, "nothing
	// appended") whose Idempotency-Key appended events: a stored command
	// reported as refused (issue 26 finding 2).
	StoredButRefused []Op
	Unknown          int // commands of unknown outcome
	UnknownStored    int // of which the journal holds an event
}

// Ok reports whether nothing acknowledged was lost or duplicated, nothing
// unexplained was stored, and no stored command was answered as refused.
func (a Accounting) Ok() bool {
	return len(a.Lost)+len(a.Duplicated)+len(a.Unexpected)+len(a.StoredButRefused) == 0
}

func (a Accounting) String() string {
	return fmt.Sprintf("%d acknowledged events: %d lost, %d duplicated, %d unexpected; %d stored commands answered refused or 503; "+
		"%d commands of unknown outcome (%d stored)", a.Acknowledged, len(a.Lost), len(a.Duplicated), len(a.Unexpected),
		len(a.StoredButRefused), a.Unknown, a.UnknownStored)
}

// Account compares the acknowledged events of ops with the journal's
// events of their devices, stored.
func Account(ops []Op, stored []Stored) Accounting {
	var a Accounting
	count, keys := map[string]int{}, map[string]bool{}
	for _, s := range stored {
		count[s.ID]++
		if count[s.ID] == 2 {
			a.Duplicated = append(a.Duplicated, s.ID)
		}
		keys[s.Key] = true
	}
	acked, unknownKeys := map[string]bool{}, map[string]bool{}
	for _, o := range ops {
		if o.Kind == Read {
			continue
		}
		switch o.Outcome {
		case Accepted:
			for _, id := range o.EventIDs {
				acked[id] = true
				if count[id] == 0 {
					a.Lost = append(a.Lost, id)
				}
			}
		case Refused, Failed:
			if keys[o.Key] {
				a.StoredButRefused = append(a.StoredButRefused, o)
			}
		case Unknown:
			a.Unknown++
			unknownKeys[o.Key] = true
			if keys[o.Key] {
				a.UnknownStored++
			}
		}
	}
	a.Acknowledged = len(acked)
	refusedKeys := map[string]bool{}
	for _, o := range a.StoredButRefused {
		refusedKeys[o.Key] = true
	}
	for _, s := range stored {
		if !acked[s.ID] && !unknownKeys[s.Key] && !refusedKeys[s.Key] && !slices.Contains(a.Unexpected, s.ID) {
			a.Unexpected = append(a.Unexpected, s.ID)
		}
	}
	return a
}

// Anomalies are the operations no linearization can hold, by class, judged
// against the journal's order of each device's events (the order its
// compare-and-set appends fixed).
type Anomalies struct {
	// StaleRefusals are increments refused R-HW-LOCK although no state of
	// the device between what had been acknowledged before the call and
	// what was acknowledged after the return was locked.
	StaleRefusals []Op
	// StaleReads answered a version older than one acknowledged before the
	// read began.
	StaleReads []Op
	// WrongReads answered a count or lock that the journal never held at
	// the version they named.
	WrongReads []Op
}

func (a Anomalies) String() string {
	return fmt.Sprintf("%d stale refusals, %d stale reads, %d wrong reads", len(a.StaleRefusals), len(a.StaleReads), len(a.WrongReads))
}

// Explain classifies the operations of ops that contradict stored.
func Explain(ops []Op, stored []Stored) Anomalies {
	counts := map[string][]int{} // device → count after each version (index 0: before any)
	for _, s := range stored {
		c := counts[s.Device]
		if c == nil {
			c = []int{0}
		}
		for uint64(len(c)) <= s.Version {
			c = append(c, c[len(c)-1])
		}
		c[s.Version] = s.Count
		counts[s.Device] = c
	}
	byDevice := map[string][]Op{}
	for _, o := range ops {
		if o.Outcome == Accepted {
			byDevice[o.Device] = append(byDevice[o.Device], o)
		}
	}
	var a Anomalies
	for _, o := range ops {
		c := counts[o.Device]
		last := uint64(len(c)) - 1
		var lo uint64 // the highest version acknowledged before o began
		hi := last    // the highest version o may have seen: below any acknowledged after it returned
		for _, p := range byDevice[o.Device] {
			if p.Return < o.Call {
				lo = max(lo, p.Version)
			}
			if p.Call > o.Return && o.Outcome != Unknown {
				if p.Kind == Read {
					hi = min(hi, p.Version)
				} else if p.Version > 0 {
					hi = min(hi, p.Version-1)
				}
			}
		}
		switch {
		case o.Kind == Increment && o.Outcome == Refused && o.Rule == "R-HW-LOCK":
			locked := false
			for v := lo; v <= hi && v <= last; v++ {
				locked = locked || c[v] >= Lock
			}
			if !locked {
				a.StaleRefusals = append(a.StaleRefusals, o)
			}
		case o.Kind == Read && o.Outcome == Accepted && o.Version < lo:
			a.StaleReads = append(a.StaleReads, o)
		case o.Kind == Read && o.Outcome == Accepted && (o.Version > last || c[o.Version] != o.Count || o.Locked != (o.Count >= Lock)):
			a.WrongReads = append(a.WrongReads, o)
		}
	}
	return a
}
