package futex

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (linux/membarrier.h). Each is one bit, so QUERY's
// answer is a mask of them.
const (
	cmdQuery                   = 0
	cmdGlobalExpedited         = 1 << 1
	cmdRegisterGlobalExpedited = 1 << 2
	neededCommands             = cmdGlobalExpedited | cmdRegisterGlobalExpedited
)

var barrier struct {
	once       sync.Once
	registered atomic.Bool
	failure    atomic.Pointer[error] // why registration failed
}

// RegisterBarrier registers this process to receive the barriers issued by
// Barrier (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED), after checking with
// MEMBARRIER_CMD_QUERY that the kernel supports the global expedited
// commands, and reports whether that worked. Only the first call does the
// work; later calls return the same answer at the cost of an atomic load.
// Registration lasts for the life of the process.
func RegisterBarrier() bool {
	barrier.once.Do(func() {
		if err := register(); err != nil {
			barrier.failure.Store(&err)
			return
		}
		barrier.registered.Store(true)
	})
	return barrier.registered.Load()
}

func register() error {
	mask, err := membarrier(cmdQuery)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if mask&neededCommands != neededCommands {
		return fmt.Errorf("kernel supports commands %#x, need %#x", mask, neededCommands)
	}
	if _, err := membarrier(cmdRegisterGlobalExpedited); err != nil {
		return fmt.Errorf("register global expedited: %w", err)
	}
	// One barrier now, so that a kernel or seccomp policy that accepts the
	// registration but refuses the command is found here, not in the
	// middle of a wait.
	if _, err := membarrier(cmdGlobalExpedited); err != nil {
		return fmt.Errorf("global expedited: %w", err)
	}
	return nil
}

// Barrier issues MEMBARRIER_CMD_GLOBAL_EXPEDITED: when it returns, every
// running thread of every process registered with RegisterBarrier has
// executed a full memory barrier, and the caller has one before and after.
// It returns ErrNoBarrier unless RegisterBarrier has succeeded in this
// process. See the package documentation for the pairing it supports.
func Barrier() error {
	if !barrier.registered.Load() {
		if p := barrier.failure.Load(); p != nil {
			return fmt.Errorf("futex: barrier: %w: registration failed: %v", ErrNoBarrier, *p)
		}
		return fmt.Errorf("futex: barrier: %w: call RegisterBarrier first", ErrNoBarrier)
	}
	if _, err := membarrier(cmdGlobalExpedited); err != nil {
		return fmt.Errorf("futex: barrier: membarrier: %w", err)
	}
	return nil
}

func membarrier(cmd int) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_MEMBARRIER, uintptr(cmd), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}
