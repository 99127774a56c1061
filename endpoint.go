package shmchan

import (
	"context"
	"sync/atomic"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/ring"
)

// Sender is a handle's sending side owned by one goroutine: Chan.Sender
// takes the handle's send lock and keeps it until Release, so its calls
// skip the lock that Chan's own methods take per value (what Aeron calls an
// exclusive publication). Use it in hot loops; use Chan's methods when
// several goroutines share a handle. A Sender is not safe for concurrent
// use. While it is held, the handle's own send methods (and Close) wait.
//
// A peer that truncates the region turns the next access into ErrCorrupt,
// not a crash. Where the mapping is trapped (amd64, see
// internal/region/guard.go) Send's and Recv's fast paths need nothing for
// that but a look at the trap's hit word. Every other path, and every path
// on an untrapped mapping, runs under the fault guard, which is cheaper
// here than in Chan's methods: an endpoint's calls turn the calling
// goroutine's panic-on-fault setting (runtime/debug.SetPanicOnFault) on and
// leave it on, instead of restoring it on every return. Release puts back
// the setting that the goroutine that called Chan.Sender had (on the
// goroutine that calls Release, usually the same one). The same holds for
// Receiver.
type Sender[T any] struct {
	c    *Chan[T]
	s    *ring.Sender
	done bool
	old  region.Saved // the creating goroutine's panic-on-fault setting, for Release
}

// Receiver is the receiving counterpart of Sender.
type Receiver[T any] struct {
	c    *Chan[T]
	r    *ring.Receiver
	done bool
	old  region.Saved
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
	old := region.Protect()
	defer region.Recover(c.hit, &err, old)
	s, err := c.sender()
	if err != nil {
		return nil, err
	}
	return &Sender[T]{c: c, s: s, old: old}, nil
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
	old := region.Protect()
	defer region.Recover(c.hit, &err, old)
	r, err := c.receiver()
	if err != nil {
		return nil, err
	}
	return &Receiver[T]{c: c, r: r, old: old}, nil
}

// Release gives the send side back to the handle. The role stays with the
// handle. Calls after Release return ErrClosed.
func (x *Sender[T]) Release() {
	if !x.done {
		x.done = true
		region.Restore(x.old)
		x.c.smu.Unlock()
	}
}

// Release gives the receive side back to the handle.
func (x *Receiver[T]) Release() {
	if !x.done {
		x.done = true
		region.Restore(x.old)
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
//
// The fast path (a raw T, and a free slot by the cached head) is the whole
// one-value send on one screen: no Go call, no defer, one release store. It
// needs no fault guard because the mapping is trapped (c.hit, see
// internal/region/guard.go): a peer's truncation turns the accesses below
// into reads and writes of zero pages, and the hit word, read after them,
// makes the call report ErrCorrupt. Everything else (a full ring by the
// cached head, sleeping, codecs, an untrapped mapping, a released
// endpoint) goes to send, under the guard.
func (x *Sender[T]) Send(ctx context.Context, v T) error {
	if c, s := x.c, x.s; c.fast && c.hit != nil && !x.done && !c.dead.Load() {
		buf, ok := s.Fast(uint64(c.wire))
		if !ok && s.Refresh() { // the cached head was stale, not the ring full
			buf, ok = s.Fast(uint64(c.wire))
		}
		if ok {
			storeRaw(buf, v)
			if s.PublishFast() { // the release store of the tail
				s.Wake()
			}
			if atomic.LoadUint32(c.hit) != 0 {
				return ring.ErrTrapped
			}
			return nil
		}
	}
	return x.send(ctx, v)
}

// send is Send's guarded path: sendOne (the same fast path for an
// untrapped mapping, then the slow one) under the fault guard.
func (x *Sender[T]) send(ctx context.Context, v T) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.sendOne(x.s, ctx, &v, true)
	done = true
	return err
}

// TrySend is Chan.TrySend without the lock.
func (x *Sender[T]) TrySend(v T) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.sendOne(x.s, context.Background(), &v, false)
	done = true
	return err
}

// SendBatch is Chan.SendBatch without the lock.
func (x *Sender[T]) SendBatch(ctx context.Context, vs []T) (n int, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return 0, err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	n, err = x.c.sendBatch(x.s, ctx, vs)
	done = true
	return n, err
}

// SendFunc is Chan.SendFunc without the lock.
func (x *Sender[T]) SendFunc(ctx context.Context, fill func(*T)) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.sendFunc(x.s, ctx, fill)
	done = true
	return err
}

// Recv is Chan.Recv without the lock. Its fast path is Send's mirror (a
// raw T of the right length in the slot by the cached tail, no guard on a
// trapped mapping, the hit word read after the accesses); the rest is recv.
func (x *Receiver[T]) Recv(ctx context.Context) (v T, err error) {
	if c, r := x.c, x.r; c.fast && c.hit != nil && !x.done && !c.dead.Load() {
		b, ok := r.Fast()
		if !ok && r.Refresh() { // the cached tail was stale, not the ring empty
			b, ok = r.Fast()
		}
		if ok && len(b) == c.wire {
			getRaw(b, &v)
			if r.ReleaseFast() { // the release store of the head
				r.Wake()
			}
			if atomic.LoadUint32(c.hit) != 0 {
				var zero T
				return zero, ring.ErrTrapped
			}
			return v, nil
		}
	}
	return x.recv(ctx)
}

// recv is Recv's guarded path: recvOne (the same fast path for an
// untrapped mapping, then the slow one) under the fault guard.
func (x *Receiver[T]) recv(ctx context.Context) (v T, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return v, err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.recvOne(x.r, ctx, &v, true)
	done = true
	return v, err
}

// TryRecv is Chan.TryRecv without the lock.
func (x *Receiver[T]) TryRecv() (v T, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return v, err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.recvOne(x.r, context.Background(), &v, false)
	done = true
	return v, err
}

// RecvBatch is Chan.RecvBatch without the lock.
func (x *Receiver[T]) RecvBatch(ctx context.Context, vs []T) (n int, err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return 0, err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	n, err = x.c.recvBatch(x.r, ctx, vs)
	done = true
	return n, err
}

// RecvFunc is Chan.RecvFunc without the lock.
func (x *Receiver[T]) RecvFunc(ctx context.Context, read func(*T)) (err error) {
	if err := x.c.endpointErr(x.done); err != nil {
		return err
	}
	region.Arm()
	done := false
	defer region.Disarm(x.c.hit, &err, &done)
	err = x.c.recvFunc(x.r, ctx, read)
	done = true
	return err
}
