package ring

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Identity is what a role entry records about its holder, for tools and for
// people: liveness itself is decided by the role lock the caller holds.
type Identity struct {
	PID   uint32
	Start uint64 // process start time, clock ticks since boot
}

// Sender is the sending side of one handle. The caller must hold the role
// lock of its entry for as long as it uses the Sender, and must not call its
// methods concurrently.
//
// A send is TryReserve/Reserve (a slot's payload buffer), then the caller
// fills it, then Commit(n) (publish n bytes) or Abort(). The batch form is
// ReserveN, Slot/SetLen per slot, CommitN.
type Sender struct {
	r     *Ring
	entry []byte // this sender's role entry (64 bytes)

	// SPSC: only this Sender writes the tail word, so it keeps the
	// authoritative count locally and never reads the tail back.
	tail      uint64 // next position to write (SPSC)
	headCache uint64 // last head seen; head only grows, so a stale copy is conservative
	closed    bool

	// The reservation in progress: positions [resLo, resLo+resN).
	resLo, resN uint64

	claimLo, claimHi, sent *uint64 // MPSC: words of the role entry
	sentLocal              uint64
	flags                  *uint32
}

// NewSender takes role entry i (1..Producers) for this handle. The caller
// already holds the entry's role lock, so any previous holder is dead or
// gone, and its leftover state in the entry is reset here.
func (r *Ring) NewSender(i int, id Identity) (*Sender, error) {
	if i < 1 || i > int(r.hdr.Producers) {
		return nil, fmt.Errorf("ring: sender entry %d out of [1, %d]", i, r.hdr.Producers)
	}
	off := layout.RoleOffset(i)
	s := &Sender{
		r:       r,
		entry:   r.mem[off : off+layout.LineSize],
		claimLo: word64(r.mem, off+layout.RoleClaimLo),
		claimHi: word64(r.mem, off+layout.RoleClaimHi),
		sent:    word64(r.mem, off+layout.RoleSent),
		flags:   word32(r.mem, off+layout.RoleFlags),
	}
	// A holder that died asleep left itself counted in the waiters; take
	// it out so the receiver stops paying a wake-up per release for it.
	if atomic.LoadUint32(s.flags)&layout.RoleSleeping != 0 {
		s.leaveWaiters()
	}
	atomic.StoreUint32(s.flags, 0)
	if !r.mpsc {
		atomic.StoreUint32(r.send.waiting, 0) // the only sender is us
	}
	r.stampEntry(i, id)
	// No claim in progress: the receiver may now skip any slot the dead
	// holder claimed and never committed.
	lo := atomic.LoadUint64(s.claimHi)
	atomic.StoreUint64(s.claimLo, lo)
	s.sentLocal = atomic.LoadUint64(s.sent)

	t := atomic.LoadUint64(r.tail)
	h := atomic.LoadUint64(r.head)
	cnt := t &^ layout.ClosedBit
	if cnt < h || cnt-h > r.capacity {
		return nil, fmt.Errorf("%w: tail %d, head %d, capacity %d", ErrCorrupt, cnt, h, r.capacity)
	}
	s.tail, s.headCache, s.closed = cnt, h, t&layout.ClosedBit != 0
	return s, nil
}

// stampEntry records the new holder of role entry i (informational; the
// role lock is what counts), counting a takeover if the entry had a holder.
func (r *Ring) stampEntry(i int, id Identity) {
	off := layout.RoleOffset(i)
	pidWord := word32(r.mem, off+layout.RolePID)
	if atomic.LoadUint32(pidWord) != 0 {
		atomic.AddUint64(word64(r.mem, off+layout.RoleTakeovers), 1)
	}
	atomic.StoreUint32(pidWord, id.PID)
	atomic.StoreUint64(word64(r.mem, off+layout.RoleStart), id.Start)
	atomic.StoreUint64(word64(r.mem, off+layout.RoleSince), uint64(time.Now().UnixNano()))
}

// Detach marks the role entry free (informational: the lock is what counts).
func (s *Sender) Detach() {
	atomic.StoreUint32(word32(s.entry, layout.RolePID), 0)
}

func (s *Sender) leaveWaiters() {
	for {
		w := atomic.LoadUint32(s.r.send.waiting)
		if w == 0 || atomic.CompareAndSwapUint32(s.r.send.waiting, w, w-1) {
			return
		}
	}
}

// refreshHead re-reads the receiver's head and checks it: it never goes
// back, and never passes what this sender published.
func (s *Sender) refreshHead() error {
	h := atomic.LoadUint64(s.r.head)
	if h < s.headCache || h > s.tail {
		return fmt.Errorf("%w: head %d outside [%d, %d]", ErrCorrupt, h, s.headCache, s.tail)
	}
	s.headCache = h
	return nil
}

// free returns how many slots the SPSC sender may write now.
func (s *Sender) free() (uint64, error) {
	if s.closed {
		return 0, ErrClosed
	}
	f := s.r.capacity - (s.tail - s.headCache)
	if f == 0 {
		if err := s.refreshHead(); err != nil {
			return 0, err
		}
		f = s.r.capacity - (s.tail - s.headCache)
	}
	return f, nil
}

// payload returns the payload buffer of the slot for position pos.
func (s *Sender) payload(pos uint64) []byte {
	sl := s.r.slot(pos)
	return sl[layout.SlotHeaderSize : layout.SlotHeaderSize+s.r.maxMsg]
}

// TryReserve returns the payload buffer of the next slot, or ErrFull,
// ErrClosed or ErrCorrupt. The buffer is valid until Commit or Abort.
func (s *Sender) TryReserve() ([]byte, error) {
	if !s.r.mpsc && !s.closed && s.tail-s.headCache < s.r.capacity { // SPSC fast path: room by the cached head
		s.resLo, s.resN = s.tail, 1
		return s.payload(s.tail), nil
	}
	if _, err := s.TryReserveN(1); err != nil {
		return nil, err
	}
	return s.payload(s.resLo), nil
}

// Reserve is TryReserve that waits while the ring is full.
func (s *Sender) Reserve(ctx context.Context) ([]byte, error) {
	if !s.r.mpsc && !s.closed && s.tail-s.headCache < s.r.capacity {
		s.resLo, s.resN = s.tail, 1
		return s.payload(s.tail), nil
	}
	if _, err := s.ReserveN(ctx, 1); err != nil {
		return nil, err
	}
	return s.payload(s.resLo), nil
}

// TryReserveN reserves up to max (>= 1) slots and returns how many (>= 1),
// or ErrFull, ErrClosed, ErrCorrupt.
func (s *Sender) TryReserveN(max int) (int, error) {
	if max < 1 {
		max = 1
	}
	if s.r.mpsc {
		return s.claim(uint64(max))
	}
	f, err := s.free()
	if err != nil {
		return 0, err
	}
	if f == 0 {
		return 0, ErrFull
	}
	s.resLo, s.resN = s.tail, min(f, uint64(max))
	return int(s.resN), nil
}

// ReserveN is TryReserveN that waits for at least one free slot.
func (s *Sender) ReserveN(ctx context.Context, max int) (int, error) {
	n, err := s.TryReserveN(max)
	if err != ErrFull {
		return n, err
	}
	err = s.r.block(ctx, &s.r.send, s.flags, func() (readiness, error) {
		n, err = s.TryReserveN(max)
		switch err {
		case nil:
			return ready, nil
		case ErrFull:
			return notReady, nil
		}
		return notReady, err
	})
	if err == ErrClosed && s.r.wait == layout.WaitMQ && atomic.LoadUint32(s.r.send.waiting) != 0 {
		// A doorbell token wakes one sleeper, not all: pass the close on
		// to the next sender still asleep.
		s.r.ring(&s.r.send, nil)
	}
	return n, err
}

// Slot returns the payload buffer of the i-th reserved slot.
func (s *Sender) Slot(i int) []byte { return s.payload(s.resLo + uint64(i)) }

// SetLen records that the i-th reserved slot holds n bytes (n <= MaxMsg).
func (s *Sender) SetLen(i int, n int) {
	binary.LittleEndian.PutUint32(s.r.slot(s.resLo + uint64(i))[layout.SlotLen:], uint32(n))
}

// Commit publishes the single reserved slot with n bytes of payload.
func (s *Sender) Commit(n int) {
	if s.r.mpsc {
		s.SetLen(0, n)
		s.commitMPSC(1)
		return
	}
	binary.LittleEndian.PutUint32(s.r.slot(s.tail)[layout.SlotLen:], uint32(n))
	s.tail++
	s.resN = 0
	publish64(s.r.tail, s.tail)
	s.r.wakeReceiver()
}

// CommitN publishes the first k reserved slots (their lengths set with
// SetLen), with one index store and at most one wake-up. Reserved slots
// beyond k are aborted.
//
// SPSC ordering: the payloads and lengths are plain stores; the tail store
// that follows is a release store (publish64), so a receiver that loads the
// tail with acquire semantics sees every byte of each slot before the tail.
func (s *Sender) CommitN(k int) {
	if s.r.mpsc {
		s.commitMPSC(uint64(k))
		return
	}
	s.tail += uint64(k)
	s.resN = 0
	publish64(s.r.tail, s.tail)
	s.r.wakeReceiver()
}

// Abort gives back the reservation without publishing anything. In MPSC
// the claimed slots are already counted in the tail, so they are committed
// as skip markers the receiver passes over.
func (s *Sender) Abort() {
	if s.r.mpsc && s.resN > 0 {
		for i := uint64(0); i < s.resN; i++ {
			binary.LittleEndian.PutUint32(s.r.slot(s.resLo + i)[layout.SlotLen:], layout.SlotSkip)
		}
		s.commitMPSC(0)
		return
	}
	s.resN = 0
}

// Close sets the closed bit: every later send fails with ErrClosed, and the
// receiver, once it has drained what was sent before, gets ErrClosed.
func (s *Sender) Close() error {
	s.resN = 0
	if s.r.mpsc {
		for {
			t := atomic.LoadUint64(s.r.tail)
			if t&layout.ClosedBit != 0 || atomic.CompareAndSwapUint64(s.r.tail, t, t|layout.ClosedBit) {
				break
			}
		}
	} else if !s.closed {
		atomic.StoreUint64(s.r.tail, s.tail|layout.ClosedBit)
	}
	s.closed = true
	s.r.wakeReceiver()
	// Senders asleep on a full ring must learn of the close too: their
	// next check sees the closed bit and returns ErrClosed.
	if atomic.LoadUint32(s.r.send.waiting) != 0 {
		s.r.ring(&s.r.send, nil)
	}
	return nil
}

// claim is the MPSC reservation: record the intended claim [t, t+k) in this
// sender's role entry, then CAS the tail from t to t+k. The claim is written
// before the CAS (a full barrier on every architecture), so a receiver that
// observes the tail past a slot also observes the claim of whoever took it,
// until that claimer commits: this is how it tells a dead writer's slot.
func (s *Sender) claim(max uint64) (int, error) {
	r := s.r
	claimed := uint64(0) // hi of a claim recorded by a failed CAS, 0: none
	for try := 0; try < 1<<20; try++ {
		t := atomic.LoadUint64(r.tail)
		if t&layout.ClosedBit != 0 {
			s.unclaim(claimed)
			return 0, ErrClosed
		}
		h := s.headCache
		if t < h || t-h >= r.capacity {
			h = atomic.LoadUint64(r.head)
			if h > t {
				continue // the tail moved on since we read it
			}
			if t-h > r.capacity {
				s.unclaim(claimed)
				return 0, fmt.Errorf("%w: tail %d is more than %d past head %d", ErrCorrupt, t, r.capacity, h)
			}
			s.headCache = h
			if t-h == r.capacity {
				s.unclaim(claimed)
				return 0, ErrFull
			}
		}
		k := min(max, r.capacity-(t-h))
		publish64(s.claimHi, t+k)
		publish64(s.claimLo, t)
		claimed = t + k
		if atomic.CompareAndSwapUint64(r.tail, t, t+k) {
			s.resLo, s.resN = t, k
			return int(k), nil
		}
	}
	s.unclaim(claimed)
	return 0, fmt.Errorf("%w: tail and head never consistent", ErrCorrupt)
}

// unclaim withdraws a claim recorded for a CAS that failed, so that a live
// sender that gave up (full, closed) does not keep covering positions that
// another sender won: the receiver must be able to skip those if their
// winner dies.
func (s *Sender) unclaim(hi uint64) {
	if hi != 0 {
		publish64(s.claimLo, hi)
	}
}

// commitMPSC commits the first k reserved slots (lengths already set) and
// marks the rest skipped, then clears the claim. Each slot's seq store is a
// release store after its payload, so the receiver, which loads seq with
// acquire semantics, sees the whole value.
func (s *Sender) commitMPSC(k uint64) {
	for i := k; i < s.resN; i++ {
		binary.LittleEndian.PutUint32(s.r.slot(s.resLo + i)[layout.SlotLen:], layout.SlotSkip)
	}
	for i := uint64(0); i < s.resN; i++ {
		pos := s.resLo + i
		publish32(word32(s.r.slot(pos), layout.SlotSeq), uint32(pos+1))
	}
	s.sentLocal += k
	publish64(s.sent, s.sentLocal)
	publish64(s.claimLo, s.resLo+s.resN)
	s.resN = 0
	s.r.wakeReceiver()
}
