package shmchan

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryDeps: the library (the root package and everything it
// imports) depends on nothing beyond x/sys, xxhash and the standard
// library, whatever the command and the bridge pull in.
func TestLibraryDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{"github.com/shmchan/shmchan", "golang.org/x/sys/", "github.com/cespare/xxhash/v2"}
	n := 0
	for _, p := range strings.Fields(string(out)) {
		n++
		ok := false
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+"/") || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("the library imports %s", p)
		}
		if strings.HasPrefix(p, "github.com/shmchan/shmchan/cmd") || strings.HasPrefix(p, "github.com/shmchan/shmchan/natsbridge") {
			t.Errorf("the library imports a command or the bridge: %s", p)
		}
	}
	if n < 5 {
		t.Fatalf("go list gave %d packages, expected the library's own at least:\n%s", n, out)
	}
}

// TestTestutilOnlyInTests: internal/testutil, the tests' scaffolding, is
// imported by tests only, never by a package's own code (library, tools,
// examples).
func TestTestutilOnlyInTests(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	const testutil = "github.com/shmchan/shmchan/internal/testutil"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n++
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, p := range strings.Fields(imports) {
			if p == testutil {
				t.Errorf("%s imports %s outside its tests", pkg, testutil)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list gave %d packages, expected the module's:\n%s", n, out)
	}
}

// TestReadmeHouse: the README's package table ("The house") names every
// package of the module: each one is a row, or lies under a row that
// stands for a folder (examples, c), and every row is a package or such a
// folder.
func TestReadmeHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "\n## The house\n")
	if start < 0 {
		t.Fatal(`README.md has no "## The house" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var rows []string // package paths, "" for the root
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| package") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(line, "|")[1])
		if strings.HasPrefix(cell, "root ") {
			rows = append(rows, "")
			continue
		}
		for _, part := range strings.Split(cell, ",") {
			if f := strings.Fields(strings.TrimSpace(part)); len(f) > 0 {
				rows = append(rows, strings.Trim(f[0], "`"))
			}
		}
	}
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, dir := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(strings.TrimPrefix(dir, wd), "/")
		found := false
		for _, r := range rows {
			if rel == r || folderRows[r] && strings.HasPrefix(rel, r+"/") {
				used[r], found = true, true
			}
		}
		if !found {
			t.Errorf("package %q has no row in the README's package table", rel)
		}
	}
	for _, r := range rows {
		if _, err := os.Stat(r + "/go.mod"); err == nil {
			continue // a nested module (natsbridge): its own go list
		}
		if st, err := os.Stat(filepath.Join(".", r)); r != "" && (err != nil || !st.IsDir()) {
			t.Errorf("the README's package table names %q, which is not in the tree", r)
		} else if !used[r] && r != "python" {
			t.Errorf("the README's package table names %q, which holds no Go package", r)
		}
	}
}

// folderRows are the rows that stand for a folder of programs and tests
// rather than one package.
var folderRows = map[string]bool{"examples": true, "c": true}
