package torture

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Kind is what an operation does to a device.
type Kind string

// The operations of the device workload.
const (
	Register  Kind = "register"  // the device's registration, before the run
	Increment Kind = "increment" // one failed authentication (R-HW-LOCK)
	Reset     Kind = "reset"     // the error count back to 0 (2375)
	Read      Kind = "read"      // GET /v1/devices/{vendor}/{serial}
)

// Outcome is how an operation ended, as its client saw it.
type Outcome string

// The outcomes of an operation.
const (
	// Accepted: 201 for a command (the answer's events), 200 for a read.
	Accepted Outcome = "accepted"
	// Refused: 409 with a rule id; nothing appended.
	Refused Outcome = "refused"
	// Failed: every attempt answered 503 — nothing appended, says api.md.
	Failed Outcome = "failed"
	// Unknown: no attempt answered (timeout, connection lost) and at least
	// one may have reached a replica: the command may or may not be stored.
	Unknown Outcome = "unknown"
)

// Op is one operation of the history: who made it, on which device, when
// (nanoseconds on the run's monotonic clock), under which Idempotency-Key,
// and what came back.
type Op struct {
	Client  int     `json:"client"`
	Device  string  `json:"device"` // the serial; the vendor is always OTP
	Kind    Kind    `json:"kind"`
	Key     string  `json:"key,omitempty"`
	Call    int64   `json:"call"`
	Return  int64   `json:"return"` // of the last attempt; meaningless when Unknown
	Outcome Outcome `json:"outcome"`
	Rule    string  `json:"rule,omitempty"`
	// Version is the device's version the answer names: the appended event's
	// for a command, the state's for a read.
	Version  uint64   `json:"version,omitempty"`
	Count    int      `json:"count,omitempty"`  // a read's error count
	Locked   bool     `json:"locked,omitempty"` // a read's lock
	EventIDs []string `json:"event_ids,omitempty"`
	// Attempts names the replicas tried, in order ("r0", "r1" ...).
	Attempts []string `json:"attempts,omitempty"`
	Err      string   `json:"error,omitempty"` // the last attempt's error, for the record
}

func (o Op) String() string {
	s := fmt.Sprintf("client %d %s %s [%s]", o.Client, o.Kind, o.Device, o.Outcome)
	switch {
	case o.Outcome == Refused:
		s += " " + o.Rule
	case o.Outcome == Accepted && o.Kind == Read:
		s += fmt.Sprintf(" v%d count %d locked %v", o.Version, o.Count, o.Locked)
	case o.Outcome == Accepted:
		s += fmt.Sprintf(" v%d", o.Version)
	}
	return s + fmt.Sprintf(" %v..%v via %v", time.Duration(o.Call), time.Duration(o.Return), o.Attempts)
}

// Recorder collects the operations of concurrent clients with times from
// one monotonic clock. It is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewRecorder returns a recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the recorder's clock: nanoseconds since it started (monotonic).
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records a finished operation.
func (r *Recorder) Add(o Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, o)
}

// Ops returns the operations recorded so far, by invocation time.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := slices.Clone(r.ops)
	slices.SortStableFunc(ops, func(a, b Op) int { return int(min(max(a.Call-b.Call, -1), 1)) })
	return ops
}

// SaveHistory writes ops as JSON to path.
func SaveHistory(path string, ops []Op) error {
	data, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
