package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Receiver is the receiving side of one handle. The caller must hold the
// receiver's role lock while it uses the Receiver, and must not call its
// methods concurrently.
//
// A receive is TryPeek/Peek (the payload of the next committed value, a
// slice of shared memory valid until Release), then Release. The batch form
// is PeekN, Item per value, ReleaseN.
type Receiver struct {
	r *Ring

	// Only this Receiver writes the head word, so it keeps the
	// authoritative count locally.
	head      uint64
	tailCache uint64 // tail count last seen; it only grows
	closed    bool   // the closed bit was set in the tail last seen
	peeked    uint64 // values peeked and not yet released (batch)
	one       []byte // MPSC: the payload TryPeekN peeked, so Item(0) does not read its length again

	// MPSC: the position found claimed but uncommitted, and since when.
	stuckPos   uint64
	stuckSince time.Time
}

// NewReceiver takes the receiver role (entry 0) for this handle; the caller
// holds its role lock.
func (r *Ring) NewReceiver(id Identity) (*Receiver, error) {
	atomic.StoreUint32(r.recv.waiting, 0) // the only receiver is us
	r.stampEntry(0, id)

	h := atomic.LoadUint64(r.head)
	t := atomic.LoadUint64(r.tail)
	cnt := t &^ layout.ClosedBit
	if h > cnt || cnt-h > r.capacity {
		return nil, fmt.Errorf("%w: head %d, tail %d, capacity %d", ErrCorrupt, h, cnt, r.capacity)
	}
	return &Receiver{r: r, head: h, tailCache: cnt, closed: t&layout.ClosedBit != 0, stuckPos: ^uint64(0)}, nil
}

// Detach marks the receiver entry free (informational).
func (c *Receiver) Detach() {
	atomic.StoreUint32(word32(c.r.mem, layout.RoleOffset(0)+layout.RolePID), 0)
}

// refreshTail re-reads the tail word and checks it: the count never goes
// back, and is never more than a ring's worth past our head.
func (c *Receiver) refreshTail() error {
	t := atomic.LoadUint64(c.r.tail)
	cnt := t &^ layout.ClosedBit
	if cnt < c.tailCache || cnt-c.head > c.r.capacity {
		return fmt.Errorf("%w: tail %d outside [%d, %d]", ErrCorrupt, cnt, c.tailCache, c.head+c.r.capacity)
	}
	c.tailCache, c.closed = cnt, t&layout.ClosedBit != 0
	return nil
}

// available returns how many positions past head+peeked are claimed
// (MPSC) or committed (SPSC), refreshing the tail when the cache is used up.
func (c *Receiver) available() (uint64, error) {
	pos := c.head + c.peeked
	if pos == c.tailCache {
		if err := c.refreshTail(); err != nil {
			return 0, err
		}
	}
	return c.tailCache - pos, nil
}

func (c *Receiver) emptyErr() error {
	if c.closed {
		return ErrClosed
	}
	return ErrEmpty
}

// payloadAt returns the checked payload of the committed slot at pos. The
// length is read once, and must fit the slot; the returned slice is shared
// memory, which a hostile peer may still change while it is decoded.
func (c *Receiver) payloadAt(pos uint64) ([]byte, uint32, error) {
	sl := c.r.slot(pos)
	n := binary.LittleEndian.Uint32(sl[layout.SlotLen:])
	if n == layout.SlotSkip && c.r.mpsc {
		return nil, n, nil
	}
	if uint64(n) > c.r.maxMsg {
		return nil, n, fmt.Errorf("%w: slot %d holds length %d, the maximum is %d", ErrCorrupt, pos, n, c.r.maxMsg)
	}
	return sl[layout.SlotHeaderSize : layout.SlotHeaderSize+uint64(n)], n, nil
}

// TryPeek returns the payload of the next value, or ErrEmpty, ErrClosed
// (closed and drained) or ErrCorrupt. The slice aliases shared memory and is
// valid until Release.
func (c *Receiver) TryPeek() ([]byte, error) {
	if b, ok := c.fastPeek(); ok {
		return b, nil
	}
	b, _, err := c.tryPeek()
	return b, err
}

// fastPeek is the SPSC path when the cached tail already covers head: no
// shared index is read at all, only the slot.
func (c *Receiver) fastPeek() ([]byte, bool) {
	if c.r.mpsc || c.head >= c.tailCache {
		return nil, false
	}
	sl := c.r.slot(c.head)
	n := uint64(binary.LittleEndian.Uint32(sl[layout.SlotLen:]))
	if n > c.r.maxMsg {
		return nil, false // the slow path reports it
	}
	c.peeked, c.one = 1, nil
	return sl[layout.SlotHeaderSize : layout.SlotHeaderSize+n], true
}

func (c *Receiver) tryPeek() ([]byte, readiness, error) {
	c.peeked, c.one = 0, nil
	for {
		avail, err := c.available()
		if err != nil {
			return nil, notReady, err
		}
		if avail == 0 {
			return nil, notReady, c.emptyErr()
		}
		if c.r.mpsc {
			st, err := c.committed(c.head)
			if st == skipped {
				continue
			}
			if st != ready || err != nil {
				if err == nil {
					err = ErrEmpty
				}
				return nil, st, err
			}
		}
		b, n, err := c.payloadAt(c.head)
		if err != nil {
			return nil, notReady, err
		}
		if n == layout.SlotSkip && c.r.mpsc {
			c.advance(1)
			continue
		}
		c.peeked = 1
		return b, ready, nil
	}
}

// Peek is TryPeek that waits for a value.
func (c *Receiver) Peek(ctx context.Context) ([]byte, error) {
	if b, ok := c.fastPeek(); ok {
		return b, nil
	}
	b, _, err := c.tryPeek()
	if err != ErrEmpty {
		return b, err
	}
	err = c.r.block(ctx, &c.r.recv, nil, func() (readiness, error) {
		var st readiness
		b, st, err = c.tryPeek()
		switch err {
		case nil:
			return ready, nil
		case ErrEmpty:
			return st, nil
		}
		return notReady, err
	})
	return b, err
}

// Release consumes every value peeked since the last Release.
func (c *Receiver) Release() { c.ReleaseN(int(c.peeked)) }

// PeekN makes up to max values available through Item without waiting,
// and returns how many (>= 1), or ErrEmpty, ErrClosed, ErrCorrupt.
func (c *Receiver) TryPeekN(max int) (int, error) {
	if c.r.mpsc || max <= 1 {
		// MPSC slots commit one by one, possibly out of order; take one.
		b, err := c.TryPeek()
		if err != nil {
			return 0, err
		}
		c.one = b
		return 1, nil
	}
	c.peeked = 0
	avail, err := c.available()
	if err != nil {
		return 0, err
	}
	if avail == 0 {
		return 0, c.emptyErr()
	}
	c.peeked = min(avail, uint64(max))
	return int(c.peeked), nil
}

// PeekN is TryPeekN that waits for at least one value.
func (c *Receiver) PeekN(ctx context.Context, max int) (int, error) {
	if c.r.mpsc || max <= 1 {
		b, err := c.Peek(ctx)
		if err != nil {
			return 0, err
		}
		c.one = b
		return 1, nil
	}
	n, err := c.TryPeekN(max)
	if err != ErrEmpty {
		return n, err
	}
	err = c.r.block(ctx, &c.r.recv, nil, func() (readiness, error) {
		n, err = c.TryPeekN(max)
		switch err {
		case nil:
			return ready, nil
		case ErrEmpty:
			return notReady, nil
		}
		return notReady, err
	})
	return n, err
}

// Item returns the checked payload of the i-th peeked value.
func (c *Receiver) Item(i int) ([]byte, error) {
	if c.one != nil && i == 0 {
		return c.one, nil
	}
	b, _, err := c.payloadAt(c.head + uint64(i))
	return b, err
}

// ReleaseN consumes the first k peeked values with one head store and at
// most one wake-up. The head store is a release store after this side's
// reads of the slots, so no sender overwrites a slot still being read.
func (c *Receiver) ReleaseN(k int) {
	c.peeked, c.one = 0, nil
	if k > 0 {
		c.advance(uint64(k))
	}
}

func (c *Receiver) advance(k uint64) {
	c.head += k
	publish64(c.r.head, c.head)
	c.r.wakeSenders()
}

// committed reports whether the MPSC slot at pos (claimed: pos < tail) is
// committed. A slot that stays uncommitted past the stuck-check interval
// has its writer looked up: if no live sender's claim covers it, the writer
// died between claim and commit, and the slot is skipped (counted as
// abandoned) so the ring keeps moving. A slow or stopped writer is alive
// and is waited for, however long it takes.
func (c *Receiver) committed(pos uint64) (readiness, error) {
	seq := atomic.LoadUint32(word32(c.r.slot(pos), layout.SlotSeq))
	if seq == uint32(pos+1) {
		c.stuckPos = ^uint64(0)
		return ready, nil
	}
	now := time.Now()
	if c.stuckPos != pos {
		c.stuckPos, c.stuckSince = pos, now
		return stuck, nil
	}
	if now.Sub(c.stuckSince) < c.r.stuck || c.r.alive == nil {
		return stuck, nil
	}
	c.stuckSince = now
	live, err := c.liveClaimer(pos)
	if err != nil || live {
		return stuck, err
	}
	// No live writer claims pos. Its claimer either committed meanwhile or
	// is dead; look once more.
	if atomic.LoadUint32(word32(c.r.slot(pos), layout.SlotSeq)) == uint32(pos+1) {
		c.stuckPos = ^uint64(0)
		return ready, nil
	}
	atomic.AddUint64(c.r.abandoned, 1)
	c.stuckPos = ^uint64(0)
	c.advance(1)
	return skipped, nil
}

// liveClaimer reports whether a sender whose holder is alive has a claim
// covering pos.
func (c *Receiver) liveClaimer(pos uint64) (bool, error) {
	for i := 1; i <= int(c.r.hdr.Producers); i++ {
		off := layout.RoleOffset(i)
		lo := atomic.LoadUint64(word64(c.r.mem, off+layout.RoleClaimLo))
		hi := atomic.LoadUint64(word64(c.r.mem, off+layout.RoleClaimHi))
		if pos < lo || pos >= hi {
			continue
		}
		alive, err := c.r.alive(i)
		if err != nil {
			return false, err
		}
		if alive {
			return true, nil
		}
	}
	return false, nil
}

// TryScan makes up to max values visible from head on without consuming
// them: f gets each committed value's position and checked payload (shared
// memory, valid until ReleaseTo). It stops at the first position that is not
// committed yet (MPSC) and returns how many values f got, or ErrEmpty,
// ErrClosed (closed and drained), ErrCorrupt. Skip markers between values
// are passed over; ReleaseTo consumes them with the values around them.
// Scanning again starts from head again: nothing is held across calls but
// the positions, which only ReleaseTo moves.
func (c *Receiver) TryScan(max int, f func(pos uint64, b []byte)) (int, error) {
	n, _, err := c.tryScan(max, f)
	return n, err
}

// Scan is TryScan that waits for at least one value.
func (c *Receiver) Scan(ctx context.Context, max int, f func(pos uint64, b []byte)) (int, error) {
	n, _, err := c.tryScan(max, f)
	if err != ErrEmpty {
		return n, err
	}
	err = c.r.block(ctx, &c.r.recv, nil, func() (readiness, error) {
		var st readiness
		n, st, err = c.tryScan(max, f)
		switch err {
		case nil:
			return ready, nil
		case ErrEmpty:
			return st, nil
		}
		return notReady, err
	})
	return n, err
}

func (c *Receiver) tryScan(max int, f func(pos uint64, b []byte)) (int, readiness, error) {
	// The value at head goes through the single-value path, which also
	// skips abandoned slots (it may move head: nothing before it is held).
	b, st, err := c.tryPeek()
	c.peeked, c.one = 0, nil
	if err != nil {
		return 0, st, err
	}
	f(c.head, b)
	got := 1
	pos := c.head + 1
	for got < max {
		if pos == c.tailCache {
			if err := c.refreshTail(); err != nil {
				return got, ready, err
			}
			if pos == c.tailCache {
				break
			}
		}
		if c.r.mpsc && atomic.LoadUint32(word32(c.r.slot(pos), layout.SlotSeq)) != uint32(pos+1) {
			break // not committed yet: the next scan waits for it at head
		}
		b, n, err := c.payloadAt(pos)
		if err != nil {
			return got, ready, err
		}
		if !(n == layout.SlotSkip && c.r.mpsc) {
			f(pos, b)
			got++
		}
		pos++
	}
	return got, ready, nil
}

// ReleaseTo consumes every position before end, which must lie in
// (head, the end of the last scan]: the values a scan returned and the skip
// markers between them.
func (c *Receiver) ReleaseTo(end uint64) error {
	c.peeked, c.one = 0, nil
	if end <= c.head || end > c.tailCache {
		return fmt.Errorf("ring: release to %d outside (%d, %d]", end, c.head, c.tailCache)
	}
	c.advance(end - c.head)
	return nil
}
