package embedded

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpledger/otpledger/events/journal"
)

// TestDataDirectorySymlinksNotFollowed: a symbolic link planted in the data
// directory as LOCK is refused (the pid is not written through it), and one
// planted as reader.json is replaced by a file of mode 0600, never
// followed: the files they point to are unchanged.
func TestDataDirectorySymlinksNotFollowed(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		if b, err := os.ReadFile(target); err != nil || string(b) != "keep\n" {
			t.Fatalf("%s: the file the link points to now holds %q (%v)", what, b, err)
		}
	}
	lock := filepath.Join(dir, LockFile)
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	if e, err := Run(Config{DataDir: dir, Durability: journal.Interval}); err == nil {
		e.Close()
		t.Error("a symbolic link as LOCK was accepted")
	} else if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a symbolic link as LOCK: %v", err)
	}
	unchanged("LOCK")
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	reader := filepath.Join(dir, ReaderFile)
	if err := os.Symlink(target, reader); err != nil {
		t.Fatal(err)
	}
	e, err := Run(Config{DataDir: dir, Durability: journal.Interval})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	unchanged("reader.json")
	if fi, err := os.Lstat(reader); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("reader.json: %v, %v", fi.Mode(), err)
	}
	nc, err := DialReader(dir, "test-reader")
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}
