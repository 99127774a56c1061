package mq

import "errors"

// Sentinel errors. Match them with errors.Is: most are returned wrapped in an
// error that says which queue and operation failed and why
// ("mq: send /jobs: message of 9000 bytes exceeds MsgSize 8192").
//
// ErrFull and ErrEmpty are the exception: TrySend and TryReceive (and Send and
// Receive on a handle in non-blocking mode) return them bare, so that polling
// an empty queue costs no allocation. Their text therefore carries the
// package prefix.
//
// Besides these, errors match:
//   - fs.ErrExist, fs.ErrNotExist, fs.ErrPermission from Open and Unlink
//     (the wrapped syscall.Errno implements them);
//   - os.ErrClosed for any operation on a closed Queue;
//   - the syscall.Errno the kernel returned, where there was one
//     (errors.Is(err, syscall.EMFILE), ...);
//   - ctx.Err() itself (context.Canceled or context.DeadlineExceeded),
//     returned unwrapped by Send and Receive.
var (
	// ErrFull: the queue holds MaxMsg messages and the call would block.
	ErrFull = errors.New("mq: queue is full")

	// ErrEmpty: the queue holds no message and the call would block.
	ErrEmpty = errors.New("mq: queue is empty")

	// ErrTooLarge: the message is longer than the queue's MsgSize (EMSGSIZE).
	ErrTooLarge = errors.New("message too large")

	// ErrInvalidName: the name is not a valid queue name (see Open).
	ErrInvalidName = errors.New("invalid queue name")

	// ErrShortBuffer: a receive buffer is shorter than the queue's MsgSize.
	// The kernel refuses such a receive (it never truncates), so the check is
	// made before the system call, whatever is queued.
	ErrShortBuffer = errors.New("receive buffer shorter than the queue's MsgSize")

	// ErrInvalidPriority: a priority is not below PrioMax (MQ_PRIO_MAX).
	ErrInvalidPriority = errors.New("invalid message priority")

	// ErrLimit: a system limit refused to create a queue: the sysctls under
	// /proc/sys/fs/mqueue (msg_max, msgsize_max, queues_max), the kernel's
	// hard limits, or the user's RLIMIT_MSGQUEUE. The message names the
	// limit and its value.
	ErrLimit = errors.New("system limit exceeded")

	// ErrNotifyBusy: Notify found a registration already in place on the
	// queue (EBUSY): the kernel allows one per queue, system-wide.
	ErrNotifyBusy = errors.New("notification already registered")
)

// opError is the error type built by this package when it needs a message of
// its own: the text is exactly msg, and errors.Is matches every error in errs
// (sentinels of this package, a syscall.Errno, os.ErrClosed, ...).
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

func newError(msg string, errs ...error) error {
	return &opError{msg: msg, errs: errs}
}
