// Package backup saves the journal's stream with JetStream's snapshot API —
// every message with its sequence, subject, headers (the state snapshots)
// and the stream's settings (deny delete and purge) — and restores it into a
// server or cluster that has no such stream, with the replica count the
// target's durability asks for. It is in events/journal beside the journal
// because a restore writes the stream, and a package of its own because the
// snapshot client (github.com/nats-io/jsm.go) is for the operators'
// commands, not for every producer that links the ledger.
//
// A backup is a directory: the snapshot (stream.s2 / backup.json, jsm.go's
// format) and manifest.json, which names the stream, its last sequence and
// the SHA-256 of each file. The keys that make a copy usable (the
// fingerprint key for real-name look-ups, the checkpoint key) are not the
// stream's: the command line copies them beside it.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/jsm.go"
	"github.com/nats-io/jsm.go/api"
	"github.com/nats-io/nats.go"
)

// ManifestFile names the manifest in a backup directory.
const ManifestFile = "manifest.json"

// Manifest describes a backup.
type Manifest struct {
	Stream       string            `json:"stream"`
	LastSequence uint64            `json:"last_sequence"`
	Messages     uint64            `json:"messages"`
	TakenAt      time.Time         `json:"taken_at"`
	Files        map[string]string `json:"files"` // name → SHA-256 (hex) of every other file in the directory
}

// ErrExists is returned by [Restore] when the target already has the stream.
var ErrExists = errors.New("backup: the target already holds the stream (restore needs a server without it)")

// Save writes a snapshot of stream to dir (created; it must not hold a
// backup) and the manifest; progress, when not nil, gets bytes received
// and expected.
func Save(ctx context.Context, nc *nats.Conn, stream, dir string, progress func(done, total uint64)) (Manifest, error) {
	mgr, err := jsm.New(nc)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	s, err := mgr.LoadStream(stream)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: stream %s: %w", stream, err)
	}
	state, err := s.LatestState()
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: stream %s: %w", stream, err)
	}
	opts := []jsm.SnapshotOption{jsm.SnapshotHealthCheck()}
	if progress != nil {
		opts = append(opts, jsm.SnapshotNotify(func(p jsm.SnapshotProgress) { progress(p.BytesReceived(), p.BytesExpected()) }))
	}
	if _, err := s.SnapshotToDirectory(ctx, dir, opts...); err != nil {
		return Manifest{}, fmt.Errorf("backup: snapshot: %w", err)
	}
	m := Manifest{Stream: stream, LastSequence: state.LastSeq, Messages: state.Msgs, TakenAt: time.Now().UTC()}
	if m.Files, err = digests(dir); err != nil {
		return Manifest{}, err
	}
	return m, writeJSON(filepath.Join(dir, ManifestFile), m)
}

// AddFile copies the file at src into the backup dir as name and records
// its digest in the manifest (the keys the command line keeps beside the
// stream). The copy is readable by its owner only.
func AddFile(dir, name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	m, err := Read(dir)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m.Files[name] = hex.EncodeToString(sum[:])
	return writeJSON(filepath.Join(dir, ManifestFile), m)
}

// Read reads the manifest of the backup in dir and checks every file it
// names against its digest.
func Read(dir string) (Manifest, error) {
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Stream == "" {
		return m, fmt.Errorf("backup: %s is not a backup manifest", ManifestFile)
	}
	for name, want := range m.Files {
		got, err := digest(filepath.Join(dir, name))
		if err != nil {
			return m, err
		}
		if got != want {
			return m, fmt.Errorf("backup: %s does not match its digest in the manifest (altered or cut short)", name)
		}
	}
	return m, nil
}

// Restore restores the backup in dir into the server of nc, which must not
// hold the stream, with replicas replicas, and returns its manifest once the
// restored stream's last sequence is the manifest's.
func Restore(ctx context.Context, nc *nats.Conn, dir string, replicas int, progress func(done, total uint64)) (Manifest, error) {
	m, err := Read(dir)
	if err != nil {
		return m, err
	}
	mgr, err := jsm.New(nc)
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if known, err := mgr.IsKnownStream(m.Stream); err != nil {
		return m, fmt.Errorf("restore: %w", err)
	} else if known {
		return m, ErrExists
	}
	var req api.JSApiStreamRestoreRequest
	meta, err := os.ReadFile(filepath.Join(dir, jsm.SnapshotMetaFile))
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if err := json.Unmarshal(meta, &req); err != nil {
		return m, fmt.Errorf("restore: %s: %w", jsm.SnapshotMetaFile, err)
	}
	req.Config.Replicas = replicas
	opts := []jsm.SnapshotOption{jsm.RestoreConfiguration(req.Config)}
	if progress != nil {
		opts = append(opts, jsm.RestoreNotify(func(p jsm.RestoreProgress) { progress(p.BytesSent(), uint64(p.ChunksToSend())*uint64(p.ChunkSize())) }))
	}
	_, state, err := mgr.RestoreSnapshotFromDirectory(ctx, m.Stream, dir, opts...)
	if err != nil {
		return m, fmt.Errorf("restore: %w", err)
	}
	if state.LastSeq != m.LastSequence || state.Msgs != m.Messages {
		return m, fmt.Errorf("restore: the stream ends at %d with %d messages, the backup at %d with %d", state.LastSeq, state.Msgs, m.LastSequence, m.Messages)
	}
	return m, nil
}

// digests returns the SHA-256 of every file in dir but the manifest.
func digests(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || e.Name() == ManifestFile {
			continue
		}
		if out[e.Name()], err = digest(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func digest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("backup: %s: %w", filepath.Base(path), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
