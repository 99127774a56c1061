package shmchan

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/ring"
)

// Receiving, the mirror of send.go.

// recvOne is the one-value receive. Its fast path is a raw value from an
// SPSC ring: ring.Receiver.Fast (the cached tail ahead of head, else
// Refresh reads the tail once; the length read once and checked), one
// typed copy out of the slot, and ReleaseFast (one release store of head
// and a look at the senders' waiting word, in one assembly call), all
// inlined; Wake only when a sender may be asleep. Everything else is out of
// line in recvSlow. The exclusive Receiver.Recv writes the same fast path
// out in its own body.
func (c *Chan[T]) recvOne(r *ring.Receiver, ctx context.Context, v *T, block bool) error {
	if c.fast {
		b, ok := r.Fast()
		if !ok && r.Refresh() { // the cached tail was stale, not the ring empty
			b, ok = r.Fast()
		}
		if ok && len(b) == c.wire {
			getRaw(b, v)
			if r.ReleaseFast() {
				r.Wake()
			}
			return nil
		}
	}
	return c.recvSlow(r, ctx, v, block)
}

func (c *Chan[T]) recvSlow(r *ring.Receiver, ctx context.Context, v *T, block bool) error {
	var b []byte
	var err error
	if block {
		b, err = r.Peek(ctx)
	} else {
		b, err = r.TryPeek()
	}
	if err != nil {
		return c.named(err)
	}
	err = c.get(b, v)
	// A value that does not decode is released too (so the channel does
	// not wedge on it) and reported as ErrCorrupt.
	r.Release()
	if err != nil {
		return fmt.Errorf("shmchan: %q: %w: %w", c.name, ErrCorrupt, err)
	}
	return nil
}

// get decodes a committed payload into *v: the one codec switch of the
// receiving side.
func (c *Chan[T]) get(b []byte, v *T) error {
	switch {
	case c.fast && len(b) == c.wire:
		getRaw(b, v)
		return nil
	case c.raw != nil:
		return c.raw.Decode(b, v)
	default:
		var err error
		*v, err = c.decode(b)
		return err
	}
}

// decode goes through the Codec interface (see encode).
func (c *Chan[T]) decode(b []byte) (T, error) {
	var v T
	err := c.codec.Decode(b, &v)
	return v, err
}

func (c *Chan[T]) recvBatch(r *ring.Receiver, ctx context.Context, vs []T) (int, error) {
	if len(vs) == 0 {
		return 0, nil
	}
	k, err := r.PeekN(ctx, len(vs))
	if err != nil {
		return 0, c.named(err)
	}
	for i := 0; i < k; i++ {
		if c.fast {
			if b, ok := r.FixedItem(i, uint64(c.wire)); ok {
				getRaw(b, &vs[i])
				continue
			}
		}
		b, err := r.Item(i)
		if err == nil {
			err = c.get(b, &vs[i])
		}
		if err != nil {
			r.ReleaseN(i + 1) // the bad value is consumed, so the channel does not wedge on it
			return i, fmt.Errorf("shmchan: %q: %w: %w", c.name, ErrCorrupt, err)
		}
	}
	r.ReleaseN(k)
	return k, nil
}

func (c *Chan[T]) recvFunc(r *ring.Receiver, ctx context.Context, read func(*T)) error {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	// The fast path, as in recvOne, for a value read where it lies.
	if !c.raw.HasBool() { // a bool is read from a normalised copy: recvFuncSlow
		b, ok := r.Fast()
		if !ok && r.Refresh() {
			b, ok = r.Fast()
		}
		if p, aligned := c.raw.View(b); ok && aligned && len(b) == c.raw.FixedSize() {
			readFast(r, p, read)
			return nil
		}
	}
	return c.recvFuncSlow(r, ctx, read)
}

// readFast hands read the value ring.Receiver.Fast returned and consumes
// it, even if read panics (as recvFuncSlow does). Its own function: with
// recvFuncSlow's returns, a second defer in recvFunc would no longer be
// open-coded (go test -bench Paths16/inplace: the runtime's deferreturn
// showed in the profile).
func readFast[T any](r *ring.Receiver, p *T, read func(*T)) {
	defer releaseFast(r)
	read(p)
}

func (c *Chan[T]) recvFuncSlow(r *ring.Receiver, ctx context.Context, read func(*T)) error {
	b, err := r.Peek(ctx)
	if err != nil {
		return c.named(err)
	}
	defer r.Release()
	if len(b) != c.raw.FixedSize() {
		return fmt.Errorf("shmchan: %q: %w: value of %d bytes, the type has %d", c.name, ErrCorrupt, len(b), c.raw.FixedSize())
	}
	if c.raw.HasBool() {
		// A peer may have stored any byte in a bool: read a normalised copy.
		var v T
		if err := c.raw.Decode(b, &v); err != nil {
			return fmt.Errorf("shmchan: %q: %w: %w", c.name, ErrCorrupt, err)
		}
		read(&v)
		return nil
	}
	p, ok := c.raw.View(b)
	if !ok {
		return fmt.Errorf("shmchan: %q: slot not aligned for %s", c.name, c.hdr.TypeName)
	}
	read(p)
	return nil
}

// releaseFast consumes the value ring.Receiver.Fast returned.
func releaseFast(r *ring.Receiver) {
	if r.ReleaseFast() {
		r.Wake()
	}
}

// Recv receives a value, blocking while the channel is empty. Once the
// channel is closed (CloseSend) and drained it returns ErrClosed.
func (c *Chan[T]) Recv(ctx context.Context) (v T, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	r, err := c.receiver()
	if err != nil {
		return v, err
	}
	err = c.recvOne(r, ctx, &v, true)
	return v, err
}

// TryRecv receives a value if one is there now, else returns ErrEmpty (or
// ErrClosed once the channel is closed and drained).
func (c *Chan[T]) TryRecv() (v T, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	r, err := c.receiver()
	if err != nil {
		return v, err
	}
	err = c.recvOne(r, context.Background(), &v, false)
	return v, err
}

// RecvBatch waits for at least one value, then receives up to len(vs)
// values that are already there, with one index store and at most one
// wake-up. It returns how many it stored in vs. In MPSC mode it returns one
// value per call (slots there are committed one by one).
func (c *Chan[T]) RecvBatch(ctx context.Context, vs []T) (n int, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	r, err := c.receiver()
	if err != nil {
		return 0, err
	}
	return c.recvBatch(r, ctx, vs)
}

// RecvFunc receives one value in place: read gets a pointer to the T inside
// the channel's slot, and the slot is released when read returns. The
// pointer is valid only during the call; the bytes are shared memory, which
// a buggy or hostile peer could change while read looks at them (types with
// bool fields get a checked copy instead). It blocks while the channel is
// empty. Only raw types; others get ErrNotRaw.
func (c *Chan[T]) RecvFunc(ctx context.Context, read func(*T)) (err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	r, err := c.receiver()
	if err != nil {
		return err
	}
	return c.recvFunc(r, ctx, read)
}

// All returns an iterator over the values received until the channel is
// closed and drained (then it stops without an error). A *LagError (a
// DropOldest receiver that fell behind) is yielded with a zero value and
// the iteration goes on. Any other error, including the context's, is
// yielded once with a zero value, and the iteration stops. Breaking out of
// the loop leaves the channel as it is.
//
//	for v, err := range c.All(ctx) {
//		if err != nil { ... }
//		use(v)
//	}
func (c *Chan[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := c.Recv(ctx)
			if errors.Is(err, ring.ErrClosed) && !errors.Is(err, errHandleClosed) {
				return
			}
			if !yield(v, err) || err != nil && !errors.Is(err, ErrLagged) {
				return
			}
		}
	}
}
