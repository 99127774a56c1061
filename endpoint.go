package shmchan

import (
	"context"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/ring"
)

// Sender is a handle's sending side owned by one goroutine: Chan.Sender
// takes the handle's send lock and keeps it until Release, so its calls
// skip the lock that Chan's own methods take per value (what Aeron calls an
// exclusive publication). Use it in hot loops; use Chan's methods when
// several goroutines share a handle. A Sender is not safe for concurrent
// use. While it is held, the handle's own send methods (and Close) wait.
type Sender[T any] struct {
	c    *Chan[T]
	s    *ring.Sender
	done bool
}

// Receiver is the receiving counterpart of Sender.
type Receiver[T any] struct {
	c    *Chan[T]
	r    *ring.Receiver
	done bool
}

// Sender takes the sender role (as the first send would) and returns the
// exclusive sending side. Call Release when done with it.
func (c *Chan[T]) Sender() (_ *Sender[T], err error) {
	c.smu.Lock()
	defer func() {
		if err != nil {
			c.smu.Unlock()
		}
	}()
	defer region.Recover(&err, region.Protect())
	s, err := c.sender()
	if err != nil {
		return nil, err
	}
	return &Sender[T]{c: c, s: s}, nil
}

// Receiver takes the receiver role and returns the exclusive receiving
// side. Call Release when done with it.
func (c *Chan[T]) Receiver() (_ *Receiver[T], err error) {
	c.rmu.Lock()
	defer func() {
		if err != nil {
			c.rmu.Unlock()
		}
	}()
	defer region.Recover(&err, region.Protect())
	r, err := c.receiver()
	if err != nil {
		return nil, err
	}
	return &Receiver[T]{c: c, r: r}, nil
}

// Release gives the send side back to the handle. The role stays with the
// handle. Calls after Release return ErrClosed.
func (x *Sender[T]) Release() {
	if !x.done {
		x.done = true
		x.c.smu.Unlock()
	}
}

// Release gives the receive side back to the handle.
func (x *Receiver[T]) Release() {
	if !x.done {
		x.done = true
		x.c.rmu.Unlock()
	}
}

// endpointErr reports whether the endpoint may touch the mapping: not released, and
// the handle not closed (Close waits for Release before it unmaps, so a
// live endpoint's memory is always mapped).
func (c *Chan[T]) endpointErr(done bool) error {
	if done || c.dead.Load() {
		return c.closedErr()
	}
	return nil
}

// Send is Chan.Send without the lock.
func (x *Sender[T]) Send(ctx context.Context, v T) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.sendOne(x.s, ctx, &v, true)
}

// TrySend is Chan.TrySend without the lock.
func (x *Sender[T]) TrySend(v T) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.sendOne(x.s, context.Background(), &v, false)
}

// SendBatch is Chan.SendBatch without the lock.
func (x *Sender[T]) SendBatch(ctx context.Context, vs []T) (n int, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return 0, err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.sendBatch(x.s, ctx, vs)
}

// SendFunc is Chan.SendFunc without the lock.
func (x *Sender[T]) SendFunc(ctx context.Context, fill func(*T)) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.sendFunc(x.s, ctx, fill)
}

// Recv is Chan.Recv without the lock.
func (x *Receiver[T]) Recv(ctx context.Context) (v T, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return v, err
	}
	defer region.Recover(&err, region.Protect())
	err = x.c.recvOne(x.r, ctx, &v, true)
	return v, err
}

// TryRecv is Chan.TryRecv without the lock.
func (x *Receiver[T]) TryRecv() (v T, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return v, err
	}
	defer region.Recover(&err, region.Protect())
	err = x.c.recvOne(x.r, context.Background(), &v, false)
	return v, err
}

// RecvBatch is Chan.RecvBatch without the lock.
func (x *Receiver[T]) RecvBatch(ctx context.Context, vs []T) (n int, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return 0, err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.recvBatch(x.r, ctx, vs)
}

// RecvFunc is Chan.RecvFunc without the lock.
func (x *Receiver[T]) RecvFunc(ctx context.Context, read func(*T)) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	defer region.Recover(&err, region.Protect())
	return x.c.recvFunc(x.r, ctx, read)
}
