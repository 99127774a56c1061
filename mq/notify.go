//go:build linux

package mq

// Notification: mq_notify with a signal, and its removal.

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Notify asks the kernel to send sig to this process when a message arrives
// on the queue while it is empty (mq_notify with SIGEV_SIGNAL; the signal's
// siginfo has si_code SI_MESGQ). Install a handler first, with
// os/signal.Notify, or the signal's default action (for SIGUSR1, terminating
// the process) applies.
//
// The registration is one-shot: it is removed when the signal is sent, and
// must be renewed to hear about the next message. There is at most one
// registration per queue, system-wide: if any process (this one included,
// through any handle) is registered, Notify returns an error matching
// ErrNotifyBusy. The kernel does not notify if a thread is blocked in
// mq_receive on the queue at that moment (a goroutine blocked in Receive here
// waits in the poller, not in mq_receive, so it does not count). Closing the
// handle that registered removes the registration.
func (q *Queue) Notify(sig syscall.Signal) error {
	if sig <= 0 || sig > 64 {
		return newError(fmt.Sprintf("mq: notify %s: invalid signal %d", q.name, int(sig)), unix.EINVAL)
	}
	sev := sigevent{signo: int32(sig), notify: sigevSignal}
	return q.notify(&sev)
}

// StopNotify removes this process's notification registration on the queue
// (mq_notify with NULL). It is not an error if there is none, nor if another
// process holds the registration (which is then left in place).
func (q *Queue) StopNotify() error {
	return q.notify(nil)
}

func (q *Queue) notify(sev *sigevent) error {
	q.mu.RLock()
	if q.closed.Load() {
		q.mu.RUnlock()
		return q.closedError("notify")
	}
	e := sysNotify(q.fd, sev)
	q.mu.RUnlock()
	switch e {
	case 0:
		return nil
	case unix.EBUSY:
		return newError(fmt.Sprintf("mq: notify %s: the queue already has a notification registration "+
			"(one per queue, held by this or another process until it fires or is removed)", q.name),
			ErrNotifyBusy, e)
	}
	return fmt.Errorf("mq: notify %s: %w", q.name, e)
}
