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
type mpscProducer struct {
	claimLo, claimHi, sent *uint64
	sentLocal              uint64
}

func newMPSCProducer(s *Sender, off int) *mpscProducer {
	r := s.r
	p := &mpscProducer{
		claimLo: word64(r.mem, off+layout.RoleClaimLo),
		claimHi: word64(r.mem, off+layout.RoleClaimHi),
		sent:    word64(r.mem, off+layout.RoleSent),
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
			h = atomic.LoadUint64(r.head) // SYNC POINT "release" (acquire half)
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
	// The position found claimed but uncommitted, and since when.
	stuckPos   uint64
	stuckSince time.Time
	// checkNow: the last position was skipped as abandoned, so the next
	// uncommitted one is checked for a live claimer at once (a dead batch
	// claim costs one stuck-check interval, not one per position).
	checkNow bool
}

func newMPSCConsumer() *mpscConsumer { return &mpscConsumer{stuckPos: ^uint64(0)} }

func (*mpscConsumer) runs() bool { return false }

func committedAt(r *Ring, pos uint64) bool {
	// SYNC POINT "commit" (acquire half).
	return atomic.LoadUint32(word32(r.slot(pos), layout.SlotSeq)) == uint32(pos+1)
}

// state reports whether the claimed slot at pos is committed. At head, a
// slot that stays uncommitted past the stuck-check interval has its writer
// looked up: if no live sender's claim covers it, the writer died between
// claim and commit, and the slot is skipped (counted as abandoned) so the
// ring keeps moving. A slow or stopped writer is alive and is waited for,
// however long it takes.
func (q *mpscConsumer) state(c *Receiver, pos uint64) (readiness, error) {
	r := c.r
	if committedAt(r, pos) {
		if pos == c.head {
			q.stuckPos, q.checkNow = ^uint64(0), false
		}
		return ready, nil
	}
	if pos != c.head {
		return notReady, nil
	}
	now := time.Now()
	if q.stuckPos != pos {
		q.stuckPos, q.stuckSince = pos, now
		if !q.checkNow {
			return stuck, nil
		}
	} else if now.Sub(q.stuckSince) < r.stuck {
		return stuck, nil
	}
	q.checkNow = false
	if r.alive == nil {
		return stuck, nil
	}
	q.stuckSince = now
	live, err := q.liveClaimer(r, pos)
	if err != nil || live {
		return stuck, err
	}
	// No live writer claims pos. Its claimer either committed meanwhile or
	// is dead; look once more.
	if committedAt(r, pos) {
		q.stuckPos = ^uint64(0)
		return ready, nil
	}
	atomic.AddUint64(r.abandoned, 1)
	publish32(word32(r.slot(pos), layout.SlotSeq), uint32(pos+1))
	q.stuckPos, q.checkNow = ^uint64(0), true
	c.advance(1)
	return skipped, nil
}

// liveClaimer reports whether a sender whose holder is alive has a claim
// covering pos.
func (q *mpscConsumer) liveClaimer(r *Ring, pos uint64) (bool, error) {
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
