package futex

import "golang.org/x/sys/unix"

// Yield gives the processor up to any other runnable thread, of this
// process or another (sched_yield(2)); it returns at once when nothing else
// is runnable. A side that spins waiting for a peer calls it, so that on a
// machine with more busy processes than cores the peer it waits for gets to
// run instead of being kept off the CPU by the spinner (runtime.Gosched
// only yields to goroutines of this process).
func Yield() {
	unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) //nolint:errcheck // sched_yield always succeeds on Linux
}
