package shmchan

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/shmchan/shmchan/ring"
)

// The operations, once the caller holds the side (through the handle's
// mutex, or as the owner of an exclusive Sender or Receiver) and has armed
// the fault guard. v is passed by pointer so the raw path copies it once,
// without escaping.

func (c *Chan[T]) sendOne(s *ring.Sender, ctx context.Context, v *T, block bool) error {
	var buf []byte
	var err error
	if block {
		buf, err = s.Reserve(ctx)
	} else {
		buf, err = s.TryReserve()
	}
	if err != nil {
		return c.wrap(err)
	}
	if c.fast && len(buf) >= c.wire {
		putRaw(buf, v)
		s.Commit(c.wire)
		return nil
	}
	var n int
	if c.raw != nil {
		n, err = c.raw.Encode(buf, v)
	} else {
		n, err = c.encode(buf, *v)
	}
	if err != nil {
		s.Abort()
		return c.wrap(err)
	}
	s.Commit(n)
	return nil
}

func (c *Chan[T]) recvOne(r *ring.Receiver, ctx context.Context, v *T, block bool) error {
	var b []byte
	var err error
	if block {
		b, err = r.Peek(ctx)
	} else {
		b, err = r.TryPeek()
	}
	if err != nil {
		return c.wrap(err)
	}
	return c.consume(r, b, v)
}

// encode and decode go through the Codec interface, where the compiler
// must assume the value escapes. They take and return T by value so that
// only their own copy is moved to the heap, never the caller's: the raw
// fast path stays allocation-free.
func (c *Chan[T]) encode(buf []byte, v T) (int, error) { return c.codec.Encode(buf, &v) }

func (c *Chan[T]) decode(b []byte) (T, error) {
	var v T
	err := c.codec.Decode(b, &v)
	return v, err
}

// consume decodes the peeked payload and releases its slot. A value that
// does not decode is released too (so the channel does not wedge on it) and
// reported as ErrCorrupt.
func (c *Chan[T]) consume(r *ring.Receiver, b []byte, v *T) error {
	if c.fast && len(b) == c.wire {
		getRaw(b, v)
		r.Release()
		return nil
	}
	var err error
	if c.raw != nil {
		err = c.raw.Decode(b, v)
	} else {
		*v, err = c.decode(b)
	}
	r.Release()
	if err != nil {
		return fmt.Errorf("shmchan: %q: %w: %w", c.name, ErrCorrupt, err)
	}
	return nil
}

func (c *Chan[T]) sendBatch(s *ring.Sender, ctx context.Context, vs []T) (int, error) {
	sent := 0
	for sent < len(vs) {
		k, err := s.ReserveN(ctx, len(vs)-sent)
		if err != nil {
			return sent, c.wrap(err)
		}
		if c.fast {
			for i := 0; i < k; i++ {
				buf := s.Slot(i)
				if len(buf) < c.wire {
					s.CommitN(i)
					return sent + i, fmt.Errorf("shmchan: %q: %w: slot of %d bytes", c.name, ErrTooLarge, len(buf))
				}
				putRaw(buf, &vs[sent+i])
				s.SetLen(i, c.wire)
			}
			s.CommitN(k)
			sent += k
			continue
		}
		for i := 0; i < k; i++ {
			var n int
			if c.raw != nil {
				n, err = c.raw.Encode(s.Slot(i), &vs[sent+i])
			} else {
				n, err = c.encode(s.Slot(i), vs[sent+i])
			}
			if err != nil {
				s.CommitN(i) // publish the ones before it
				return sent + i, c.wrap(err)
			}
			s.SetLen(i, n)
		}
		s.CommitN(k)
		sent += k
	}
	return sent, nil
}

func (c *Chan[T]) recvBatch(r *ring.Receiver, ctx context.Context, vs []T) (int, error) {
	if len(vs) == 0 {
		return 0, nil
	}
	k, err := r.PeekN(ctx, len(vs))
	if err != nil {
		return 0, c.wrap(err)
	}
	for i := 0; i < k; i++ {
		b, err := r.Item(i)
		if err == nil && c.fast && len(b) == c.wire {
			getRaw(b, &vs[i])
			continue
		}
		if err == nil {
			if c.raw != nil {
				err = c.raw.Decode(b, &vs[i])
			} else {
				vs[i], err = c.decode(b)
			}
		}
		if err != nil {
			r.ReleaseN(i + 1) // the bad value is consumed, so the channel does not wedge on it
			return i, fmt.Errorf("shmchan: %q: %w: %w", c.name, ErrCorrupt, err)
		}
	}
	r.ReleaseN(k)
	return k, nil
}

func (c *Chan[T]) sendFunc(s *ring.Sender, ctx context.Context, fill func(*T)) error {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	buf, err := s.Reserve(ctx)
	if err != nil {
		return c.wrap(err)
	}
	buf = buf[:c.raw.FixedSize()] // not cleared: see SendFunc
	p, ok := c.raw.View(buf)
	if !ok {
		s.Abort()
		return fmt.Errorf("shmchan: %q: slot not aligned for %s", c.name, c.hdr.TypeName)
	}
	done := false
	defer func() {
		if !done {
			s.Abort()
		}
	}()
	fill(p)
	done = true
	s.Commit(len(buf))
	return nil
}

func (c *Chan[T]) recvFunc(r *ring.Receiver, ctx context.Context, read func(*T)) error {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	b, err := r.Peek(ctx)
	if err != nil {
		return c.wrap(err)
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

// Send sends v, blocking while the channel is full. It returns ErrClosed
// after CloseSend, ErrTooLarge if v's encoding does not fit, ctx.Err() if
// the context ends first.
func (c *Chan[T]) Send(ctx context.Context, v T) (err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	s, err := c.sender()
	if err != nil {
		return err
	}
	return c.sendOne(s, ctx, &v, true)
}

// TrySend sends v if a slot is free now, else returns ErrFull.
func (c *Chan[T]) TrySend(v T) (err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	s, err := c.sender()
	if err != nil {
		return err
	}
	return c.sendOne(s, context.Background(), &v, false)
}

// Recv receives a value, blocking while the channel is empty. Once the
// channel is closed (CloseSend) and drained it returns ErrClosed.
func (c *Chan[T]) Recv(ctx context.Context) (v T, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer ring.Recover(&err, ring.Protect())
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
	defer ring.Recover(&err, ring.Protect())
	r, err := c.receiver()
	if err != nil {
		return v, err
	}
	err = c.recvOne(r, context.Background(), &v, false)
	return v, err
}

// SendBatch sends every value of vs in order, blocking while the channel is
// full. Each run of values that fits is written into consecutive slots and
// published with one index store and at most one wake-up, so a batch costs
// about what one Send does. It returns how many values were sent: len(vs),
// or fewer with an error.
func (c *Chan[T]) SendBatch(ctx context.Context, vs []T) (sent int, err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	s, err := c.sender()
	if err != nil {
		return 0, err
	}
	return c.sendBatch(s, ctx, vs)
}

// RecvBatch waits for at least one value, then receives up to len(vs)
// values that are already there, with one index store and at most one
// wake-up. It returns how many it stored in vs. In MPSC mode it returns one
// value per call (slots there are committed one by one).
func (c *Chan[T]) RecvBatch(ctx context.Context, vs []T) (n int, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	r, err := c.receiver()
	if err != nil {
		return 0, err
	}
	return c.recvBatch(r, ctx, vs)
}

// SendFunc sends one value written in place: fill gets a pointer to the T
// inside the channel's slot, and the value is published when fill returns.
// The slot is not cleared first (for a large T that would double the
// memory traffic): *T holds whatever the slot held, an earlier value of
// this channel or zeros, so fill must set every field the receiver reads. The pointer is valid only during the call; do not keep it. It
// blocks while the channel is full. Only raw (pointer-free) types can be
// accessed in place; other types get ErrNotRaw. If fill panics, nothing is
// sent.
func (c *Chan[T]) SendFunc(ctx context.Context, fill func(*T)) (err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	s, err := c.sender()
	if err != nil {
		return err
	}
	return c.sendFunc(s, ctx, fill)
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
	defer ring.Recover(&err, ring.Protect())
	r, err := c.receiver()
	if err != nil {
		return err
	}
	return c.recvFunc(r, ctx, read)
}

// All returns an iterator over the values received until the channel is
// closed and drained (then it stops without an error). Any other error,
// including the context's, is yielded once with a zero value, and the
// iteration stops. Breaking out of the loop leaves the channel as it is.
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
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}
