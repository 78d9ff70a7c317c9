package access

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events/journal/journaltest"
)

// TestBootstrapTokenFileIsTheOwners: the bootstrap admin token is written
// as a new file of mode 0600 — not through a symbolic link planted at
// admin.token (the file it points to is untouched), and not keeping the
// mode of an admin.token left readable by all.
func TestBootstrapTokenFileIsTheOwners(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(t *testing.T, dir, path string) string{
		"symbolic link": func(t *testing.T, dir, path string) string {
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("victim\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
			return victim
		},
		"old file readable by all": func(t *testing.T, dir, path string) string {
			if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return ""
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			keys, err := OpenKeys(ctx, journaltest.Journal(t), "IBKS", time.Now)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			victim := plant(t, dir, filepath.Join(dir, TokenFile))
			path, err := keys.Bootstrap(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("admin.token: mode %v, want a regular file of 0600", fi.Mode())
			}
			data, _ := os.ReadFile(path)
			if _, err := keys.Token(strings.TrimSpace(string(data))); err != nil {
				t.Errorf("the file's token: %v", err)
			}
			if victim != "" {
				if data, _ := os.ReadFile(victim); string(data) != "victim\n" {
					t.Errorf("the link's target was written: %q", data)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".admin.token.*")); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
