package journal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// consumeOnly are the files outside events/journal that may import the
// jetstream package: the projector's pull subscriber, which fetches and acks
// the durable consumer [Journal.DurableConsumer] made. They may use its
// consumer types, never a JetStream context or a publish option.
var consumeOnly = map[string]bool{
	"consumers/subscriber.go": true,
	"consumers/projector.go":  true,
	"consumers/trace.go":      true, // reads the traceparent header of consumed messages
}

// writeIdents are the jetstream identifiers that write to (or administer)
// a stream: none may appear outside events/journal.
var writeIdents = map[string]bool{
	"New": true, "NewWithAPIPrefix": true, "NewWithDomain": true, "JetStream": true, "StreamConfig": true,
	"WithExpectLastSequence": true, "WithExpectLastSequencePerSubject": true, "WithExpectLastMsgID": true,
	"WithMsgID": true, "ExpectedLastSubjSeqHeader": true, "ExpectedLastSeqHeader": true, "MsgIDHeader": true,
}

// publishCalls are the core NATS calls that store a message when its subject
// is a stream's: a write that bypasses JetStream's checks entirely.
var publishCalls = map[string]bool{
	"Publish": true, "PublishMsg": true, "PublishAsync": true, "PublishMsgAsync": true,
	"PublishRequest": true, "Request": true, "RequestMsg": true, "RequestWithContext": true, "RequestMsgWithContext": true,
}

// TestOneDoorToTheStream keeps every write to the stream inside package
// journal: it parses every Go file of the module (tests included) and fails
// on a file outside events/journal that imports jetstream (except the
// consume-only subscriber), orbit.go's jetstreamext or jsm.go, uses a jetstream
// identifier that writes, calls a publish or request on a NATS connection,
// or imports the benchmarks' raw writer (journalbench) from anywhere but
// internal/bench.
func TestOneDoorToTheStream(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() || !strings.HasSuffix(rel, ".go") || strings.HasPrefix(rel, "events/journal/") {
			return nil
		}
		files++
		for _, problem := range doorProblems(t, path, rel) {
			t.Errorf("%s: %s", rel, problem)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read %d Go files outside events/journal: the walk missed the module", files)
	}
}

func doorProblems(t *testing.T, path, rel string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // local name → import path
	var problems []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".go") // nats.go's package is nats
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
		switch {
		case p == "github.com/nats-io/nats.go/jetstream" && !consumeOnly[rel]:
			problems = append(problems, "imports nats.go/jetstream: read and write the stream through package journal")
		case p == "github.com/synadia-io/orbit.go/jetstreamext":
			problems = append(problems, "imports jetstreamext: atomic batches and batch gets belong to package journal")
		case strings.HasPrefix(p, "github.com/nats-io/jsm.go"):
			problems = append(problems, "imports jsm.go: snapshots and restores belong to package journal/backup")
		case strings.HasSuffix(p, "/events/journal/journalbench") && !strings.HasPrefix(rel, "internal/bench/"):
			problems = append(problems, "imports journalbench, the benchmarks' raw writer")
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && names[x.Name] == "github.com/nats-io/nats.go/jetstream" && writeIdents[sel.Sel.Name] {
			problems = append(problems, "uses jetstream."+sel.Sel.Name)
		}
		return true
	})
	if _, usesNATS := names["nats"]; usesNATS {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !publishCalls[sel.Sel.Name] {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || names[x.Name] == "" { // a method, not a package's function
					problems = append(problems, "calls "+sel.Sel.Name+" on a NATS connection")
				}
			}
			return true
		})
	}
	return problems
}

// TestOneDoorCatchesBypasses runs the check on files that bypass the
// journal, so that it cannot pass by reading nothing.
func TestOneDoorCatchesBypasses(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"js.go":    "package x\nimport \"github.com/nats-io/nats.go/jetstream\"\nvar _ jetstream.JetStream\n",
		"core.go":  "package x\nimport \"github.com/nats-io/nats.go\"\nfunc f(nc *nats.Conn) { _ = nc.Publish(\"otpledger.device.A.B\", nil) }\n",
		"batch.go": "package x\nimport _ \"github.com/synadia-io/orbit.go/jetstreamext\"\n",
	} {
		path := filepath.Join(dir, name)
		if err := writeFile(path, src); err != nil {
			t.Fatal(err)
		}
		if problems := doorProblems(t, path, "cmd/"+name); len(problems) == 0 {
			t.Errorf("%s: a bypass of the journal went unnoticed", name)
		}
	}
}

func writeFile(path, src string) error { return os.WriteFile(path, []byte(src), 0o600) }
