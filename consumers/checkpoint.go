package consumers

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
)

// Checkpoint is a signed statement over the stream up to sequence Seq: the
// running hash of every message up to it (checkpoints excepted). It stands
// after Seq — right after on a quiet stream, a few messages later under load
// (those are covered by the next) — and dates every event up to Seq.
type Checkpoint struct {
	Seq         uint64 `json:"seq"`
	RunningHash string `json:"running_hash"`
	KeyID       string `json:"key_id"`
	Signature   string `json:"signature"`
}

// runningHash chains every message of the stream: R = SHA-256(R ‖ seq ‖ SHA-256(body)).
type runningHash [32]byte

func (r *runningHash) add(seq uint64, body []byte) {
	h := sha256.New()
	b := sha256.Sum256(body)
	h.Write(r[:])
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	h.Write(b[:])
	copy(r[:], h.Sum(nil))
}

func signedText(seq uint64, running string) []byte {
	return []byte("otpledger checkpoint\n" + strconv.FormatUint(seq, 10) + "\n" + running)
}

// KeyID names a public key in checkpoints (its first 8 bytes, hex).
func KeyID(pub ed25519.PublicKey) string { return hex.EncodeToString(pub[:8]) }

// AppendCheckpoint signs the stream up to its current end and appends the
// checkpoint. It returns false when the stream has nothing new since the
// last checkpoint, or when other writers (replicas) kept appending
// checkpoints meanwhile: the append expects the checkpoint subject's last
// sequence, so replicas never sign the same stretch twice, and writers
// appending events meanwhile never stop it (they did, when a checkpoint had
// to stand right after its sequence: under steady load it never landed). A
// conflict is tried again, up to five times: in a cluster the last
// checkpoint is read from any replica, which may not have the newest yet.
func AppendCheckpoint(ctx context.Context, j *journal.Journal, key ed25519.PrivateKey) (bool, error) {
	for attempt := 1; ; attempt++ {
		ok, err := appendCheckpoint(ctx, j, key)
		if !errors.Is(err, journal.ErrConflict) {
			return ok, err
		}
		if attempt == 5 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// appendCheckpoint is one try of [AppendCheckpoint]: a conflict is
// journal.ErrConflict.
func appendCheckpoint(ctx context.Context, j *journal.Journal, key ed25519.PrivateKey) (bool, error) {
	var r runningHash
	var from uint64 // the running hash covers the messages up to from
	last, ok, err := LastCheckpoint(ctx, j)
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	if ok {
		b, err := hex.DecodeString(last.RunningHash)
		if err != nil || len(b) != 32 {
			return false, errors.New("checkpoint: the last checkpoint's running hash is malformed")
		}
		copy(r[:], b)
		from = last.Seq
	}
	end, err := j.LastSequence(ctx)
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	fresh := false                                                    // a message other than a checkpoint since from
	err = j.Scan(ctx, from, end, func(msgs []journal.Message) error { // the bytes are signed: nothing to decode
		for _, m := range msgs {
			if m.Subject != events.SubjectCheckpoint {
				r.add(m.Seq, m.Data)
				fresh = true
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return false, err
	}
	running := hex.EncodeToString(r[:])
	cp := Checkpoint{Seq: end, RunningHash: running, KeyID: KeyID(key.Public().(ed25519.PublicKey)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedText(end, running)))}
	body, _ := json.Marshal(cp)
	if err := j.AppendCheckpoint(ctx, body, last.StoredAt); err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	return true, nil
}

// recentHashes keeps the running hash after each of the last
// len(recentHashes) messages: what a checkpoint standing a few messages
// after the sequence it covers is checked against.
type recentHashes [4096]recentHash

type recentHash struct {
	seq uint64
	r   runningHash
}

func (h *recentHashes) put(seq uint64, r runningHash) { h[seq%uint64(len(h))] = recentHash{seq, r} }

func (h *recentHashes) at(seq uint64) (runningHash, bool) {
	e := h[seq%uint64(len(h))]
	return e.r, e.seq == seq
}

// checkCheckpoint verifies a checkpoint message at seq, the previous one
// having covered up to prev, against the running hashes of the messages
// before it; pub nil skips the signature.
func checkCheckpoint(seq, prev uint64, body []byte, hashes *recentHashes, pub ed25519.PublicKey) (covers uint64, problem string) {
	var cp Checkpoint
	if err := json.Unmarshal(body, &cp); err != nil {
		return prev, "unreadable checkpoint"
	}
	running, known := hashes.at(cp.Seq)
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	switch {
	case cp.Seq >= seq || cp.Seq < prev:
		return prev, fmt.Sprintf("checkpoint covers sequence %d but stands at %d, after one covering %d", cp.Seq, seq, prev)
	case !known:
		return prev, fmt.Sprintf("checkpoint covers sequence %d, too far behind it (%d) to check", cp.Seq, seq)
	case cp.RunningHash != hex.EncodeToString(running[:]):
		return prev, "the stream up to this checkpoint is not the one it signed"
	case pub != nil && (err != nil || !ed25519.Verify(pub, signedText(cp.Seq, cp.RunningHash), sig)):
		return prev, "signature does not verify with the ledger's key"
	}
	return cp.Seq, ""
}
