//go:build linux

package mq

// Sending and receiving: the checks every call makes, one attempt at the
// system call (trySend, tryReceive), and the blocking forms that wait in
// between (wait.go).

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

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
