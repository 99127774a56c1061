package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/shmchan/shmchan/layout"
)

// Receiver is the receiving side of one handle: what every topology shares
// (head, the cached tail, peeking and releasing, waiting), with the
// topology's own half behind the consumer interface, chosen once by
// NewReceiver. The caller must hold the receiver's role lock while it uses
// the Receiver, and must not call its methods concurrently.
//
// A receive is TryPeek/Peek (the payload of the next committed value, a
// slice of shared memory valid until Release), then Release. The batch form
// is PeekN, Item per value, ReleaseN; TryScan/Scan and ReleaseTo hold values
// without consuming them.
type Receiver struct {
	r     *Ring
	q     consumer
	entry int // role entry: 0 in SPSC and MPSC, a consumer entry otherwise

	// Only this Receiver writes the head word, so it keeps the
	// authoritative count locally.
	head      uint64
	tailCache uint64 // tail count last seen; it only grows
	// known: every position below it is committed and may be read without
	// asking the consumer (SPSC: the cached tail; MPSC: never ahead of
	// head). The fast path's only test is head < known.
	known  uint64
	closed bool   // the closed bit was set in the tail last seen
	runs   bool   // every claimed position is committed (SPSC), so PeekN hands out runs
	peeked uint64 // values peeked and not yet released (batch)
	one    []byte // the payload a one-value peek found, so Item(0) does not read its length again
	// badTail is the tail count loadTail refused, for refreshTail's error
	// (a second result would put Refresh over the inlining budget).
	badTail uint64
}

// consumer is a topology's half of a Receiver.
type consumer interface {
	// peek finds the next value for c and sets c.head to its position
	// (claiming it first, in a work queue): its payload, or ErrEmpty with
	// the readiness to wait with, ErrClosed, a *LagError, ErrCorrupt.
	peek(c *Receiver) ([]byte, readiness, error)
	// release consumes k values from c.head on and wakes senders that
	// wait for room.
	release(c *Receiver, k uint64)
	// state reports whether position pos (head < pos < tailCache) may be
	// read without consuming what comes before (scans): ready or
	// notReady. Only topologies with ahead() use it.
	state(c *Receiver, pos uint64) (readiness, error)
	// ahead reports whether positions past the first may be looked at
	// without consuming it (scans).
	ahead() bool
	// detach runs when the handle gives the role up.
	detach(c *Receiver)
}

// NewReceiver takes the receiver role (entry 0) for this handle; the caller
// holds its role lock.
func (r *Ring) NewReceiver(id Identity) (*Receiver, error) {
	atomic.StoreUint32(r.recv.waiting, 0) // the only receiver is us
	r.stampEntry(0, id)
	h0, h1, count, closed, err := r.indices()
	if err != nil {
		return nil, err
	}
	if h0 != h1 {
		return nil, fmt.Errorf("%w: head moved from %d to %d with no receiver", ErrCorrupt, h0, h1)
	}
	c := &Receiver{r: r, head: h1, tailCache: count, closed: closed}
	switch r.hdr.Mode {
	case layout.ModeSPSC:
		c.q, c.known, c.runs = spscConsumer{}, count, true
	default:
		c.q, c.known = newMPSCConsumer(), 0
	}
	// Senders asleep on a full ring whose receiver died: there is room to
	// be made now, and a dead receiver's last release may never have woken
	// them.
	r.wakeAll(&r.send, false)
	return c, nil
}

// NewConsumer takes consumer entry i (a work queue's or a broadcast's)
// for this handle; the caller holds the entry's role lock. A broadcast
// receiver joins here: it sees the values sent from now on.
func (r *Ring) NewConsumer(i int, id Identity) (*Receiver, error) {
	h := r.hdr
	if !h.Mode.FanOut() || i < h.ConsumerEntry(0) || i >= h.Entries() {
		return nil, fmt.Errorf("ring: consumer entry %d in a %v region of %d entries", i, h.Mode, h.Entries())
	}
	off := layout.RoleOffset(i)
	flags := word32(r.mem, off+layout.RoleFlags)
	if atomic.LoadUint32(flags)&layout.RoleSleeping != 0 {
		leaveCount(r.recv.waiting) // a predecessor died asleep
	}
	atomic.StoreUint32(flags, 0)
	r.stampEntry(i, id)
	c := &Receiver{r: r, entry: i}
	if h.Mode == layout.ModeBroadcast {
		c.q = newBcastConsumer(c, off)
	} else {
		c.q = newWQConsumer(c, i)
	}
	r.wakeAll(&r.send, false) // a dead predecessor's last release may never have woken them
	return c, nil
}

// Flags returns the word that holds this receiver's RoleSleeping flag, for
// await (fan-out receivers are many sleepers).
func (c *Receiver) flags() *uint32 {
	if c.entry == 0 {
		return nil
	}
	return word32(c.r.mem, layout.RoleOffset(c.entry)+layout.RoleFlags)
}

// Len returns how many values this receiver has still to read: for a
// broadcast receiver its own backlog, else what the ring holds.
func (c *Receiver) Len() int {
	if c.r.hdr.Mode != layout.ModeBroadcast {
		return c.r.Len()
	}
	t := atomic.LoadUint64(c.r.tail) &^ layout.ClosedBit
	if t <= c.head {
		return 0
	}
	return int(min(t-c.head, c.r.capacity))
}

// Detach gives the role up: a broadcast receiver stops gating senders at
// once, and the entry is marked free (informational).
func (c *Receiver) Detach() {
	c.q.detach(c)
	c.r.clearEntry(c.entry)
}

// refreshTail re-reads the tail word and checks it: the count never goes
// back, and is never more than a ring's worth past our head.
func (c *Receiver) refreshTail() error {
	if !c.loadTail() {
		return fmt.Errorf("%w: tail %d outside [%d, %d]", ErrCorrupt, c.badTail, c.tailCache, c.head+c.r.capacity)
	}
	return nil
}

// loadTail is refreshTail without the error (which it leaves in badTail),
// so that Refresh inlines it.
func (c *Receiver) loadTail() bool {
	t := atomic.LoadUint64(c.r.tail) // SYNC POINT "publish" (acquire half)
	cnt := t &^ layout.ClosedBit
	if cnt < c.tailCache || cnt-c.head > c.r.capacity {
		c.badTail = cnt
		return false
	}
	c.tailCache, c.closed = cnt, t&layout.ClosedBit != 0
	if c.runs {
		c.known = cnt
	}
	return true
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
// memory, which a hostile peer may still change while it is decoded. A
// skip marker returns a nil payload and length SlotSkip (MPSC only writes
// them; in SPSC the length check refuses it).
func (c *Receiver) payloadAt(pos uint64) ([]byte, uint32, error) {
	sl := c.r.slot(pos)
	n := binary.LittleEndian.Uint32(sl[layout.SlotLen:])
	if n == layout.SlotSkip && !c.runs {
		return nil, n, nil
	}
	if uint64(n) > c.r.maxMsg {
		return nil, n, fmt.Errorf("%w: slot %d holds length %d, the maximum is %d", ErrCorrupt, pos, n, c.r.maxMsg)
	}
	return sl[layout.SlotHeaderSize : layout.SlotHeaderSize+uint64(n)], n, nil
}

// Fast returns the payload of the value at head when it is known to be
// committed (SPSC, cached tail ahead of head): no shared index is read,
// only the slot. It inlines; ReleaseFast (or Release) consumes it. A length
// that fails its check is left to the slow path, which reports it.
func (c *Receiver) Fast() ([]byte, bool) {
	if c.head >= c.known {
		return nil, false
	}
	r := c.r
	off := (c.head & r.mask) * r.stride
	n := uint64(binary.LittleEndian.Uint32(r.data[off+layout.SlotLen:]))
	if n > r.maxMsg {
		return nil, false
	}
	return r.data[off+layout.SlotHeaderSize : off+layout.SlotHeaderSize+n], true
}

// Refresh re-reads the tail when Fast found nothing known, and reports
// whether Fast can now succeed (the cached tail was stale, not the ring
// empty). A tail that fails its checks is left to the slow path, which
// reports it.
func (c *Receiver) Refresh() bool {
	return c.runs && c.head == c.tailCache && c.loadTail() && c.head < c.known
}

// ReleaseFast consumes the value Fast returned: one release store of head
// and a look at the senders' waiting word, in one call (publishLoad).
//
// It reports whether a sender may be asleep waiting for room; the caller
// then calls Wake (out of line, so that this inlines).
func (c *Receiver) ReleaseFast() (wake bool) {
	c.head++
	return publishLoad(c.r.head, c.head, c.r.send.waiting) != 0 // SYNC POINT "release" (release half)
}

// Wake wakes the senders after a ReleaseFast that asked for it.
func (c *Receiver) Wake() { c.r.wake(&c.r.send) }

// TryPeek returns the payload of the next value, or ErrEmpty, ErrClosed
// (closed and drained) or ErrCorrupt. The slice aliases shared memory and is
// valid until Release.
func (c *Receiver) TryPeek() ([]byte, error) {
	if b, ok := c.Fast(); ok {
		c.peeked, c.one = 1, nil
		return b, nil
	}
	b, _, err := c.tryPeek()
	return b, err
}

func (c *Receiver) tryPeek() ([]byte, readiness, error) {
	c.peeked, c.one = 0, nil
	b, st, err := c.q.peek(c)
	if err == nil {
		c.peeked = 1
	}
	return b, st, err
}

// headPeek is the peek of the topologies with one receiver, at head.
func headPeek(c *Receiver, state func(*Receiver, uint64) (readiness, error)) ([]byte, readiness, error) {
	for {
		avail, err := c.available()
		if err != nil {
			return nil, notReady, err
		}
		if avail == 0 {
			return nil, notReady, c.emptyErr()
		}
		st, err := state(c, c.head)
		if err != nil {
			return nil, st, err
		}
		switch st {
		case skipped:
			continue
		case ready:
		default:
			return nil, st, ErrEmpty
		}
		b, n, err := c.payloadAt(c.head)
		if err != nil {
			return nil, notReady, err
		}
		if n == layout.SlotSkip {
			headRelease(c, 1)
			continue
		}
		return b, ready, nil
	}
}

// Peek is TryPeek that waits for a value.
func (c *Receiver) Peek(ctx context.Context) ([]byte, error) {
	if b, ok := c.Fast(); ok {
		c.peeked, c.one = 1, nil
		return b, nil
	}
	b, _, err := c.tryPeek()
	if err != ErrEmpty {
		return b, err
	}
	err = c.r.await(ctx, &c.r.recv, c.flags(), func() (readiness, error) {
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

// TryPeekN makes up to max values available through Item without waiting,
// and returns how many (>= 1), or ErrEmpty, ErrClosed, ErrCorrupt.
// Topologies whose slots commit one by one (MPSC) give one per call.
func (c *Receiver) TryPeekN(max int) (int, error) {
	if !c.runs || max <= 1 {
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
	if !c.runs || max <= 1 {
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
	err = c.r.await(ctx, &c.r.recv, c.flags(), func() (readiness, error) {
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

// FixedItem returns the payload of the i-th peeked value (i below what
// PeekN returned) when its stored length is exactly n, the one check a
// fixed-size value needs; false otherwise, and Item then says what is
// wrong. It reads the length once and inlines.
func (c *Receiver) FixedItem(i int, n uint64) ([]byte, bool) {
	if c.one != nil {
		return c.one, i == 0 && uint64(len(c.one)) == n
	}
	r := c.r
	off := ((c.head + uint64(i)) & r.mask) * r.stride
	if uint64(binary.LittleEndian.Uint32(r.data[off+layout.SlotLen:])) != n || n > r.maxMsg {
		return nil, false
	}
	off += layout.SlotHeaderSize
	return r.data[off : off+n : off+n], true
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

func (c *Receiver) advance(k uint64) { c.q.release(c, k) }

// headRelease is the release of the topologies with one receiver: one
// store of head.
func headRelease(c *Receiver, k uint64) {
	c.head += k
	publish64(c.r.head, c.head) // SYNC POINT "release" (release half)
	c.r.wake(&c.r.send)
}

// TryScan makes up to max values visible from head on without consuming
// them: f gets each committed value's position and checked payload (shared
// memory, valid until ReleaseTo). It stops at the first position that is not
// committed yet and returns how many values f got, or ErrEmpty, ErrClosed
// (closed and drained), ErrCorrupt. Skip markers between values are passed
// over; ReleaseTo consumes them with the values around them. Scanning again
// starts from head again.
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
	err = c.r.await(ctx, &c.r.recv, c.flags(), func() (readiness, error) {
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
	// The value at head goes through the one-value path, which also skips
	// abandoned slots (it may move head: nothing before it is held).
	b, st, err := c.tryPeek()
	c.peeked, c.one = 0, nil
	if err != nil {
		return 0, st, err
	}
	f(c.head, b)
	got := 1
	if !c.q.ahead() {
		return got, ready, nil
	}
	for pos := c.head + 1; got < max; pos++ {
		if pos == c.tailCache {
			if err := c.refreshTail(); err != nil {
				return got, ready, err
			}
			if pos == c.tailCache {
				break
			}
		}
		if st, err := c.q.state(c, pos); err != nil || st != ready {
			break // not committed yet: a later scan waits for it at head
		}
		b, n, err := c.payloadAt(pos)
		if err != nil {
			return got, ready, err
		}
		if n != layout.SlotSkip {
			f(pos, b)
			got++
		}
	}
	return got, ready, nil
}

// ReleaseTo consumes every position before end, which must lie in
// (head, tail last seen]: the values a scan returned and the skip markers
// between them.
func (c *Receiver) ReleaseTo(end uint64) error {
	c.peeked, c.one = 0, nil
	if end <= c.head || end > c.tailCache || !c.q.ahead() && end != c.head+1 {
		return fmt.Errorf("ring: release to %d outside (%d, %d]", end, c.head, c.tailCache)
	}
	c.advance(end - c.head)
	return nil
}
