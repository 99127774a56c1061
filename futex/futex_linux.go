package futex

import (
	"fmt"
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations, without FUTEX_PRIVATE_FLAG: the words are shared
// between processes.
const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// All, passed to Wake, wakes every waiter.
const All = math.MaxInt32

// Wait blocks while *addr == val, for at most timeout (a negative timeout
// waits without limit). It returns nil when woken, when *addr != val on
// entry, and when interrupted by a signal: spurious returns are allowed, so
// callers always re-check their condition. An expired timeout returns
// ErrTimeout. addr must be 4-byte aligned (ErrUnaligned otherwise); it
// normally points into a MAP_SHARED mapping that other processes use too.
func Wait(addr *uint32, val uint32, timeout time.Duration) error {
	if err := check("wait", addr); err != nil {
		return err
	}
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	}
	return fmt.Errorf("futex: wait on %p for value %d: %w", addr, val, errno)
}

// Wake wakes up to n waiters blocked in Wait on addr and returns how many it
// woke. n <= 0 (or All) wakes them all. Waking a word nobody waits on is
// valid and returns 0, but it is still a system call: callers that care
// about the fast path keep a "someone sleeps" flag and call Wake only when
// it is set.
func Wake(addr *uint32, n int) (int, error) {
	if err := check("wake", addr); err != nil {
		return 0, err
	}
	if n <= 0 || n > All {
		n = All
	}
	woken, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("futex: wake on %p: %w", addr, errno)
	}
	return int(woken), nil
}

func check(op string, addr *uint32) error {
	if p := uintptr(unsafe.Pointer(addr)); p == 0 || p%4 != 0 {
		return fmt.Errorf("futex: %s on %#x: %w", op, p, ErrUnaligned)
	}
	return nil
}
