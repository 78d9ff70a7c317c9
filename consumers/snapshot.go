package consumers

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/securefile"
	"github.com/otpledger/otpledger/projections"
)

// Snapshot files in a data directory: the memory views' encoding, and the
// header that vouches for it, written last.
const (
	SnapshotFile       = "views.snapshot"
	SnapshotHeaderFile = "views.snapshot.json"
)

// snapshotHeader says what a snapshot is: its format, the stream and the
// position it was folded to, the SHA-256 of the message at that position
// (so that a snapshot of another stream, or of a stream since replaced, is
// not taken for this one's) and of the snapshot file.
type snapshotHeader struct {
	Format      string `json:"format"`
	Stream      string `json:"stream"`
	Position    uint64 `json:"position"`
	MessageHash string `json:"message_sha256"`
	FileHash    string `json:"file_sha256"`
}

// SaveSnapshot writes m's views into dir (atomically: the header is renamed
// into place last), for [LoadSnapshot] at the next start.
func SaveSnapshot(ctx context.Context, j *journal.Journal, m *projections.Memory, dir string) error {
	tmp, err := os.CreateTemp(dir, SnapshotFile+".*")
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	pos, sum, err := m.WriteSnapshot(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || pos == 0 {
		return err
	}
	msg, err := j.Get(ctx, pos)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	mh := sha256.Sum256(msg.Data)
	header, _ := json.Marshal(snapshotHeader{Format: projections.SnapshotFormat, Stream: j.Stream(), Position: pos,
		MessageHash: hex.EncodeToString(mh[:]), FileHash: hex.EncodeToString(sum[:])})
	if err := os.Rename(tmp.Name(), filepath.Join(dir, SnapshotFile)); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := securefile.Write(filepath.Join(dir, SnapshotHeaderFile), header); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	return nil
}

// ErrNoSnapshot is returned by [LoadSnapshot] when dir holds none.
var ErrNoSnapshot = errors.New("no snapshot of the views")

// LoadSnapshot reads the views' snapshot in dir, checked rather than
// trusted — its format, its stream, the message at its position (the same
// bytes in this stream, which must reach that far) and its file's hash —
// and brings it up to the stream's end. Any mismatch is an error that names
// it: the caller folds the stream instead.
func LoadSnapshot(ctx context.Context, j *journal.Journal, dir string, progress Progress) (*projections.Memory, error) {
	data, err := os.ReadFile(filepath.Join(dir, SnapshotHeaderFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoSnapshot
	}
	if err != nil {
		return nil, err
	}
	var h snapshotHeader
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("snapshot header: %w", err)
	}
	sum, err := hex.DecodeString(h.FileHash)
	if err != nil || len(sum) != 32 {
		return nil, errors.New("snapshot header: no file hash")
	}
	last, err := j.LastSequence(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Format != projections.SnapshotFormat:
		return nil, fmt.Errorf("snapshot of format %q, want %q", h.Format, projections.SnapshotFormat)
	case h.Stream != j.Stream():
		return nil, fmt.Errorf("snapshot of stream %s, not %s", h.Stream, j.Stream())
	case h.Position > last:
		return nil, fmt.Errorf("snapshot at sequence %d, ahead of the stream's end %d", h.Position, last)
	}
	msg, err := j.Get(ctx, h.Position)
	if err != nil {
		return nil, err
	}
	if mh := sha256.Sum256(msg.Data); hex.EncodeToString(mh[:]) != h.MessageHash {
		return nil, fmt.Errorf("snapshot of another stream: the message at sequence %d differs", h.Position)
	}
	f, err := os.Open(filepath.Join(dir, SnapshotFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := projections.ReadSnapshot(bufio.NewReaderSize(f, 1<<20), h.Position, [32]byte(sum))
	if err != nil {
		return nil, err
	}
	err = ReadStream(ctx, j, h.Position, last, func(items []projections.Item) error {
		if progress != nil {
			progress(items[len(items)-1].Seq, last)
		}
		return m.Apply(ctx, items)
	})
	return m, err
}
