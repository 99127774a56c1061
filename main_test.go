package shmchan

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

var nameCounter atomic.Int64

func testPrefix() string { return fmt.Sprintf("shmchan-test-%d-", os.Getpid()) }

// testName returns a name unique to this process and test, and removes the
// region (and any doorbells) when the test ends, whatever happened.
func testName(t testing.TB) string {
	name := fmt.Sprintf("%s%d", testPrefix(), nameCounter.Add(1))
	t.Cleanup(func() { Unlink(name) })
	return name
}

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	// Start the runtime's network poller (an epoll and an eventfd that live
	// as long as the process) before counting descriptors.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	fds := countFDs()
	code := m.Run()
	if code == 0 {
		if n := countFDs(); n > fds {
			fmt.Fprintf(os.Stderr, "leaked %d file descriptors\n", n-fds)
			code = 1
		}
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "left in /dev/shm or /dev/mqueue: %v\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func leftovers() []string {
	var left []string
	for _, dir := range []string{"/dev/shm", "/dev/mqueue"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), testPrefix()) {
				left = append(left, dir+"/"+e.Name())
			}
		}
	}
	return left
}
