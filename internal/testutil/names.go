package testutil

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	counter atomic.Int64

	trackMu sync.Mutex
	tracked = map[string]bool{} // queues, by name without a leading slash
)

// Prefix starts every name of this test process: Config.Prefix, the pid
// and a dash ("shmchan-test-4242-").
func Prefix() string { return fmt.Sprintf("%s-%d-", cfg.Prefix, os.Getpid()) }

// Name returns a name unique to this process and test (Prefix and a
// counter), tracks the queues Config.Bells gives for it, and arranges for
// Config.Remove to run on it when the test ends, whatever happened.
func Name(t testing.TB) string {
	name := Prefix() + strconv.FormatInt(counter.Add(1), 10)
	if cfg.Bells != nil {
		TrackQueue(cfg.Bells(name)...)
	}
	if cfg.Remove != nil {
		t.Cleanup(func() { cfg.Remove(t, name) })
	}
	return name
}

// TrackQueue records message queues (named as mq.Open takes them) that
// must be gone when the tests end: Main fails the run if one is left, and
// it or the watchdog removes it.
func TrackQueue(names ...string) {
	trackMu.Lock()
	defer trackMu.Unlock()
	for _, n := range names {
		n = queueName(n)
		if tracked[n] {
			continue
		}
		tracked[n] = true
		if watchdogPipe != nil {
			// A failed write (the watchdog died) only costs the clean-up
			// after a crash; Main's own check still runs.
			fmt.Fprintf(watchdogPipe, "queue %s\n", n)
		}
	}
}

func trackedQueues() []string {
	trackMu.Lock()
	defer trackMu.Unlock()
	out := make([]string, 0, len(tracked))
	for n := range tracked {
		out = append(out, n)
	}
	return out
}

// queueName is a queue name without its leading slash, as /dev/mqueue
// lists it.
func queueName(n string) string {
	if len(n) > 0 && n[0] == '/' {
		return n[1:]
	}
	return n
}
