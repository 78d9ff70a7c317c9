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

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/projections"
)

// Checkpoint is a signed statement over the stream up to a sequence: the
// running hash of every message before it (checkpoints excepted). Appended
// right after the sequence it covers, it dates every event before it.
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

// AppendCheckpoint signs the stream's current end and appends a checkpoint
// right after it (the append expects that last sequence, so nothing slips in
// between). It returns false when the stream has nothing new since the last
// checkpoint, or kept growing on every try.
func AppendCheckpoint(ctx context.Context, j *journal.Journal, key ed25519.PrivateKey) (bool, error) {
	var r runningHash
	var from uint64 // the running hash covers the messages up to from
	lastSeq, lastBody, ok, err := j.LastCheckpoint(ctx)
	if err != nil {
		return false, fmt.Errorf("checkpoint: %w", err)
	}
	if ok {
		var cp Checkpoint
		if err := json.Unmarshal(lastBody, &cp); err != nil {
			return false, fmt.Errorf("checkpoint: the last checkpoint is unreadable: %w", err)
		}
		b, err := hex.DecodeString(cp.RunningHash)
		if err != nil || len(b) != 32 {
			return false, errors.New("checkpoint: the last checkpoint's running hash is malformed")
		}
		copy(r[:], b)
		from = lastSeq // the checkpoint itself is not hashed
	}
	for range 5 {
		end, err := j.LastSequence(ctx)
		if err != nil {
			return false, fmt.Errorf("checkpoint: %w", err)
		}
		if end <= from {
			return false, nil
		}
		err = ReadStream(ctx, j, from, end, func(items []projections.Item) error {
			for _, it := range items {
				if it.Subject != events.SubjectCheckpoint {
					r.add(it.Seq, it.Data)
				}
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		from = end
		running := hex.EncodeToString(r[:])
		cp := Checkpoint{Seq: end, RunningHash: running, KeyID: KeyID(key.Public().(ed25519.PublicKey)),
			Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedText(end, running)))}
		body, _ := json.Marshal(cp)
		err = j.AppendCheckpoint(ctx, body, end)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, journal.ErrConflict) {
			return false, fmt.Errorf("checkpoint: %w", err)
		}
	}
	return false, nil
}

// checkCheckpoint verifies a checkpoint message at seq against the running
// hash of everything before it; pub nil skips the signature.
func checkCheckpoint(seq uint64, body []byte, r runningHash, pub ed25519.PublicKey) string {
	var cp Checkpoint
	if err := json.Unmarshal(body, &cp); err != nil {
		return "unreadable checkpoint"
	}
	running := hex.EncodeToString(r[:])
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	switch {
	case cp.Seq != seq-1:
		return fmt.Sprintf("checkpoint covers sequence %d but stands at %d", cp.Seq, seq)
	case cp.RunningHash != running:
		return "the stream before this checkpoint is not the one it signed"
	case pub != nil && (err != nil || !ed25519.Verify(pub, signedText(cp.Seq, cp.RunningHash), sig)):
		return "signature does not verify with the ledger's key"
	}
	return ""
}
