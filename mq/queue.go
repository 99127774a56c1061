//go:build linux

package mq

// The queue: names, Open, Unlink, Close, and the handle's fixed facts.

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PrioMax is MQ_PRIO_MAX on Linux: message priorities run from 0 (lowest)
// to PrioMax-1 (highest).
const PrioMax = 32768

// NameMax is the longest queue name in bytes, leading slash not counted
// (NAME_MAX).
const NameMax = 255

// Queue is an open handle on a POSIX message queue: a message queue
// descriptor (mqd_t) registered with the Go runtime's poller.
//
// A Queue is safe for concurrent use by multiple goroutines. TrySend and
// TryReceive from many goroutines run in parallel; goroutines blocked in Send
// (or in Receive) on the same Queue take turns waiting for the queue to become
// writable (readable), each still cancellable through its own context.
type Queue struct {
	name    string // display name, with its leading slash: "/jobs"
	fd      int
	f       *os.File        // owns fd; registered with the runtime poller
	rc      syscall.RawConn // f.SyscallConn(), cached
	acc     int             // O_RDONLY, O_WRONLY or O_RDWR
	maxMsg  int
	msgSize int

	// mu is read-held around every system call made on fd directly, and
	// write-held by Close while it sets closed, so no such call can run on
	// a descriptor number that Close has released (and the kernel reused).
	// Waiting in the poller goes through f, which counts its own references.
	mu       sync.RWMutex
	closed   atomic.Bool
	nonblock atomic.Bool // the user's O_NONBLOCK; see SetNonblock

	recv waiter // goroutines blocked in Receive
	send waiter // goroutines blocked in Send
}

// Open opens the queue name, creating it if flag has os.O_CREATE.
//
// flag is one of os.O_RDONLY, os.O_WRONLY or os.O_RDWR, or-ed with any of
// os.O_CREATE, os.O_EXCL (with O_CREATE: fail with fs.ErrExist if it exists)
// and syscall.O_NONBLOCK (start in non-blocking mode, see SetNonblock).
// perm (its permission bits only, less the umask) and attr apply when the
// queue is created. attr may be nil for the system defaults.
//
// name follows mq_open: "/jobs" and "jobs" name the same queue. After one
// optional leading slash the name must be 1 to NameMax bytes with no slash
// and no NUL, and not "." or ".."; anything else is ErrInvalidName.
//
// Errors match fs.ErrExist, fs.ErrNotExist, fs.ErrPermission, ErrInvalidName,
// and ErrLimit when a system limit refused the creation; the message then
// names the limit and its value, for example
// "mq: open /x: MaxMsg 100 exceeds /proc/sys/fs/mqueue/msg_max (10)".
func Open(name string, flag int, perm fs.FileMode, attr *Attr) (*Queue, error) {
	sysName, disp, err := checkName("open", name)
	if err != nil {
		return nil, err
	}
	const allowed = unix.O_ACCMODE | os.O_CREATE | os.O_EXCL | unix.O_NONBLOCK | unix.O_CLOEXEC
	if flag&^allowed != 0 || flag&unix.O_ACCMODE == unix.O_ACCMODE {
		return nil, newError(fmt.Sprintf("mq: open %s: unsupported flag %#x (want os.O_RDONLY, os.O_WRONLY or os.O_RDWR, "+
			"or-ed with os.O_CREATE, os.O_EXCL, syscall.O_NONBLOCK)", disp, flag), unix.EINVAL)
	}
	creating := flag&os.O_CREATE != 0
	var ka *mqAttr
	if creating && attr != nil {
		ka = &mqAttr{maxMsg: clampInt(attr.MaxMsg), msgSize: clampInt(attr.MsgSize)}
		if ka.maxMsg == 0 {
			ka.maxMsg = defaultMaxMsg()
		}
		if ka.msgSize == 0 {
			ka.msgSize = defaultMsgSize()
		}
	}
	// The descriptor is always non-blocking (the poller needs it) and
	// close-on-exec (the kernel sets that for mq_open anyway).
	oflag := flag | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, e := sysOpen(sysName, oflag, uint32(perm.Perm()), ka)
	if e != 0 {
		return nil, openError(disp, creating, ka, e)
	}
	var cur mqAttr
	if e := sysGetSetAttr(fd, nil, &cur); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("mq: open %s: mq_getattr: %w", disp, e)
	}

	// os.NewFile sees O_NONBLOCK with F_GETFL and therefore registers the
	// descriptor with the runtime poller (epoll accepts an mqd: the mqueue
	// file has a poll method). Deadlines work only on a registered file,
	// so a nil error from SetDeadline proves the registration.
	f := os.NewFile(uintptr(fd), disp)
	if err := f.SetDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("mq: open %s: the descriptor is not in the Go runtime poller: %w", disp, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mq: open %s: %w", disp, err)
	}
	q := &Queue{
		name:    disp,
		fd:      fd,
		f:       f,
		rc:      rc,
		acc:     flag & unix.O_ACCMODE,
		maxMsg:  cur.maxMsg,
		msgSize: cur.msgSize,
	}
	q.nonblock.Store(flag&unix.O_NONBLOCK != 0)
	q.recv.init(q, unix.POLLIN, false, f.SetReadDeadline)
	q.send.init(q, unix.POLLOUT, true, f.SetWriteDeadline)
	return q, nil
}

// Unlink removes the queue name. Open handles keep working; the queue is
// destroyed when the last one is closed. Errors match fs.ErrNotExist,
// fs.ErrPermission and ErrInvalidName.
func Unlink(name string) error {
	sysName, disp, err := checkName("unlink", name)
	if err != nil {
		return err
	}
	if e := sysUnlink(sysName); e != 0 {
		return fmt.Errorf("mq: unlink %s: %w", disp, e)
	}
	return nil
}

// Name returns the queue's name with its leading slash ("/jobs").
func (q *Queue) Name() string { return q.name }

// MaxMsg returns the queue's capacity in messages (mq_maxmsg). It is fixed at
// creation and cached by Open, so this makes no system call.
func (q *Queue) MaxMsg() int { return q.maxMsg }

// MsgSize returns the largest message the queue accepts (mq_msgsize), which
// is also the smallest buffer Receive accepts. Cached, like MaxMsg.
func (q *Queue) MsgSize() int { return q.msgSize }

// Close closes the handle. Goroutines blocked in Send or Receive on it return
// an error matching os.ErrClosed, as does every later call, Close included.
// The queue itself lives on until it is unlinked and its last handle closed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed.Load() {
		q.mu.Unlock()
		return q.closedError("close")
	}
	q.closed.Store(true)
	q.mu.Unlock()
	// os.File.Close wakes the goroutines parked in the poller and closes the
	// descriptor once the last of them has let go of it.
	if err := q.f.Close(); err != nil {
		return fmt.Errorf("mq: close %s: %w", q.name, err)
	}
	return nil
}

func (q *Queue) closedError(op string) error {
	return fmt.Errorf("mq: %s %s: %w", op, q.name, os.ErrClosed)
}

// checkName validates a queue name and returns the form the system call wants
// (no leading slash) and the form messages show (with it).
func checkName(op, name string) (sysName, disp string, err error) {
	s := strings.TrimPrefix(name, "/")
	var why string
	switch {
	case s == "":
		why = "empty"
	case s == "." || s == "..":
		why = "is . or .."
	case len(s) > NameMax:
		why = "longer than " + strconv.Itoa(NameMax) + " bytes"
	case strings.IndexByte(s, '/') >= 0:
		why = "contains a slash after the leading one"
	case strings.IndexByte(s, 0) >= 0:
		why = "contains a NUL byte"
	default:
		return s, "/" + s, nil
	}
	return "", "", newError(fmt.Sprintf("mq: %s %q: invalid queue name: %s", op, name, why), ErrInvalidName)
}

func clampInt(v int64) int {
	if int64(int(v)) != v {
		if v < 0 {
			return -1
		}
		return int(^uint(0) >> 1)
	}
	return int(v)
}
