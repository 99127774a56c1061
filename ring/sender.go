package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Sender is the sending side of one handle: what every topology shares
// (the reservation, waiting, the role entry), with the topology's own half
// behind the producer interface, chosen once by NewSender. The caller must
// hold the role lock of its entry for as long as it uses the Sender, and
// must not call its methods concurrently.
//
// A send is Fast+PublishFast (SPSC with room known: the whole fast path),
// or TryReserve/Reserve (a slot's payload buffer), then the caller fills it,
// then Commit(n) (publish n bytes) or Abort(). The batch form is ReserveN,
// Slot/SetLen per slot, CommitN.
type Sender struct {
	r     *Ring
	p     producer
	entry int
	flags *uint32 // the entry's flag word (RoleSleeping)

	// SPSC state, here so that the fast path inlines: only this Sender
	// writes the tail, so it keeps the authoritative count locally and never
	// reads the tail back. headCache is the last head seen (head only grows,
	// so a stale copy is conservative; MPSC uses it too).
	tail      uint64
	headCache uint64
	// room is the capacity while an SPSC sender may take the fast path, 0
	// otherwise (other topologies, or closed): the fast path's only test is
	// tail-headCache < room.
	room   uint64
	closed bool
	// gateSince: since when a broadcast bound has not moved (a receiver or
	// writer that may have died gates this sender); zero when it moves.
	gateSince time.Time
	gateAt    uint64

	// The reservation in progress: positions [resLo, resLo+resN).
	resLo, resN uint64
}

// producer is a topology's half of a Sender.
type producer interface {
	// reserve reserves up to max (>= 1) positions into s.resLo/s.resN, or
	// returns ErrFull, ErrClosed or ErrCorrupt.
	reserve(s *Sender, max uint64) error
	// commit publishes the first k reserved positions (lengths set) and
	// gives back the rest, then wakes the receiver if it sleeps.
	commit(s *Sender, k uint64)
	// close sets the closed bit.
	close(s *Sender)
}

// NewSender takes role entry i (1..Producers) for this handle. The caller
// already holds the entry's role lock, so any previous holder is dead or
// gone, and its leftover state in the entry is reset here.
func (r *Ring) NewSender(i int, id Identity) (*Sender, error) {
	if i < 1 || i > int(r.hdr.Producers) {
		return nil, fmt.Errorf("ring: sender entry %d out of [1, %d]", i, r.hdr.Producers)
	}
	off := layout.RoleOffset(i)
	s := &Sender{r: r, entry: i, flags: word32(r.mem, off+layout.RoleFlags)}
	// A holder that died asleep left itself counted in the waiters; take
	// it out so the receiver stops paying a wake-up per release for it.
	if atomic.LoadUint32(s.flags)&layout.RoleSleeping != 0 && !r.send.oneSleeper {
		leaveCount(r.send.waiting)
	}
	atomic.StoreUint32(s.flags, 0)
	r.stampEntry(i, id)
	if r.hdr.Mode == layout.ModeBroadcast {
		// head is a statistic there, which racing senders may leave more
		// than a ring behind the tail: read the tail only, and compute
		// the bound at the first send that finds no room (0: none known).
		s.closed = atomic.LoadUint64(r.tail)&layout.ClosedBit != 0
		p := newMPSCProducer(s, off)
		p.bound = broadcastBound
		s.p = p
		r.wakeAll(&r.recv, false)
		return s, nil
	}
	h0, _, count, closed, err := r.indices()
	if err != nil {
		return nil, err
	}
	s.headCache, s.closed = h0, closed
	switch r.hdr.Mode {
	case layout.ModeSPSC:
		s.p = spscProducer{}
		s.tail = count
		if !closed {
			s.room = r.capacity
		}
		atomic.StoreUint32(r.send.waiting, 0) // the only sender is us
	default: // MPSC, work queue
		s.p = newMPSCProducer(s, off)
	}
	// A predecessor that died between publishing and waking left the
	// receiver asleep with a value to read: wake it now.
	r.wakeAll(&r.recv, false)
	return s, nil
}

// Detach marks the role entry free (informational: the lock is what counts).
func (s *Sender) Detach() { s.r.clearEntry(s.entry) }

// leaveCount takes one sleeper out of a many-sleeper count that a dead
// holder left behind, without going below zero.
func leaveCount(w *uint32) {
	for {
		n := atomic.LoadUint32(w)
		if n == 0 || atomic.CompareAndSwapUint32(w, n, n-1) {
			return
		}
	}
}

// refreshHead re-reads the receiver's head and checks it: it never goes
// back, and never passes limit (what this sender knows to be published or
// claimed).
func (s *Sender) refreshHead(limit uint64) error {
	h := atomic.LoadUint64(s.r.head) // SYNC POINT "release" (acquire half)
	if h < s.headCache || h > limit {
		return fmt.Errorf("%w: head %d outside [%d, %d]", ErrCorrupt, h, s.headCache, limit)
	}
	s.headCache = h
	return nil
}

// Fast returns the payload buffer, n bytes, of the next slot when an open
// SPSC sender's cached head shows room (no shared index is read), with
// the slot's length already set to n: the caller fills the buffer and
// calls PublishFast. Fast stores to a slot past the tail only, which the
// receiver does not read, so a caller that changes its mind leaves nothing
// behind. It inlines; when it fails, Refresh tells a stale cached head
// from a full ring.
func (s *Sender) Fast(n uint64) ([]byte, bool) {
	r := s.r
	if s.tail-s.headCache >= s.room || n > r.maxMsg {
		return nil, false
	}
	return r.sized(s.tail, n), true
}

// Refresh re-reads head when Fast found the cached head full, and reports
// whether Fast can now succeed. A head that fails its checks is left to the
// slow path, which reports it.
func (s *Sender) Refresh() bool {
	if s.room == 0 {
		return false
	}
	return s.refreshHead(s.tail) == nil && s.tail-s.headCache < s.room
}

// PublishFast commits the slot Fast returned: one release store of the
// tail and a look at the receiver's waiting word, in one call
// (publishLoad). It inlines, and reports whether the receiver may be
// asleep; the caller then calls Wake, out of line.
func (s *Sender) PublishFast() (wake bool) {
	s.tail++
	return publishLoad(s.r.tail, s.tail, s.r.recv.waiting) != 0 // SYNC POINT "publish" (release half)
}

// Wake wakes the receiver after a PublishFast that asked for it.
func (s *Sender) Wake() { s.r.wake(&s.r.recv) }

// sized stores n as the length of the slot for position pos and returns
// its payload buffer of n bytes (n <= maxMsg, checked by the caller): the
// slot computation of Fast and FixedSlot.
func (r *Ring) sized(pos, n uint64) []byte {
	off := (pos & r.mask) * r.stride
	binary.LittleEndian.PutUint32(r.data[off+layout.SlotLen:], uint32(n))
	off += layout.SlotHeaderSize
	return r.data[off : off+n : off+n]
}

// payload returns the payload buffer of the slot for position pos.
func (s *Sender) payload(pos uint64) []byte {
	sl := s.r.slot(pos)
	return sl[layout.SlotHeaderSize : layout.SlotHeaderSize+s.r.maxMsg]
}

// TryReserve returns the payload buffer of the next slot, or ErrFull,
// ErrClosed or ErrCorrupt. The buffer is valid until Commit or Abort.
func (s *Sender) TryReserve() ([]byte, error) {
	if err := s.p.reserve(s, 1); err != nil {
		return nil, err
	}
	return s.payload(s.resLo), nil
}

// Reserve is TryReserve that waits while the ring is full.
func (s *Sender) Reserve(ctx context.Context) ([]byte, error) {
	if _, err := s.ReserveN(ctx, 1); err != nil {
		return nil, err
	}
	return s.payload(s.resLo), nil
}

// TryReserveN reserves up to max (>= 1) slots and returns how many (>= 1),
// or ErrFull, ErrClosed, ErrCorrupt.
func (s *Sender) TryReserveN(n int) (int, error) {
	if err := s.p.reserve(s, uint64(max(n, 1))); err != nil {
		return 0, err
	}
	return int(s.resN), nil
}

// ReserveN is TryReserveN that waits for at least one free slot.
func (s *Sender) ReserveN(ctx context.Context, max int) (int, error) {
	n, err := s.TryReserveN(max)
	if err != ErrFull {
		return n, err
	}
	err = s.r.await(ctx, &s.r.send, s.flags, func() (readiness, error) {
		n, err = s.TryReserveN(max)
		switch err {
		case nil:
			return ready, nil
		case ErrFull:
			if !s.gateSince.IsZero() {
				return stuck, nil // a peer that may be dead gates us: look again after the stuck check
			}
			return notReady, nil
		}
		return notReady, err
	})
	if err == ErrClosed && s.r.wait == layout.WaitMQ && atomic.LoadUint32(s.r.send.waiting) != 0 {
		// A doorbell token wakes one sleeper, not all: pass the close on
		// to the next sender still asleep.
		s.r.wakeAll(&s.r.send, false)
	}
	return n, err
}

// Slot returns the payload buffer of the i-th reserved slot.
func (s *Sender) Slot(i int) []byte { return s.payload(s.resLo + uint64(i)) }

// FixedSlot returns the payload buffer, n bytes, of the i-th reserved
// slot (i below what ReserveN returned) with the slot's length set to n,
// or false if n is over MaxMsg: a batch of fixed-size values fills its
// reservation with one slot computation per value. It inlines.
func (s *Sender) FixedSlot(i int, n uint64) ([]byte, bool) {
	r := s.r
	if n > r.maxMsg {
		return nil, false
	}
	return r.sized(s.resLo+uint64(i), n), true
}

// SetLen records that the i-th reserved slot holds n bytes (n <= MaxMsg).
func (s *Sender) SetLen(i int, n int) {
	binary.LittleEndian.PutUint32(s.r.slot(s.resLo + uint64(i))[layout.SlotLen:], uint32(n))
}

// Commit publishes the single reserved slot with n bytes of payload.
func (s *Sender) Commit(n int) {
	s.SetLen(0, n)
	s.p.commit(s, 1)
}

// CommitN publishes the first k reserved slots (their lengths set with
// SetLen), with one index store (SPSC) and at most one wake-up. Reserved
// slots beyond k are given back.
func (s *Sender) CommitN(k int) { s.p.commit(s, uint64(k)) }

// Abort gives back the reservation without publishing anything.
func (s *Sender) Abort() {
	if s.resN > 0 {
		s.p.commit(s, 0)
	}
}

// Close sets the closed bit: every later send fails with ErrClosed, and the
// receiver, once it has drained what was sent before, gets ErrClosed.
func (s *Sender) Close() error {
	s.resN = 0
	s.p.close(s)
	s.closed, s.room = true, 0
	s.r.wake(&s.r.recv)
	// Senders asleep on a full ring must learn of the close too: their
	// next check sees the closed bit and returns ErrClosed.
	if atomic.LoadUint32(s.r.send.waiting) != 0 {
		s.r.wakeAll(&s.r.send, false)
	}
	return nil
}
