//go:build linux

package mq

// Waiting in the Go runtime poller for a queue to become readable or
// writable, one goroutine per direction at a time, cancellable by a context.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

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
	return q.waitFor(ctx, w, op, w.ready)
}

// waitFor is wait with another poller callback.
func (q *Queue) waitFor(ctx context.Context, w *waiter, op string, ready func(fd uintptr) bool) error {
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
		err = q.rc.Write(ready)
	} else {
		err = q.rc.Read(ready)
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

// AwaitArrival blocks until a message arrives on the queue (or one is there
// already), done() reports true, ctx is done, or the Queue is closed, and
// consumes nothing. It returns nil after an arrival even if another reader,
// in this process or another, took the message first: every descriptor the
// runtime poller watches is told of each arrival, so all the goroutines
// waiting here on their own descriptors of one queue wake for one message.
// That is what a doorbell with many sleepers needs (a Receive would wake
// only the one that gets the message).
//
// An arrival that comes before the wait is parked in the poller is
// forgotten when the wait starts (the poller resets readiness first), and
// the message may be gone by then: done is the caller's own record that it
// was woken (a futex-style word the waker moves before it sends), checked
// after that reset, so such a wake-up is not lost. done may be nil.
// Spurious returns are possible; the caller re-checks. A reader blocked in
// mq_timedreceive on a blocking descriptor takes a message before the
// poller hears of it, so every sleeper of such a doorbell must wait this
// way.
func (q *Queue) AwaitArrival(ctx context.Context, done func() bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	called := false
	return q.waitFor(ctx, &q.recv, "await", func(fd uintptr) bool {
		if called {
			return true // woken by the poller: something arrived
		}
		called = true
		return done != nil && done() || q.recv.ready(fd)
	})
}
