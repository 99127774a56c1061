package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoRawSyscalls checks that the tools read regions only through the
// library's packages: no non-test file of cmd/shmchan (outside the
// benchmark, whose kernel transports need them) imports unsafe or
// golang.org/x/sys, and package syscall is used for nothing but signal
// numbers (syscall.SIGTERM).
func TestNoRawSyscalls(t *testing.T) {
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == filepath.Join("internal", "bench") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		seen[path] = true
		var sys []string // the names package syscall goes by in this file
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			switch {
			case p == "unsafe", p == "golang.org/x/sys" || strings.HasPrefix(p, "golang.org/x/sys/"):
				t.Errorf("%s imports %s", fset.Position(imp.Pos()), p)
			case p == "syscall":
				name := "syscall"
				if imp.Name != nil {
					name = imp.Name.Name
				}
				if name == "." || name == "_" {
					t.Errorf("%s imports syscall as %q", fset.Position(imp.Pos()), name)
				}
				sys = append(sys, name)
			}
		}
		if len(sys) == 0 {
			return nil
		}
		f, err = parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok {
				for _, name := range sys {
					if id.Name == name && !strings.HasPrefix(sel.Sel.Name, "SIG") {
						t.Errorf("%s uses %s.%s: only signal numbers may come from package syscall", fset.Position(sel.Pos()), name, sel.Sel.Name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The check must have looked at the tools, and skipped the benchmark.
	for _, want := range []string{"main.go", "inspect.go", "ls.go", "stat.go", "watch.go", "rm.go"} {
		if !seen[want] {
			t.Errorf("%s was not checked (checked: %v)", want, seen)
		}
	}
	for p := range seen {
		if strings.HasPrefix(p, filepath.Join("internal", "bench")+string(filepath.Separator)) {
			t.Errorf("%s is in the benchmark and should not be checked", p)
		}
	}
}
