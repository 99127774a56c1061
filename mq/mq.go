//go:build linux

package mq

import (
	"context"
	"errors"
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

// waiter serialises the goroutines of one direction that wait in the runtime
// poller. The read (write) deadline of f is that direction's wake-up lever:
// only the goroutine holding the turn arms it (through context.AfterFunc)
// and clears it again before passing the turn on, so a cancelled wait never
// leaves a deadline behind for the next one.
type waiter struct {
	turn        chan struct{}         // capacity 1: holding a token = being the one waiting in the poller
	fired       chan struct{}         // capacity 1: cancel has finished
	ready       func(fd uintptr) bool // poller callback: is there something to do?
	cancel      func()                // context.AfterFunc callback
	setDeadline func(time.Time) error // f.SetReadDeadline or f.SetWriteDeadline
	events      int16                 // POLLIN or POLLOUT
	write       bool                  // use rc.Write instead of rc.Read
}

// aLongTimeAgo is a deadline in the past: setting it wakes a waiter at once.
var aLongTimeAgo = time.Unix(1, 0)

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

func (w *waiter) init(q *Queue, events int16, write bool, setDeadline func(time.Time) error) {
	w.turn = make(chan struct{}, 1)
	w.fired = make(chan struct{}, 1)
	w.events = events
	w.write = write
	w.setDeadline = setDeadline
	w.ready = func(fd uintptr) bool {
		if q.closed.Load() || q.nonblock.Load() {
			return true // let the caller find out
		}
		const trouble = unix.POLLERR | unix.POLLHUP | unix.POLLNVAL
		return sysPollNow(int(fd), w.events)&(w.events|trouble) != 0
	}
	w.cancel = func() {
		_ = w.setDeadline(aLongTimeAgo) // fails only once closed, which wakes the waiter too
		w.fired <- struct{}{}
	}
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

// TrySend queues msg with priority prio, or returns ErrFull at once if the
// queue is full. It never blocks. On success it makes one system call and no
// allocation.
func (q *Queue) TrySend(msg []byte, prio uint) error {
	if err := q.checkSend(msg, prio); err != nil {
		return err
	}
	return q.trySend(msg, prio)
}

// Send queues msg with priority prio, waiting while the queue is full.
//
// The wait parks the goroutine in the runtime poller (no OS thread is held)
// until the queue has room, ctx is done (Send returns ctx.Err()), the Queue is
// closed (os.ErrClosed) or SetNonblock(true) is called (ErrFull). A ctx that
// is already done returns ctx.Err() without sending. In non-blocking mode
// Send is TrySend.
func (q *Queue) Send(ctx context.Context, msg []byte, prio uint) error {
	if err := q.checkSend(msg, prio); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := q.trySend(msg, prio)
		if err != ErrFull || q.nonblock.Load() {
			return err
		}
		if err := q.wait(ctx, &q.send, "send"); err != nil {
			return err
		}
	}
}

// TryReceive takes the oldest message of the highest priority into buf and
// returns its length and priority, or returns ErrEmpty at once if the queue is
// empty. It never blocks. buf must hold MsgSize bytes (else ErrShortBuffer).
// On success it makes one system call and no allocation.
func (q *Queue) TryReceive(buf []byte) (n int, prio uint, err error) {
	if err := q.checkReceive(buf); err != nil {
		return 0, 0, err
	}
	return q.tryReceive(buf)
}

// Receive is TryReceive that waits while the queue is empty.
//
// The wait parks the goroutine in the runtime poller (no OS thread is held)
// until a message arrives (from any process), ctx is done (Receive returns
// ctx.Err()), the Queue is closed (os.ErrClosed) or SetNonblock(true) is
// called (ErrEmpty). A ctx that is already done returns ctx.Err() without
// taking a message, so a cancelled Receive never loses one. In non-blocking
// mode Receive is TryReceive.
func (q *Queue) Receive(ctx context.Context, buf []byte) (n int, prio uint, err error) {
	if err := q.checkReceive(buf); err != nil {
		return 0, 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n, prio, err := q.tryReceive(buf)
		if err != ErrEmpty || q.nonblock.Load() {
			return n, prio, err
		}
		if err := q.wait(ctx, &q.recv, "receive"); err != nil {
			return 0, 0, err
		}
	}
}

func (q *Queue) checkSend(msg []byte, prio uint) error {
	if q.acc == os.O_RDONLY {
		return newError(fmt.Sprintf("mq: send %s: handle opened read-only (os.O_RDONLY)", q.name), unix.EBADF)
	}
	if len(msg) > q.msgSize {
		return newError(fmt.Sprintf("mq: send %s: message of %d bytes exceeds MsgSize %d", q.name, len(msg), q.msgSize),
			ErrTooLarge, unix.EMSGSIZE)
	}
	if prio >= PrioMax {
		return newError(fmt.Sprintf("mq: send %s: priority %d is not below PrioMax (%d)", q.name, prio, PrioMax),
			ErrInvalidPriority, unix.EINVAL)
	}
	return nil
}

func (q *Queue) checkReceive(buf []byte) error {
	if q.acc == os.O_WRONLY {
		return newError(fmt.Sprintf("mq: receive %s: handle opened write-only (os.O_WRONLY)", q.name), unix.EBADF)
	}
	if len(buf) < q.msgSize {
		return q.shortBuffer(len(buf))
	}
	return nil
}

func (q *Queue) shortBuffer(n int) error {
	return newError(fmt.Sprintf("mq: receive %s: buffer of %d bytes is shorter than MsgSize %d", q.name, n, q.msgSize),
		ErrShortBuffer, unix.EMSGSIZE)
}

func (q *Queue) trySend(msg []byte, prio uint) error {
	q.mu.RLock()
	if q.closed.Load() {
		q.mu.RUnlock()
		return q.closedError("send")
	}
	e := sysSend(q.fd, msg, prio)
	q.mu.RUnlock()
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return ErrFull
	case unix.EMSGSIZE:
		return newError(fmt.Sprintf("mq: send %s: message of %d bytes exceeds MsgSize %d", q.name, len(msg), q.msgSize),
			ErrTooLarge, e)
	}
	return fmt.Errorf("mq: send %s: %w", q.name, e)
}

func (q *Queue) tryReceive(buf []byte) (int, uint, error) {
	q.mu.RLock()
	if q.closed.Load() {
		q.mu.RUnlock()
		return 0, 0, q.closedError("receive")
	}
	n, prio, e := sysReceive(q.fd, buf)
	q.mu.RUnlock()
	switch e {
	case 0:
		return n, prio, nil
	case unix.EAGAIN:
		return 0, 0, ErrEmpty
	case unix.EMSGSIZE:
		return 0, 0, q.shortBuffer(len(buf))
	}
	return 0, 0, fmt.Errorf("mq: receive %s: %w", q.name, e)
}

// wait parks the calling goroutine in the runtime poller until w's direction
// of the queue is ready, ctx is done, the Queue is closed or its nonblock flag
// is raised. A nil return means "try again", not "ready": another process may
// have taken the message or the room meanwhile.
//
// How it works: the goroutine first takes w's turn (a one-slot channel, so
// that waiting for it also honours ctx). Holding the turn it arms
// context.AfterFunc to move f's deadline for this direction into the past,
// and calls rc.Read (rc.Write) with w.ready, which checks readiness with a
// zero-timeout ppoll; if nothing is ready the runtime parks the goroutine
// until epoll reports the mqd or the deadline passes. Then it disarms the
// AfterFunc; if that had already fired, it waits for it to finish and clears
// the deadline, so the next waiter starts clean. Finally it gives up the turn.
func (q *Queue) wait(ctx context.Context, w *waiter, op string) error {
	done := ctx.Done()
	select {
	case w.turn <- struct{}{}:
	default:
		select {
		case w.turn <- struct{}{}:
		case <-done:
			return ctx.Err()
		}
	}
	var stop func() bool
	if done != nil {
		stop = context.AfterFunc(ctx, w.cancel)
	}
	var err error
	if w.write {
		err = q.rc.Write(w.ready)
	} else {
		err = q.rc.Read(w.ready)
	}
	fired := stop != nil && !stop()
	if fired {
		<-w.fired
	}
	deadline := errors.Is(err, os.ErrDeadlineExceeded)
	if fired || deadline {
		// Ours, or a kick from SetNonblock(true) (its flag is already
		// visible, so the caller's next round sees it). Clear it either way.
		_ = w.setDeadline(time.Time{})
	}
	<-w.turn

	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case q.closed.Load():
		return q.closedError(op)
	case deadline:
		return nil
	}
	return fmt.Errorf("mq: %s %s: %w", op, q.name, err)
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

// Files under /proc/sys/fs/mqueue.
const (
	procMsgMax         = "/proc/sys/fs/mqueue/msg_max"
	procMsgSizeMax     = "/proc/sys/fs/mqueue/msgsize_max"
	procMsgDefault     = "/proc/sys/fs/mqueue/msg_default"
	procMsgSizeDefault = "/proc/sys/fs/mqueue/msgsize_default"
	procQueuesMax      = "/proc/sys/fs/mqueue/queues_max"
)

// readProcInt reads one of the sysctls above; ok is false if it cannot.
func readProcInt(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return v, err == nil
}

// defaultMaxMsg and defaultMsgSize are what the kernel uses for a NULL attr:
// min(default, max), with its compiled-in 10 and 8192 as the fallback.
func defaultMaxMsg() int  { return procDefault(procMsgDefault, procMsgMax, 10) }
func defaultMsgSize() int { return procDefault(procMsgSizeDefault, procMsgSizeMax, 8192) }
func procDefault(def, max string, fallback int) int {
	d, ok := readProcInt(def)
	if !ok {
		return fallback
	}
	if m, ok := readProcInt(max); ok && m < d {
		return m
	}
	return d
}

// openError turns an mq_open errno into an error that explains it.
func openError(disp string, creating bool, ka *mqAttr, e unix.Errno) error {
	prefix := "mq: open " + disp + ": "
	switch e {
	case unix.EINVAL:
		if ka == nil {
			break
		}
		if ka.maxMsg <= 0 || ka.msgSize <= 0 {
			return newError(fmt.Sprintf("%sMaxMsg (%d) and MsgSize (%d) must be positive", prefix, ka.maxMsg, ka.msgSize), e)
		}
		if ka.maxMsg > hardMsgMax {
			return newError(fmt.Sprintf("%sMaxMsg %d exceeds the kernel's hard limit HARD_MSGMAX (%d)", prefix, ka.maxMsg, hardMsgMax), ErrLimit, e)
		}
		if ka.msgSize > hardMsgSizeMax {
			return newError(fmt.Sprintf("%sMsgSize %d exceeds the kernel's hard limit HARD_MSGSIZEMAX (%d)", prefix, ka.msgSize, hardMsgSizeMax), ErrLimit, e)
		}
		if m, ok := readProcInt(procMsgMax); ok && ka.maxMsg > m {
			return newError(fmt.Sprintf("%sMaxMsg %d exceeds %s (%d)", prefix, ka.maxMsg, procMsgMax, m), ErrLimit, e)
		}
		if m, ok := readProcInt(procMsgSizeMax); ok && ka.msgSize > m {
			return newError(fmt.Sprintf("%sMsgSize %d exceeds %s (%d)", prefix, ka.msgSize, procMsgSizeMax, m), ErrLimit, e)
		}
	case unix.EMFILE:
		if !creating || fdsExhausted() {
			return newError(prefix+"this process has too many open files (RLIMIT_NOFILE)", e)
		}
		maxMsg, msgSize := defaultMaxMsg(), defaultMsgSize()
		if ka != nil {
			maxMsg, msgSize = ka.maxMsg, ka.msgSize
		}
		var rl unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &rl)
		return newError(fmt.Sprintf("%sa queue of MaxMsg %d × MsgSize %d needs about %d bytes, more than is left of "+
			"this user's RLIMIT_MSGQUEUE (%d bytes, shared by all the user's queues)",
			prefix, maxMsg, msgSize, queueBytes(maxMsg, msgSize), rl.Cur), ErrLimit, e)
	case unix.ENOSPC:
		limit := "?"
		if m, ok := readProcInt(procQueuesMax); ok {
			limit = strconv.Itoa(m)
		}
		return newError(fmt.Sprintf("%sthe system already has %s (%s) queues", prefix, procQueuesMax, limit), ErrLimit, e)
	}
	return fmt.Errorf("%s%w", prefix, e)
}

// queueBytes estimates what the kernel charges to RLIMIT_MSGQUEUE for a queue:
// the message bytes plus a struct msg_msg (48 bytes) per message and a
// priority tree node (48 bytes) per possible priority in use.
func queueBytes(maxMsg, msgSize int) int {
	return maxMsg*msgSize + maxMsg*48 + min(maxMsg, PrioMax)*48
}

// fdsExhausted reports whether the process is at its RLIMIT_NOFILE.
func fdsExhausted() bool {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return true // could not even open a directory
	}
	return uint64(len(ents)-1) >= rl.Cur // less the directory's own descriptor
}
