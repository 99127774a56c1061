package ring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// MPSC (layout.ModeMPSC): many senders, one receiver.
//
// Producers claim positions with a CAS on the tail; each slot is committed
// on its own, by a release store of its seq word = uint32(p+1) after the
// payload and length (SYNC POINT "commit"), which the receiver loads with
// acquire before reading the slot. Because claims and commits are separate,
// a producer that dies in between leaves a claimed, uncommitted slot: the
// receiver skips it only once no live producer's recorded claim covers it.
//
// Why the skip rule is safe:
//   - a producer records its claim [lo, hi) in its role entry before its CAS
//     (the CAS is a full barrier), so whoever won position h recorded a claim
//     covering h before winning it, and keeps it until it has committed:
//     while the winner lives, a live claim covers h;
//   - a producer whose CAS lost withdraws its claim when it gives up (ring
//     full, closed), so a live loser does not keep a dead winner's slot from
//     being skipped;
//   - a process taking over a dead producer's entry clears the dead
//     holder's claim;
//   - the receiver re-checks seq after finding no live claim, because a
//     producer commits before clearing its claim.
// When the receiver skips position p it stores p's seq itself (as if
// committed) before it moves head, so a slot's seq is never more than one
// lap stale and can never match a later lap by wrapping around 2^32.

// mpscProducer is MPSC's sending half: the claim words of its role entry.
// The work queue and broadcast use it too, with another bound.
type mpscProducer struct {
	claimLo, claimHi, sent *uint64
	sentLocal              uint64
	// bound returns the lowest position a sender must not lap, for a tail
	// count t read just before: MPSC and work queue, the head word;
	// broadcast, the slowest receiver or writer (see broadcast.go).
	bound func(s *Sender, t uint64) (uint64, error)
}

func newMPSCProducer(s *Sender, off int) *mpscProducer {
	r := s.r
	p := &mpscProducer{
		claimLo: word64(r.mem, off+layout.RoleClaimLo),
		claimHi: word64(r.mem, off+layout.RoleClaimHi),
		sent:    word64(r.mem, off+layout.RoleSent),
		bound:   headBound,
	}
	// No claim in progress: the receiver may now skip any slot the dead
	// holder claimed and never committed.
	atomic.StoreUint64(p.claimLo, atomic.LoadUint64(p.claimHi))
	p.sentLocal = atomic.LoadUint64(p.sent)
	return p
}

// reserve records the intended claim [t, t+k) in the role entry, then CASes
// the tail from t to t+k.
func (p *mpscProducer) reserve(s *Sender, max uint64) error {
	r := s.r
	claimed := uint64(0) // hi of a claim recorded by a failed CAS, 0: none
	for try := 0; try < 1<<20; try++ {
		t := atomic.LoadUint64(r.tail)
		if t&layout.ClosedBit != 0 {
			p.unclaim(claimed)
			return ErrClosed
		}
		h := s.headCache
		if t < h || t-h >= r.capacity {
			var err error
			if h, err = p.bound(s, t); err != nil {
				p.unclaim(claimed)
				return err
			}
			if h > t {
				continue // the tail moved on since we read it
			}
			if t-h > r.capacity {
				p.unclaim(claimed)
				return fmt.Errorf("%w: tail %d is more than %d past head %d", ErrCorrupt, t, r.capacity, h)
			}
			s.headCache = h
			if t-h == r.capacity {
				p.unclaim(claimed)
				return ErrFull
			}
		}
		k := min(max, r.capacity-(t-h))
		publish64(p.claimHi, t+k)
		publish64(p.claimLo, t)
		claimed = t + k
		if atomic.CompareAndSwapUint64(r.tail, t, t+k) {
			s.resLo, s.resN = t, k
			return nil
		}
	}
	p.unclaim(claimed)
	return fmt.Errorf("%w: tail and head never consistent", ErrCorrupt)
}

// headBound is the MPSC and work-queue bound: the head word.
func headBound(s *Sender, _ uint64) (uint64, error) {
	return atomic.LoadUint64(s.r.head), nil // SYNC POINT "release" (acquire half)
}

// unclaim withdraws a claim recorded for a CAS that failed.
func (p *mpscProducer) unclaim(hi uint64) {
	if hi != 0 {
		publish64(p.claimLo, hi)
	}
}

// commit commits the first k reserved slots (lengths already set), marks
// the rest skipped, then clears the claim.
func (p *mpscProducer) commit(s *Sender, k uint64) {
	r := s.r
	for i := k; i < s.resN; i++ {
		binary.LittleEndian.PutUint32(r.slot(s.resLo + i)[layout.SlotLen:], layout.SlotSkip)
	}
	for i := uint64(0); i < s.resN; i++ {
		pos := s.resLo + i
		publish32(word32(r.slot(pos), layout.SlotSeq), uint32(pos+1)) // SYNC POINT "commit" (release half)
	}
	p.sentLocal += k
	publish64(p.sent, p.sentLocal)
	publish64(p.claimLo, s.resLo+s.resN)
	s.resN = 0
	r.wake(&r.recv)
}

func (p *mpscProducer) close(s *Sender) {
	for {
		t := atomic.LoadUint64(s.r.tail)
		if t&layout.ClosedBit != 0 || atomic.CompareAndSwapUint64(s.r.tail, t, t|layout.ClosedBit) {
			return
		}
	}
}

// mpscConsumer is MPSC's receiving half: it decides, position by position,
// whether a claimed slot is committed, and skips the slots of dead writers.
type mpscConsumer struct {
	writer writerCheck
}

func newMPSCConsumer() *mpscConsumer { return &mpscConsumer{writer: newWriterCheck()} }

func (*mpscConsumer) ahead() bool                                   { return true }
func (*mpscConsumer) detach(*Receiver)                              {}
func (q *mpscConsumer) peek(c *Receiver) ([]byte, readiness, error) { return headPeek(c, q.state) }
func (*mpscConsumer) release(c *Receiver, k uint64)                 { headRelease(c, k) }

func committedAt(r *Ring, pos uint64) bool {
	// SYNC POINT "commit" (acquire half).
	return atomic.LoadUint32(word32(r.slot(pos), layout.SlotSeq)) == uint32(pos+1)
}

// state reports whether the claimed slot at pos is committed. At head, a
// slot whose writer is found dead is skipped (counted as abandoned) so the
// ring keeps moving; the receiver stores its seq first (see the top of
// this file).
func (q *mpscConsumer) state(c *Receiver, pos uint64) (readiness, error) {
	r := c.r
	if committedAt(r, pos) {
		if pos == c.head {
			q.writer.reset()
		}
		return ready, nil
	}
	if pos != c.head {
		return notReady, nil
	}
	dead, err := q.writer.dead(r, pos)
	if err != nil || !dead {
		return stuck, err
	}
	atomic.AddUint64(r.abandoned, 1)
	publish32(word32(r.slot(pos), layout.SlotSeq), uint32(pos+1))
	headRelease(c, 1)
	return skipped, nil
}

// writerCheck is how a receiver decides that a claimed, uncommitted
// position's writer died: after it has waited StuckCheck on the position
// (or at once, on the position right after one it found abandoned: a dead
// batch claim costs one interval, not one per position), it looks for a
// live sender whose recorded claim covers the position. A slow or stopped
// writer is alive and is waited for, however long it takes.
type writerCheck struct {
	pos      uint64 // the position found claimed but uncommitted
	since    time.Time
	checkNow bool // the last position was abandoned: check the next at once
}

func newWriterCheck() writerCheck { return writerCheck{pos: ^uint64(0)} }

// reset: the position at hand is committed.
func (w *writerCheck) reset() { w.pos, w.checkNow = ^uint64(0), false }

// dead reports whether no live writer claims pos, which is still
// uncommitted after a last look. It is false until the wait is over.
func (w *writerCheck) dead(r *Ring, pos uint64) (bool, error) {
	now := time.Now()
	if w.pos != pos {
		w.pos, w.since = pos, now
		if !w.checkNow {
			return false, nil
		}
	} else if now.Sub(w.since) < r.stuck {
		return false, nil
	}
	w.checkNow = false
	if r.alive == nil {
		return false, nil
	}
	w.since = now
	live, err := liveClaimer(r, pos)
	if err != nil || live {
		return false, err
	}
	// No live writer claims pos. Its claimer either committed meanwhile or
	// is dead; look once more.
	if committedAt(r, pos) {
		w.reset()
		return false, nil
	}
	w.pos, w.checkNow = ^uint64(0), true
	return true, nil
}

// liveClaimer reports whether a sender whose holder is alive has a claim
// covering pos.
func liveClaimer(r *Ring, pos uint64) (bool, error) {
	for i := 1; i <= int(r.hdr.Producers); i++ {
		off := layout.RoleOffset(i)
		lo := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimLo))
		hi := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimHi))
		if pos < lo || pos >= hi {
			continue
		}
		alive, err := r.alive(i)
		if err != nil {
			return false, err
		}
		if alive {
			return true, nil
		}
	}
	return false, nil
}
