package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines bounds a function outside the tests.
const maxLines = 80

// longer lists the functions over maxLines that are still to be split
// (issue 15), with their length when listed: the list only shrinks. A
// function that grows past its length, or a new one over the bound, fails
// the test; one split below the bound must leave the list.
var longer = map[string]int{
	"internal/streamgen/streamgen.go generate": 129,
	"projections/memory.go change":             106,
	"projections/postgres.go queue":            84,
}

// TestFunctionLength walks every Go file of the module outside tests.
func TestFunctionLength(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
			name := filepath.ToSlash(rel) + " " + fd.Name.Name
			listed, ok := longer[name]
			switch {
			case ok && n <= maxLines:
				t.Errorf("%s is %d lines now: take it off the list", name, n)
			case ok && n > listed:
				t.Errorf("%s grew from %d to %d lines (at most %d; split it)", name, listed, n, maxLines)
			case !ok && n > maxLines:
				t.Errorf("%s is %d lines (at most %d)", name, n, maxLines)
			}
			seen[name] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range longer {
		if !seen[name] {
			t.Errorf("%s is gone: take it off the list", name)
		}
	}
}
