package testutil

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Config describes a test binary to Main.
type Config struct {
	// Prefix starts the names of the binary's objects: Name hands out
	// Prefix + "-" + pid + "-" + a counter (see Prefix), and everything
	// with that start in /dev/shm or /dev/mqueue is this process's. Empty
	// means "shmchan-test".
	Prefix string
	// Bells, if set, gives the message queues that belong to a name from
	// Name (a region's doorbells, as mq.Open names them). They are listed
	// nowhere without an mqueue file system mounted, so Main checks each
	// by name.
	Bells func(name string) []string
	// Remove, if set, runs for each name from Name when the test that
	// asked for it ends, whatever happened.
	Remove func(t testing.TB, name string)
	// HelperEnv, when set in the environment, makes the process a helper
	// (see Helper): Main runs Helper with its value as the mode and the
	// space-separated fields of ArgsEnv as the arguments, and exits with
	// what Helper returns.
	HelperEnv, ArgsEnv string
	Helper             func(mode string, args []string) int
	// Setup runs before the tests (an error ends the run, failed);
	// Teardown after them, before the leak checks.
	Setup    func() error
	Teardown func()
}

var cfg = Config{Prefix: "shmchan-test"}

// Main is a TestMain. In a helper process (Config.HelperEnv set) it runs
// the helper. Otherwise it runs the tests, and after a passing run fails
// it if goroutines, file descriptors or mappings of /dev/shm objects were
// left behind. Whatever the tests' verdict, it then removes everything
// left in /dev/shm and /dev/mqueue under this process's prefix, and each
// message queue tracked by name, that was not there before the tests (an
// object of a dead process that had this pid is not this run's), and
// fails the run if there was any. A watchdog process removes the same if
// this one dies first: a panicking test, a timeout, a SIGKILL.
func Main(m *testing.M, c Config) {
	if c.Prefix == "" {
		c.Prefix = cfg.Prefix
	}
	cfg = c
	if prefix := os.Getenv(watchdogEnv); prefix != "" {
		os.Exit(watchdog(prefix))
	}
	if cfg.HelperEnv != "" {
		if mode := os.Getenv(cfg.HelperEnv); mode != "" {
			os.Exit(cfg.Helper(mode, strings.Fields(os.Getenv(cfg.ArgsEnv))))
		}
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	left := newLeftovers(Prefix())
	if err := startWatchdog(left); err != nil {
		fmt.Fprintln(os.Stderr, "testutil: starting the watchdog:", err)
		return 1
	}
	if cfg.Setup != nil {
		if err := cfg.Setup(); err != nil {
			fmt.Fprintln(os.Stderr, "TestMain:", err)
			if cfg.Teardown != nil {
				cfg.Teardown()
			}
			left.sweep()
			return 1
		}
	}
	// Start the runtime's network poller (an epoll descriptor and its
	// wake-up descriptor, open for the life of the process) before
	// counting descriptors, so that it does not look like a leak.
	if r, w, err := os.Pipe(); err == nil {
		_ = r.SetReadDeadline(time.Time{})
		r.Close()
		w.Close()
	}
	fds := openFDs()
	goroutines, _ := liveGoroutines()

	code := m.Run()

	if cfg.Teardown != nil {
		cfg.Teardown()
	}
	if code == 0 && !leakFree(fds, goroutines) {
		code = 1
	}
	if removed := left.sweep(); len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "left in /dev/shm or /dev/mqueue (now removed): %v\n", removed)
		code = 1
	}
	return code
}

// leakFree reports (on stderr) goroutines beyond the count before the
// tests, mappings of /dev/shm objects, and descriptors beyond those open
// before the tests; it returns whether there were none.
func leakFree(fds map[string]string, goroutines int) bool {
	ok := true
	// Goroutines of finished tests (helper readers, wake-up callbacks,
	// servers shutting down) may take a moment to exit.
	n, stacks := liveGoroutines()
	for deadline := time.Now().Add(5 * time.Second); n > goroutines && time.Now().Before(deadline); n, stacks = liveGoroutines() {
		time.Sleep(10 * time.Millisecond)
	}
	if n > goroutines {
		fmt.Fprintf(os.Stderr, "leaked %d goroutines:\n%s\n", n-goroutines, stacks)
		ok = false
	}
	if b, _ := os.ReadFile("/proc/self/maps"); strings.Contains(string(b), " /dev/shm/") {
		fmt.Fprintf(os.Stderr, "%d mappings of /dev/shm objects left\n", strings.Count(string(b), " /dev/shm/"))
		ok = false
	}
	if after := openFDs(); len(after) > len(fds) {
		fmt.Fprintf(os.Stderr, "leaked %d file descriptors (%d open before the tests, %d after):\n", len(after)-len(fds), len(fds), len(after))
		for fd, target := range after {
			if fds[fd] != target {
				fmt.Fprintf(os.Stderr, "\tfd %s -> %s\n", fd, target)
			}
		}
		ok = false
	}
	return ok
}

// liveGoroutines counts the goroutines, but for os/signal's loop (started
// by the first signal.Notify, it lives as long as the process), and
// returns the stacks of all.
func liveGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := string(buf)
	count := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && !strings.Contains(g, "\nos/signal.loop()") {
			count++
		}
	}
	return count, stacks
}

// openFDs maps each open descriptor of this process to what it refers to.
func openFDs() map[string]string {
	ents, _ := os.ReadDir("/proc/self/fd")
	fds := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the listing's own descriptor, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}
