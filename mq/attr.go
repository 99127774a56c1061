//go:build linux

package mq

// The queue's attributes and the handle's: mq_getattr, the non-blocking
// flag (mq_setattr), and the owner and permission bits.

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// Attr holds a queue's attributes (struct mq_attr).
//
// Open reads MaxMsg and MsgSize when it creates a queue; a zero field takes
// the system default (/proc/sys/fs/mqueue/msg_default and msgsize_default,
// capped by msg_max and msgsize_max, as the kernel does for a NULL attr).
// Open ignores CurMsgs, and ignores the whole Attr when the queue already
// exists: the existing queue keeps its own sizes, which Queue.MaxMsg and
// Queue.MsgSize report. (mq_attr's fourth field, mq_flags, is a property of
// the handle, not of the queue: see Queue.Nonblock.)
type Attr struct {
	MaxMsg  int64 // mq_maxmsg: capacity in messages
	MsgSize int64 // mq_msgsize: largest message in bytes
	CurMsgs int64 // mq_curmsgs: messages queued now (read-only)
}

// Nonblock reports this handle's non-blocking flag, as set by SetNonblock
// or by syscall.O_NONBLOCK in Open's flag: mq_flags&O_NONBLOCK as the
// caller sees it. (The kernel's own flag on the descriptor is always set;
// see SetNonblock.)
func (q *Queue) Nonblock() bool { return q.nonblock.Load() }

// Attr returns the queue's attributes (mq_getattr).
func (q *Queue) Attr() (Attr, error) {
	var a mqAttr
	q.mu.RLock()
	if q.closed.Load() {
		q.mu.RUnlock()
		return Attr{}, q.closedError("getattr")
	}
	e := sysGetSetAttr(q.fd, nil, &a)
	q.mu.RUnlock()
	if e != 0 {
		return Attr{}, fmt.Errorf("mq: getattr %s: %w", q.name, e)
	}
	return Attr{
		MaxMsg:  int64(a.maxMsg),
		MsgSize: int64(a.msgSize),
		CurMsgs: int64(a.curMsgs),
	}, nil
}

// SetNonblock sets this handle's non-blocking flag, the one flag mq_setattr
// can change. While it is on, Send and Receive behave exactly like TrySend
// and TryReceive (ErrFull, ErrEmpty instead of waiting); turning it on also
// wakes the goroutines blocked in Send or Receive on this handle, which then
// return ErrFull or ErrEmpty. TrySend and TryReceive never block either way.
//
// The flag lives in the Queue, not in the kernel. The kernel's O_NONBLOCK on
// the open file description is the very flag the Go runtime poller relies on:
// clearing it would make the next send or receive block an OS thread inside
// the system call, where neither a context nor Close could reach it. So the
// descriptor stays O_NONBLOCK for its whole life; SetNonblock re-asserts that
// with mq_setattr (which also reports a bad descriptor) and records the
// caller's choice, which Nonblock reports. The description is private
// to this Queue (close-on-exec, never duplicated), so no other holder of it
// can observe the difference.
func (q *Queue) SetNonblock(on bool) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed.Load() {
		return q.closedError("setattr")
	}
	a := mqAttr{flags: unix.O_NONBLOCK}
	if e := sysGetSetAttr(q.fd, &a, nil); e != 0 {
		return fmt.Errorf("mq: setattr %s: %w", q.name, e)
	}
	q.nonblock.Store(on)
	if on {
		// Kick the waiters; see wait. A deadline left behind is cleared by
		// the next waiter.
		_ = q.f.SetReadDeadline(aLongTimeAgo)
		_ = q.f.SetWriteDeadline(aLongTimeAgo)
	}
	return nil
}

// Chown changes the queue's owner (fchown on the queue descriptor; Linux
// allows it on message-queue descriptors).
func (q *Queue) Chown(uid, gid int) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed.Load() {
		return q.closedError("chown")
	}
	var err error
	for {
		if err = unix.Fchown(q.fd, uid, gid); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mq: chown %s: %w", q.name, err)
	}
	return nil
}

// Owner returns the user and group ids that own the queue (fstat on the
// queue descriptor), so a caller can refuse a queue another user planted.
func (q *Queue) Owner() (uid, gid uint32, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed.Load() {
		return 0, 0, q.closedError("stat")
	}
	var st unix.Stat_t
	for {
		if err = unix.Fstat(q.fd, &st); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("mq: stat %s: %w", q.name, err)
	}
	return st.Uid, st.Gid, nil
}

// Chmod sets the queue's permission bits exactly (fchmod on the queue
// descriptor). Open applies the process umask to the mode of a queue it
// creates, as mq_open does; call Chmod after it when the mode must be exact.
func (q *Queue) Chmod(perm fs.FileMode) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed.Load() {
		return q.closedError("chmod")
	}
	var err error
	for {
		if err = unix.Fchmod(q.fd, uint32(perm.Perm())); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mq: chmod %s: %w", q.name, err)
	}
	return nil
}
