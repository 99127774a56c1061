package shmchan

import (
	"context"
	"fmt"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/ring"
)

// Sending. The operations below run once the caller holds the side
// (through the handle's mutex, or as the owner of an exclusive Sender) and
// has armed the fault guard. v is passed by pointer so the raw path copies
// it once, without escaping.

// sendOne is the one-value send. Its fast path is a raw value into an SPSC
// ring with room: ring.Sender.Fast (the cached head, else Refresh reads
// head once; the slot's length set), one typed copy into the slot, and
// PublishFast (one release store of the tail and a look at the receiver's
// waiting word, in one assembly call), all inlined; Wake only when the
// receiver may be asleep. Everything else is out of line in sendSlow. The
// exclusive Sender.Send writes the same fast path out in its own body.
func (c *Chan[T]) sendOne(s *ring.Sender, ctx context.Context, v *T, block bool) error {
	if c.fast {
		buf, ok := s.Fast(uint64(c.wire))
		if !ok && s.Refresh() { // the cached head was stale, not the ring full
			buf, ok = s.Fast(uint64(c.wire))
		}
		if ok {
			putRaw(buf, v)
			if s.PublishFast() {
				s.Wake()
			}
			return nil
		}
	}
	return c.sendSlow(s, ctx, v, block)
}

func (c *Chan[T]) sendSlow(s *ring.Sender, ctx context.Context, v *T, block bool) (err error) {
	var buf []byte
	if block {
		buf, err = s.Reserve(ctx)
	} else {
		buf, err = s.TryReserve()
	}
	if err != nil {
		return c.named(err)
	}
	committed := false
	defer func() {
		// An encoder that failed, or panicked (the panic goes on): the
		// ring is left as if the send never started. In MPSC the claimed
		// position becomes a skip marker at once, so no live claim is left
		// for the receiver to wait behind.
		if !committed {
			s.Abort()
		}
	}()
	n, err := c.put(buf, v)
	if err != nil {
		return c.named(err)
	}
	committed = true
	s.Commit(n)
	return nil
}

// put encodes *v into a slot's payload buffer: the one codec switch of the
// sending side.
func (c *Chan[T]) put(buf []byte, v *T) (int, error) {
	switch {
	case c.fast && len(buf) >= c.wire:
		putRaw(buf, v)
		return c.wire, nil
	case c.raw != nil:
		return c.raw.Encode(buf, v)
	default:
		return c.encode(buf, *v)
	}
}

// encode goes through the Codec interface, where the compiler must assume
// the value escapes. It takes T by value so that only its own copy is moved
// to the heap, never the caller's: the raw fast path stays allocation-free.
func (c *Chan[T]) encode(buf []byte, v T) (int, error) { return c.codec.Encode(buf, &v) }

func (c *Chan[T]) sendBatch(s *ring.Sender, ctx context.Context, vs []T) (int, error) {
	sent := 0
	for sent < len(vs) {
		k, err := s.ReserveN(ctx, len(vs)-sent)
		if err != nil {
			return sent, c.named(err)
		}
		filled, err := c.fill(s, vs[sent:sent+k])
		s.CommitN(filled) // publish the ones before a failure, give back the rest
		sent += filled
		if err != nil {
			return sent, c.named(err)
		}
	}
	return sent, nil
}

// fill encodes vs into the reserved slots, in order, and returns how many
// it filled before an encoding error. If an encoder panics, the whole
// reservation is given back before the panic goes on.
func (c *Chan[T]) fill(s *ring.Sender, vs []T) (filled int, err error) {
	if c.fast { // a typed copy cannot fail or panic: no deferred abort
		for i := range vs {
			buf, ok := s.FixedSlot(i, uint64(c.wire))
			if !ok {
				return c.fillCodec(s, vs)
			}
			putRaw(buf, &vs[i])
		}
		return len(vs), nil
	}
	return c.fillCodec(s, vs)
}

// fillCodec is fill through put, for values an encoder may refuse or
// panic on.
func (c *Chan[T]) fillCodec(s *ring.Sender, vs []T) (filled int, err error) {
	defer func() {
		if filled < len(vs) && err == nil { // panicking
			s.Abort()
		}
	}()
	for filled = 0; filled < len(vs); filled++ {
		n, err := c.put(s.Slot(filled), &vs[filled])
		if err != nil {
			return filled, err
		}
		s.SetLen(filled, n)
	}
	return filled, nil
}

func (c *Chan[T]) sendFunc(s *ring.Sender, ctx context.Context, fill func(*T)) error {
	if c.raw == nil {
		return fmt.Errorf("%w: %q holds %s values", ErrNotRaw, c.name, c.hdr.CodecName)
	}
	n := c.raw.FixedSize()
	// The fast path, as in sendOne: Fast stores only past the tail, so a
	// fill that panics leaves nothing to give back.
	buf, ok := s.Fast(uint64(n))
	if !ok && s.Refresh() {
		buf, ok = s.Fast(uint64(n))
	}
	if p, aligned := c.raw.View(buf); ok && aligned {
		fill(p)
		if s.PublishFast() {
			s.Wake()
		}
		return nil
	}
	buf, err := s.Reserve(ctx)
	if err != nil {
		return c.named(err)
	}
	buf = buf[:n] // not cleared: see SendFunc
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

// Send sends v, blocking while the channel is full. It returns ErrClosed
// after CloseSend, ErrTooLarge if v's encoding does not fit, ctx.Err() if
// the context ends first.
func (c *Chan[T]) Send(ctx context.Context, v T) (err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
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
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	s, err := c.sender()
	if err != nil {
		return err
	}
	return c.sendOne(s, context.Background(), &v, false)
}

// SendBatch sends every value of vs in order, blocking while the channel is
// full. Each run of values that fits is written into consecutive slots and
// published with one index store and at most one wake-up, so a batch costs
// about what one Send does. It returns how many values were sent: len(vs),
// or fewer with an error.
func (c *Chan[T]) SendBatch(ctx context.Context, vs []T) (sent int, err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	s, err := c.sender()
	if err != nil {
		return 0, err
	}
	return c.sendBatch(s, ctx, vs)
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
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	s, err := c.sender()
	if err != nil {
		return err
	}
	return c.sendFunc(s, ctx, fill)
}
