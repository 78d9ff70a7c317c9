package events

import (
	"encoding/json"
	"strings"
)

// SubjectPrefix is the first token of every journal subject.
const SubjectPrefix = "otpledger"

// SubjectAll matches every subject of the journal: the aggregates' and
// [SubjectCheckpoint].
const SubjectAll = SubjectPrefix + ".>"

// SubjectCheckpoint carries the ledger's signed checkpoints over the stream.
const SubjectCheckpoint = SubjectPrefix + ".checkpoint"

// Subject returns the journal subject of one aggregate instance:
// otpledger.device.<vendor>.<serial> or otpledger.customer.<customer_no>.
// ref must be valid ([AggregateRef.Validate]).
func Subject(ref AggregateRef) string {
	return SubjectPrefix + "." + string(ref.Kind) + "." + ref.Key
}

// ParseSubject is the inverse of [Subject].
func ParseSubject(subject string) (AggregateRef, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return AggregateRef{}, false
	}
	kind, key, ok := strings.Cut(rest, ".")
	if !ok {
		return AggregateRef{}, false
	}
	ref := AggregateRef{Kind: AggregateKind(kind), Key: key}
	return ref, ref.Validate() == nil
}

// Commit is the unit written to the journal: the events one command produced
// for one aggregate, stored together in one message so that they are atomic.
type Commit struct {
	Events []Event `json:"events"`
}

// Aggregate returns the aggregate all of the commit's events belong to.
func (c Commit) Aggregate() AggregateRef { return c.Events[0].Aggregate }

// Validate checks that c holds at least one event, that every event is valid
// and that all belong to one aggregate.
func (c Commit) Validate() error {
	if len(c.Events) == 0 {
		return fieldErr("events", "required")
	}
	for i, e := range c.Events {
		if err := e.Validate(); err != nil {
			return prefixed("events["+itoa(i)+"]", err)
		}
		if e.Aggregate != c.Events[0].Aggregate {
			return fieldErr("events["+itoa(i)+"].aggregate", "all events of a commit belong to one aggregate")
		}
	}
	return nil
}

// EncodeCommit validates c and encodes it as the journal message body.
func EncodeCommit(c Commit) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	buf := append(make([]byte, 0, 600*len(c.Events)), `{"events":[`...)
	for i, e := range c.Events {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = e.appendJSON(buf); err != nil {
			return nil, err
		}
	}
	return append(buf, ']', '}'), nil
}

// wireCommit defers event decoding so that each event's errors carry its index.
type wireCommit struct {
	Events []json.RawMessage `json:"events"`
}

// DecodeCommit decodes a journal message body strictly (see [DecodeEvent]);
// errors are [*FieldError]s with paths such as "events[1].payload.reason".
// Valid bodies take a one-pass path; only a body that fails it is decoded
// again, step by step, to name its problem.
func DecodeCommit(data []byte) (Commit, error) {
	if c, ok := decodeCommitFast(data); ok {
		return c, nil
	}
	return decodeCommitStepwise(data)
}

// decodeCommitStepwise decodes each level on its own, to name a problem.
func decodeCommitStepwise(data []byte) (Commit, error) {
	var w wireCommit
	if err := strictUnmarshal(data, &w, ""); err != nil {
		return Commit{}, err
	}
	c := Commit{Events: make([]Event, 0, len(w.Events))}
	for i, raw := range w.Events {
		e, err := DecodeEvent(raw)
		if err != nil {
			return Commit{}, prefixed("events["+itoa(i)+"]", err)
		}
		c.Events = append(c.Events, e)
	}
	if err := c.Validate(); err != nil {
		return Commit{}, err
	}
	return c, nil
}

// decodeCommitFast decodes the journal's own encoding in one pass ([reader]),
// validating each event once; ok is false for anything it declines.
func decodeCommitFast(data []byte) (Commit, bool) {
	r := reader{data: data}
	c := r.commit()
	if !r.end() || len(c.Events) == 0 {
		return Commit{}, false
	}
	for _, e := range c.Events[1:] {
		if e.Aggregate != c.Events[0].Aggregate {
			return Commit{}, false
		}
	}
	return c, true
}
