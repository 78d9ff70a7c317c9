package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportFileIsTheOwners: 'export --out' writes a file of mode 0600
// (the events hold personal data), narrowing an existing file's mode, and
// refuses a symbolic link in the file's place instead of writing through
// it; the fingerprint key the embedded default generates replaces a link
// planted in its place too; backup --out writes a new directory of mode
// 0700 and refuses an existing one.
func TestExportFileIsTheOwners(t *testing.T) {
	t.Parallel()
	data, out := t.TempDir(), t.TempDir()
	victim := filepath.Join(out, "victim")
	for path, mode := range map[string]os.FileMode{victim: 0o644, filepath.Join(out, "old.jsonl"): 0o644} {
		if err := os.WriteFile(path, []byte("untouched\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	// A link planted where the embedded default generates its key.
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	keyVictim := filepath.Join(out, "key-victim")
	if err := os.Symlink(keyVictim, filepath.Join(data, "fingerprint.key")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(out, "link.jsonl")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	env := []string{"OTPLEDGER_DATA_DIR=" + data, "OTPLEDGER_NATS_URL=", "OTPLEDGER_DATABASE_URL="}
	start(t, env...).stop(t) // a journal to export, and the generated keys
	for _, name := range []string{"new.jsonl", "old.jsonl"} {
		path := filepath.Join(out, name)
		if msg, code := runCLI(t, env, "export", "--out", path); code != 0 {
			t.Fatalf("export --out %s: exit %d\n%s", name, code, msg)
		}
		if fi, err := os.Lstat(path); err != nil || fi.Mode() != 0o600 {
			t.Errorf("export --out %s: mode %v (%v), want 0600", name, fi.Mode(), err)
		}
	}
	if msg, code := runCLI(t, env, "export", "--out", link); code == 0 || !strings.Contains(msg, "symbolic link") {
		t.Errorf("export --out a symbolic link: exit %d\n%s", code, msg)
	}
	if got, _ := os.ReadFile(victim); string(got) != "untouched\n" {
		t.Errorf("the link's target was written (%d bytes)", len(got))
	}
	if msg, code := runCLI(t, env, "backup", "--out", out); code == 0 || !strings.Contains(msg, "new directory") {
		t.Errorf("backup --out an existing directory: exit %d\n%s", code, msg)
	}
	if msg, code := runCLI(t, env, "backup", "--out", filepath.Join(out, "backup")); code != 0 {
		t.Errorf("backup --out a new directory: exit %d\n%s", code, msg)
	} else if fi, err := os.Stat(filepath.Join(out, "backup")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the backup directory: %v %v, want 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(keyVictim); err == nil {
		t.Errorf("the fingerprint key was written through a link planted in the data directory")
	}
	if fi, err := os.Lstat(filepath.Join(data, "fingerprint.key")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("fingerprint.key: %v %v, want a regular file of 0600", fi.Mode(), err)
	}
}
