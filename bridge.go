package shmchan

// The bridges are functions, not methods: a method of Chan[T] that makes a
// chan T would stop Chan[T] from compiling for any T of 64 KiB or more (Go's
// limit on channel elements), even in programs that never call it.

import (
	"context"
	"errors"
)

// RecvChan bridges c to a Go channel, for select: a goroutine receives from
// c (taking the receiver role, as Recv would) and delivers on the returned
// channel, which has room for buffer values. The channel is closed when c
// is closed for sending and drained, when ctx ends, or on any error; the
// returned function then reports why: nil after the close and drain,
// ctx.Err() after cancellation, the error otherwise. Called earlier, it
// waits for that.
//
// Values the goroutine has taken from c are consumed from the shared
// channel: those in the Go channel's buffer, and the one being delivered
// when ctx ends, are lost with this process. Keep buffer small (0 is fine)
// where that matters.
func RecvChan[T any](ctx context.Context, c *Chan[T], buffer int) (<-chan T, func() error) {
	out := make(chan T, max(buffer, 0))
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		defer close(out)
		for {
			v, e := c.Recv(ctx)
			if e != nil {
				if !errors.Is(e, ErrClosed) || errors.Is(e, errHandleClosed) {
					err = e
				}
				return
			}
			select {
			case out <- v:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
	}()
	return out, func() error { <-done; return err }
}

// SendChan bridges a Go channel to c: a goroutine sends every value written
// to the returned channel (which has room for buffer values) on c, in order,
// taking the sender role as Send would. Close the returned channel when
// done: the goroutine sends what is left, then, if closeSend is true, closes
// c for sending (CloseSend). The returned function waits for the goroutine
// and reports the first error (a send's, CloseSend's, or ctx.Err()). After
// an error the goroutine keeps reading and drops what it reads, so writers
// never block on a dead bridge; check the error.
func SendChan[T any](ctx context.Context, c *Chan[T], buffer int, closeSend bool) (chan<- T, func() error) {
	in := make(chan T, max(buffer, 0))
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		for v := range in {
			if err == nil {
				err = c.Send(ctx, v)
			}
		}
		if err == nil && closeSend {
			err = c.CloseSend()
		}
	}()
	return in, func() error { <-done; return err }
}
