package shmchan

import (
	"os/exec"
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
