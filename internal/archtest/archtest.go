// Package archtest checks the shape of the module from its tests: which
// packages a package may depend on.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// ForbidDeps fails t when the package at path (as `go list` takes it)
// depends, directly or not, on a package whose import path equals one of
// forbidden or lies under it.
func ForbidDeps(t *testing.T, path string, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", path).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", path, err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("%s depends on %s (forbidden: %s)", path, dep, f)
			}
		}
	}
}
