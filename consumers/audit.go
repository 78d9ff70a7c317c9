package consumers

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/otpledger/otpledger/events/journal"
)

// Verification is one run of [Verify] by a [Verifier]: running while
// Finished is zero; Error says why a run could not finish (the report then
// covers what was read).
type Verification struct {
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at,omitzero"`
	Report   Report    `json:"report"`
	Error    string    `json:"error,omitempty"`
}

// Verifier runs [Verify] in the background, one run at a time, and keeps
// the last run's result: what the audit screen shows beside the last signed
// checkpoint. It is safe for concurrent use.
type Verifier struct {
	ctx context.Context // bounds every run: the server's, not a request's
	j   *journal.Journal
	pub ed25519.PublicKey
	now func() time.Time

	mu   sync.Mutex
	last *Verification // nil: never run
	done chan struct{} // closed when the running verification ends; nil when none runs
}

// NewVerifier returns a verifier of j's stream whose runs end with ctx;
// pub (optional) checks the checkpoints' signatures.
func NewVerifier(ctx context.Context, j *journal.Journal, pub ed25519.PublicKey) *Verifier {
	return &Verifier{ctx: ctx, j: j, pub: pub, now: time.Now}
}

// Start begins a verification unless one is running, and returns a channel
// closed when the running one ends (the new one, or the one already
// running). The run is bounded by the verifier's context, not by the
// request that started it.
func (v *Verifier) Start() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.done != nil {
		return v.done
	}
	done := make(chan struct{})
	v.done, v.last = done, &Verification{Started: v.now().UTC()}
	go func() {
		defer close(done)
		rep, err := Verify(v.ctx, v.j, v.pub, nil)
		v.mu.Lock()
		defer v.mu.Unlock()
		v.last = &Verification{Started: v.last.Started, Finished: v.now().UTC(), Report: rep}
		if err != nil {
			v.last.Error = err.Error()
		}
		v.done = nil
	}()
	return done
}

// Last returns the last verification (running or finished), ok false when
// none ever ran.
func (v *Verifier) Last() (Verification, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.last == nil {
		return Verification{}, false
	}
	return *v.last, true
}

// Every runs a verification every interval until ctx ends.
func (v *Verifier) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			<-v.Start()
		}
	}
}

// StoredCheckpoint is the stream's last signed checkpoint, as the audit
// screen shows it: what it covers, where and when it was stored.
type StoredCheckpoint struct {
	Checkpoint
	StoredAt uint64    `json:"stored_at"`
	Time     time.Time `json:"time"`
}

// LastCheckpoint returns j's last signed checkpoint, ok false when the
// stream has none yet.
func LastCheckpoint(ctx context.Context, j *journal.Journal) (StoredCheckpoint, bool, error) {
	m, ok, err := j.LastCheckpoint(ctx)
	if err != nil || !ok {
		return StoredCheckpoint{}, ok, err
	}
	sc := StoredCheckpoint{StoredAt: m.Seq, Time: m.Time.UTC()}
	if err := json.Unmarshal(m.Data, &sc.Checkpoint); err != nil {
		return StoredCheckpoint{}, false, fmt.Errorf("last checkpoint at %d: unreadable: %w", m.Seq, err)
	}
	return sc, true, nil
}
