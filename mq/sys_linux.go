//go:build linux

package mq

// This file is the only one in the package that uses unsafe. It holds the
// kernel ABI structures and the raw system calls. Every function here returns
// a bare unix.Errno (0 on success) rather than an error, so that the hot path
// never converts an errno to an interface value; the other files turn them into errors.
//
// Buffers are passed to the kernel as uintptr(unsafe.Pointer(...)) conversions
// written directly in the argument list of unix.Syscall6. That function is
// declared //go:uintptrkeepalive, so the referenced memory stays alive and in
// place for the duration of the call without escaping to the heap: a caller's
// stack buffer stays on its stack (see TestZeroAllocs).

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mqAttr is the kernel's struct mq_attr (include/uapi/linux/mqueue.h):
//
//	struct mq_attr {
//		__kernel_long_t mq_flags;    /* O_NONBLOCK or 0 */
//		__kernel_long_t mq_maxmsg;   /* capacity in messages */
//		__kernel_long_t mq_msgsize;  /* largest message in bytes */
//		__kernel_long_t mq_curmsgs;  /* messages queued now */
//		__kernel_long_t __reserved[4];
//	};
//
// __kernel_long_t is C long, which is Go's int on every Linux port
// (64 bytes in total on linux/amd64 and linux/arm64).
type mqAttr struct {
	flags    int
	maxMsg   int
	msgSize  int
	curMsgs  int
	reserved [4]int
}

// sigevent is the kernel's struct sigevent (include/uapi/asm-generic/siginfo.h)
// as used by amd64 and arm64 (and the other ports built on the generic header):
//
//	typedef struct sigevent {
//		sigval_t sigev_value;   /* union { int; void * } */
//		int sigev_signo;
//		int sigev_notify;
//		union {
//			int _pad[SIGEV_PAD_SIZE];
//			int _tid;
//			struct { void (*_function)(sigval_t); void *_attribute; } _sigev_thread;
//		} _sigev_un;
//	} sigevent_t;
//
// SIGEV_MAX_SIZE is 64 bytes; the preamble is sizeof(sigval_t) plus two ints,
// and the union pads the rest. On 64-bit ports: value at 0, signo at 8,
// notify at 12, union at 16, total 64.
type sigevent struct {
	value  uintptr // sigev_value (only its pointer-sized member is set, to 0)
	signo  int32   // sigev_signo
	notify int32   // sigev_notify
	_      [(sigevMaxSize - 2*4 - unsafe.Sizeof(uintptr(0))) / 4]int32
}

const (
	sigevMaxSize = 64 // SIGEV_MAX_SIZE
	sigevSignal  = 0  // SIGEV_SIGNAL
	sigevNone    = 1  // SIGEV_NONE

	// Kernel limits that no capability lifts (ipc/mqueue.c, include/linux/ipc_namespace.h).
	hardMsgMax     = 65536            // HARD_MSGMAX
	hardMsgSizeMax = 16 * 1024 * 1024 // HARD_MSGSIZEMAX
)

// sysOpen is mq_open(2). name has no leading slash: the C library strips it
// before the system call, and so do we.
func sysOpen(name string, oflag int, mode uint32, attr *mqAttr) (int, unix.Errno) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, unix.EINVAL // a NUL byte; callers validate names first
	}
	for {
		fd, _, e := unix.Syscall6(unix.SYS_MQ_OPEN,
			uintptr(unsafe.Pointer(p)), uintptr(oflag), uintptr(mode),
			uintptr(unsafe.Pointer(attr)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), 0
	}
}

// sysUnlink is mq_unlink(2); name as for sysOpen.
func sysUnlink(name string) unix.Errno {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return unix.EINVAL
	}
	for {
		_, _, e := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// sysSend is mq_timedsend(2) without a timeout: the descriptor is always
// O_NONBLOCK, so a full queue gives EAGAIN at once.
func sysSend(fd int, msg []byte, prio uint) unix.Errno {
	var p unsafe.Pointer
	if len(msg) > 0 {
		p = unsafe.Pointer(&msg[0])
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDSEND,
			uintptr(fd), uintptr(p), uintptr(len(msg)), uintptr(prio), 0, 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// sysReceive is mq_timedreceive(2) without a timeout (see sysSend).
func sysReceive(fd int, buf []byte) (n int, prio uint, errno unix.Errno) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	var pr uint32 // unsigned int *msg_prio
	for {
		r, _, e := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE,
			uintptr(fd), uintptr(p), uintptr(len(buf)), uintptr(unsafe.Pointer(&pr)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		return int(r), uint(pr), 0
	}
}

// sysGetSetAttr is mq_getsetattr(2): mq_setattr when newAttr is non-nil,
// mq_getattr when oldAttr is non-nil.
func sysGetSetAttr(fd int, newAttr, oldAttr *mqAttr) unix.Errno {
	for {
		_, _, e := unix.Syscall(unix.SYS_MQ_GETSETATTR,
			uintptr(fd), uintptr(unsafe.Pointer(newAttr)), uintptr(unsafe.Pointer(oldAttr)))
		if e != unix.EINTR {
			return e
		}
	}
}

// sysNotify is mq_notify(2); a nil sev removes this process's registration.
func sysNotify(fd int, sev *sigevent) unix.Errno {
	for {
		_, _, e := unix.Syscall(unix.SYS_MQ_NOTIFY, uintptr(fd), uintptr(unsafe.Pointer(sev)), 0)
		if e != unix.EINTR {
			return e
		}
	}
}

// sysPollNow reports the poll(2) events pending on fd right now (a ppoll with
// a zero timeout). An error is reported as POLLERR so that the caller goes on
// to attempt the operation and sees the real error.
func sysPollNow(fd int, events int16) int16 {
	pfd := unix.PollFd{Fd: int32(fd), Events: events}
	var ts unix.Timespec // zero: do not wait
	for {
		_, _, e := unix.Syscall6(unix.SYS_PPOLL,
			uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return unix.POLLERR
		}
		return pfd.Revents
	}
}
