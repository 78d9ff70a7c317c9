package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/backup"
	"github.com/otpledger/otpledger/internal/progress"
	"github.com/otpledger/otpledger/internal/securefile"
)

// backupCmd writes a snapshot of the stream and the keys that make a copy
// usable (fingerprint, checkpoint) into a new directory. On the embedded
// default, serve must be stopped (the snapshot is taken by the ledger's own
// server; the read-only credentials a running serve leaves cannot take one).
func backupCmd(ctx context.Context, cfg *config, out string, stdout, stderr io.Writer) error {
	// A new directory of the owner's alone: the snapshot's files are created
	// readable by all, and an existing directory (or a link) would expose them.
	if err := os.Mkdir(out, 0o700); err != nil {
		return fmt.Errorf("--out must name a new directory: %w", err)
	}
	n, err := openJournal(ctx, cfg, newLogger("warn", stderr), writes)
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "backing up the stream")
	m, err := backup.Save(ctx, n.nc, n.j.Stream(), out, bar.Update)
	bar.Finish()
	if err != nil {
		return err
	}
	for name, path := range cfg.keyFiles() {
		if _, err := os.Stat(path); path == "" || errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "no %s to back up (configure it, or keep it yourself)\n", name)
			continue
		}
		if err := backup.AddFile(out, name, path); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "backed up stream %s: %d messages up to sequence %d, with its keys, in %s (keep it as secret as the keys)\n",
		m.Stream, m.Messages, m.LastSequence, out)
	return nil
}

// restoreCmd restores a backup into a NATS without the stream (the embedded
// default's empty data directory, or a cluster, with the replicas of the
// configured durability) and puts its keys where this configuration reads
// them; a different key already there is an error, never overwritten.
func restoreCmd(ctx context.Context, cfg *config, in string, stdout, stderr io.Writer) error {
	m, err := backup.Read(in)
	if err != nil {
		return err
	}
	if err := placeKeys(cfg, in, m, false); err != nil {
		return err
	}
	n, err := connect(cfg, newLogger("warn", stderr), writes)
	if err != nil {
		return err
	}
	defer n.close()
	bar := progress.New(stderr, "restoring the stream")
	_, err = backup.Restore(ctx, n.nc, in, cfg.durabilityMode().Replicas(), bar.Update)
	bar.Finish()
	if err != nil {
		return err
	}
	if _, err := journal.Open(ctx, n.nc, journal.Config{Durability: cfg.durabilityMode()}); err != nil {
		return fmt.Errorf("the restored stream: %w", err)
	}
	if err := placeKeys(cfg, in, m, true); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored stream %s: %d messages up to sequence %d\n", m.Stream, m.Messages, m.LastSequence)
	return nil
}

// placeKeys checks (write false) or writes the backup's keys where cfg
// reads them.
func placeKeys(cfg *config, in string, m backup.Manifest, write bool) error {
	for name, path := range cfg.keyFiles() {
		if _, ok := m.Files[name]; !ok {
			continue
		}
		if path == "" {
			return fmt.Errorf("the backup holds %s: configure where it goes (OTPLEDGER_%s_FILE)", name, map[string]string{
				"fingerprint.key": "FINGERPRINT_KEY", "checkpoint.key": "CHECKPOINT_KEY"}[name])
		}
		want, err := os.ReadFile(filepath.Join(in, name))
		if err != nil {
			return err
		}
		have, err := os.ReadFile(path)
		switch {
		case err == nil && !bytes.Equal(bytes.TrimSpace(have), bytes.TrimSpace(want)):
			return fmt.Errorf("%s already holds another %s: restore would make the copy unreadable; move it away first", path, name)
		case err == nil || !write:
		case !errors.Is(err, os.ErrNotExist):
			return err
		default:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			if err := securefile.Write(path, want); err != nil {
				return err
			}
		}
	}
	return nil
}
