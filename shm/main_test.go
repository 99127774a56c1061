package shm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// helperEnv marks a run of the test binary as the helper process of a
// cross-process test.
const helperEnv = "SHMCHAN_SHM_HELPER"

var nameCounter atomic.Int64

// testPrefix starts every name this test process uses, so leftovers can be
// told apart from other processes' objects.
func testPrefix() string { return fmt.Sprintf("shmchan-test-%d-", os.Getpid()) }

// uniqueName returns a fresh object name and removes whatever is left at
// it in Dir when the test ends, pass or fail.
func uniqueName(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s%d", testPrefix(), nameCounter.Add(1))
	t.Cleanup(func() {
		if err := os.RemoveAll(filepath.Join(Dir, name)); err != nil {
			t.Errorf("cleanup of %s: %v", name, err)
		}
	})
	return name
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(m.Run())
	}
	// Start the runtime's network poller (an epoll descriptor and its
	// wake-up descriptor stay open for the life of the process) before
	// counting, so that the pipes of helper processes do not look like a
	// leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before, err := openFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	code := m.Run()

	after, err := openFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	if len(after) > len(before) {
		fmt.Fprintf(os.Stderr, "TestMain: file descriptors leaked: %d open before the tests, %d after:\n", len(before), len(after))
		for fd, target := range after {
			if _, ok := before[fd]; !ok {
				fmt.Fprintf(os.Stderr, "\tfd %s -> %s\n", fd, target)
			}
		}
		code = 1
	}
	entries, err := os.ReadDir(Dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(1)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), testPrefix()) {
			fmt.Fprintf(os.Stderr, "TestMain: left over in %s: %s\n", Dir, e.Name())
			code = 1
		}
	}
	os.Exit(code)
}

// openFDs maps each open descriptor of this process to what it refers to.
func openFDs() (map[string]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := make(map[string]string, len(entries))
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			// The listing's own descriptor of /proc/self/fd, closed
			// by now.
			continue
		}
		fds[e.Name()] = target
	}
	return fds, nil
}
