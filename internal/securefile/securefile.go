// Package securefile writes files that hold secrets or personal data so
// that only their owner reads them: mode 0600 whatever a file of that name
// had before, and never through a symbolic link planted in its place.
package securefile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces the file at path with data, mode 0600: a temporary file
// of the same directory, synced, renamed over path. A symbolic link at
// path is replaced, never followed; a reader sees the old file or the new
// one, never half of it.
func Write(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Create opens path for writing, truncated, mode 0600 (an existing file's
// mode is narrowed too). A symbolic link at path is refused.
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link: refused (name a file)", path)
		}
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
