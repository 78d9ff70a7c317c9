package consumers

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestSnapshotSaveFollowsNoSymlink: symbolic links planted where the
// snapshot's header is written (its old temporary name and its name) are
// replaced, never followed: the file they point to is unchanged, and the
// snapshot saved loads.
func TestSnapshotSaveFollowsNoSymlink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	if _, err := e.j.Append(ctx, journal.Record{Commit: journaltest.ErrorCommit("SERIAL0001", 1)}); err != nil {
		t.Fatal(err)
	}
	m, err := Fold(ctx, e.j, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{SnapshotHeaderFile + ".tmp", SnapshotHeaderFile} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveSnapshot(ctx, e.j, m, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "keep\n" {
		t.Fatalf("the file the links point to now holds %q (%v)", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, SnapshotHeaderFile)); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v", SnapshotHeaderFile, fi.Mode(), err)
	}
	if _, err := LoadSnapshot(ctx, e.j, dir, nil); err != nil {
		t.Fatal(err)
	}
}
