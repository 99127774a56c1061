package shmchan

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/shmchan/shmchan/ring"
)

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
	for sent < len(vs) {
		k, err := s.ReserveN(ctx, len(vs)-sent)
		if err != nil {
			return sent, c.wrap(err)
		}
		for i := 0; i < k; i++ {
			var n int
			var err error
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

// RecvBatch waits for at least one value, then receives up to len(vs)
// values that are already there, with one index store and at most one
// wake-up. It returns how many it stored in vs. In MPSC mode it returns one
// value per call (slots there are committed one by one).
func (c *Chan[T]) RecvBatch(ctx context.Context, vs []T) (n int, err error) {
	if len(vs) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	r, err := c.receiver()
	if err != nil {
		return 0, err
	}
	k, err := r.PeekN(ctx, len(vs))
	if err != nil {
		return 0, c.wrap(err)
	}
	for i := 0; i < k; i++ {
		b, err := r.Item(i)
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

// SendFunc sends one value written in place: fill gets a pointer to a
// zeroed T inside the channel's slot, and the value is published when fill
// returns. The pointer is valid only during the call; do not keep it. It
// blocks while the channel is full. Only raw (pointer-free) types can be
// accessed in place; other types get ErrNotRaw. If fill panics, nothing is
// sent.
func (c *Chan[T]) SendFunc(ctx context.Context, fill func(*T)) (err error) {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	s, err := c.sender()
	if err != nil {
		return err
	}
	buf, err := s.Reserve(ctx)
	if err != nil {
		return c.wrap(err)
	}
	buf = buf[:c.raw.FixedSize()]
	clear(buf)
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

// RecvFunc receives one value in place: read gets a pointer to the T inside
// the channel's slot, and the slot is released when read returns. The
// pointer is valid only during the call; the bytes are shared memory, which
// a buggy or hostile peer could change while read looks at them. It blocks
// while the channel is empty. Only raw types; others get ErrNotRaw.
func (c *Chan[T]) RecvFunc(ctx context.Context, read func(*T)) (err error) {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	defer ring.Recover(&err, ring.Protect())
	r, err := c.receiver()
	if err != nil {
		return err
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
