package shmchan

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/mq"
)

var nameCounter atomic.Int64

// names are every name testName handed out, for the leak check: message
// queues are not listed anywhere unless an mqueue filesystem is mounted,
// so TestMain looks each doorbell up by name.
var (
	namesMu sync.Mutex
	names   []string
)

func testPrefix() string { return fmt.Sprintf("shmchan-test-%d-", os.Getpid()) }

// testName returns a name unique to this process and test, and removes the
// region (and any doorbells) when the test ends, whatever happened.
func testName(t testing.TB) string {
	name := fmt.Sprintf("%s%d", testPrefix(), nameCounter.Add(1))
	namesMu.Lock()
	names = append(names, name)
	namesMu.Unlock()
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
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		// Goroutines of finished tests (helper readers, wake-up callbacks)
		// may take a moment to exit.
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "leaked %d goroutines:\n%s\n", n-goroutines, buf[:runtime.Stack(buf, true)])
			code = 1
		}
		if n := shmMappings(); n > 0 {
			fmt.Fprintf(os.Stderr, "%d mappings of /dev/shm objects left\n", n)
			code = 1
		}
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

// shmMappings counts this process's mappings of /dev/shm objects.
func shmMappings() int {
	b, _ := os.ReadFile("/proc/self/maps")
	return strings.Count(string(b), " /dev/shm/")
}

func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

func leftovers() []string {
	var left []string
	namesMu.Lock()
	defer namesMu.Unlock()
	for _, n := range names {
		for _, b := range bellNames(n) {
			if q, err := mq.Open(b, os.O_RDONLY, 0, nil); err == nil {
				q.Close()
				left = append(left, "message queue /"+b)
			}
		}
	}
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
