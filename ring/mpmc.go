package ring

import (
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Work queue (layout.ModeWorkQueue): senders, and receivers that compete,
// like goroutines receiving from one chan: each committed value is returned
// by exactly one receive.
//
// Senders claim and commit positions as in MPSC; their bound is the head
// word. Receivers hand positions out among themselves with a second index,
// claim_head, exactly as senders do with the tail: a receiver records the
// claim [p, p+1) in its consumer entry, then CASes claim_head from p to p+1
// (a live winner always has a recorded claim covering p).
//
// A receiver that holds p waits for the slot's seq to be uint32(p+1)
// (committed), reads the value, and consumes it: it stores the slot's seq =
// consumed(p) = uint32(p+1) with bit 31 flipped (SYNC POINT "consume",
// release half), withdraws its claim, and moves the head word over every
// consumed position at head (a CAS per position; receivers finish out of
// order, and whoever finds the position at head consumed moves head on,
// including a receiver that finds nothing left to claim: the one that
// marked it may have died before moving head).
// Senders claim p+capacity only once head > p, so a slot is rewritten only
// after its value was consumed. Positions in one slot within two laps
// never share a seq or a consumed mark, because the capacity is at most
// 2^29 (layout.MaxWorkQueueCapacity).
//
// Crashes:
//   - a sender that dies between claim and commit: the receiver holding the
//     position finds no live sender claiming it (as in MPSC) and consumes it
//     as abandoned;
//   - a receiver that dies holding a position: it had not returned the
//     value. When nothing new is left to claim and head lags claim_head,
//     a receiver looks (every stuck check) for positions in [head,
//     claim_head) that are not consumed and that no live receiver's claim
//     covers, and takes one over (rescue). Rescues are serialised by an OFD
//     lock (Config.Rescue), so two rescuers never take one position; the
//     rescuer records its own claim before it withdraws the dead ones;
//   - a process taking over a dead receiver's entry resumes that entry's
//     claim if it is still pending, under the same lock; while another
//     process holds the lock it leaves the claim recorded (its entry is
//     live now, so rescuers leave it alone) and settles it at its next
//     receive.
//
// CloseSend: a receiver gets ErrClosed once the tail is closed and head has
// reached it: every value sent has been consumed, by someone.

// wqConsumed is the seq a consumed work-queue slot holds for position p.
func wqConsumed(p uint64) uint32 { return uint32(p+1) ^ 1<<31 }

// wqConsumer is a work-queue receiver's half: c.head is the position it
// holds while holding.
type wqConsumer struct {
	entry            int
	claimLo, claimHi *uint64
	received         *uint64
	claimHead        *uint64
	holding          bool
	pending          bool // a dead predecessor's claim is still to be settled
	writer           writerCheck
	lastRescue       time.Time
}

func newWQConsumer(c *Receiver, i int) *wqConsumer {
	r := c.r
	off := layout.RoleOffset(i)
	q := &wqConsumer{
		entry:     i,
		claimLo:   word64(r.mem, off+layout.RoleClaimLo),
		claimHi:   word64(r.mem, off+layout.RoleClaimHi),
		received:  word64(r.mem, off+layout.RoleSent),
		claimHead: word64(r.mem, layout.OffClaimHead),
		writer:    newWriterCheck(),
	}
	q.pending = true
	q.settle(c) //nolint:errcheck // an error leaves the claim pending: peek settles it and reports
	return q
}

// settle decides what becomes of the claim a dead predecessor left in this
// entry: resumed if it is still pending (see unheld), else withdrawn. It
// runs under the rescue lock, which keeps it apart from rescuers. If
// another process holds the lock (or taking it fails), the claim stays
// recorded and q.pending stays set, and the next peek tries again:
// withdrawing it unsettled would lose the value for good (nobody rescues
// a withdrawn claim, so head would never pass it), and rescuers leave it
// alone meanwhile, since this entry's holder is alive. Without a rescue
// lock there are no rescuers to race.
func (q *wqConsumer) settle(c *Receiver) error {
	r := c.r
	if r.rescue != nil {
		unlock, ok, err := r.rescue()
		if err != nil || !ok {
			return err
		}
		defer unlock()
	}
	lo, hi := atomic.LoadUint64(q.claimLo), atomic.LoadUint64(q.claimHi)
	if hi == lo+1 && lo < atomic.LoadUint64(q.claimHead) {
		free, err := q.unheld(r, lo)
		if err != nil {
			return err
		}
		if free {
			q.pending, q.holding, c.head = false, true, lo
			return nil
		}
	}
	atomic.StoreUint64(q.claimLo, hi)
	q.pending = false
	return nil
}

func (*wqConsumer) ahead() bool                                { return false }
func (*wqConsumer) state(*Receiver, uint64) (readiness, error) { return notReady, nil }
func (*wqConsumer) detach(*Receiver)                           {}

func (q *wqConsumer) consumed(r *Ring, p uint64) bool {
	return atomic.LoadUint32(word32(r.slot(p), layout.SlotSeq)) == wqConsumed(p)
}

// lock takes the rescue lock; ok false if another process holds it (or the
// caller gave none: no rescues then).
func (q *wqConsumer) lock(r *Ring) (func(), bool) {
	if r.rescue == nil {
		return nil, false
	}
	unlock, ok, err := r.rescue()
	if err != nil || !ok {
		return nil, false
	}
	return unlock, true
}

func (q *wqConsumer) peek(c *Receiver) ([]byte, readiness, error) {
	r := c.r
	for {
		if q.pending {
			if err := q.settle(c); err != nil || q.pending {
				return nil, stuck, errOr(err, ErrEmpty)
			}
		}
		if !q.holding {
			st, err := q.claim(c)
			if err != nil || !q.holding {
				return nil, st, err
			}
		}
		pos := c.head
		if !committedAt(r, pos) {
			dead, err := q.writer.dead(r, pos)
			if err != nil || !dead {
				return nil, stuck, errOr(err, ErrEmpty)
			}
			atomic.AddUint64(r.abandoned, 1)
			q.consume(c, false)
			continue
		}
		q.writer.reset()
		b, n, err := c.payloadAt(pos)
		if err != nil {
			q.consume(c, false) // do not wedge on it
			return nil, notReady, err
		}
		if n == layout.SlotSkip {
			q.consume(c, false)
			continue
		}
		return b, ready, nil
	}
}

// claim takes the next position, or a dead receiver's, and sets holding.
// Without one it returns the readiness to wait with and ErrEmpty or
// ErrClosed.
func (q *wqConsumer) claim(c *Receiver) (readiness, error) {
	r := c.r
	for try := 0; try < 1<<20; try++ {
		// head, claim_head, tail, head again: head <= claim_head <=
		// count(tail) at every instant and each only grows, so a later load
		// is never below an earlier one's value (h0 <= ch <= cnt); and
		// cnt <= head + capacity held when the tail was read, so cnt <= h +
		// capacity for the head read after it. Anything else is a peer's
		// doing.
		h0 := atomic.LoadUint64(r.head)
		ch := atomic.LoadUint64(q.claimHead)
		t := atomic.LoadUint64(r.tail) // SYNC POINT "publish" (acquire half)
		h := atomic.LoadUint64(r.head)
		cnt := t &^ layout.ClosedBit
		if ch < h0 || ch > cnt || h < h0 || cnt > h+r.capacity {
			return notReady, corruptf("head %d then %d, claim head %d, tail %d, capacity %d", h0, h, ch, cnt, r.capacity)
		}
		c.tailCache, c.closed = cnt, t&layout.ClosedBit != 0
		if ch == cnt {
			if h == cnt {
				return notReady, c.emptyErr() // everything sent was consumed
			}
			// A receiver that died between marking the value at head
			// consumed and moving head on leaves head behind a consumed
			// run that nobody else's consume may ever move (no values
			// left to consume): move it.
			if q.advance(r) {
				r.wake(&r.send)
				continue
			}
			// Others hold values. If one of them died, take its value over.
			if q.rescue(c, min(h, ch), ch) {
				return ready, nil
			}
			return stuck, ErrEmpty
		}
		atomic.StoreUint64(q.claimHi, ch+1)
		atomic.StoreUint64(q.claimLo, ch)
		if atomic.CompareAndSwapUint64(q.claimHead, ch, ch+1) {
			q.holding, c.head = true, ch
			return ready, nil
		}
		atomic.StoreUint64(q.claimLo, ch+1) // lost: withdraw
	}
	return notReady, corruptf("claim head never settles")
}

// rescue looks, at most once per stuck check, for a position in [h, ch)
// that is not consumed and that no live receiver claims, and takes it.
func (q *wqConsumer) rescue(c *Receiver, h, ch uint64) bool {
	r := c.r
	now := time.Now()
	if now.Sub(q.lastRescue) < r.stuck || r.alive == nil {
		return false
	}
	q.lastRescue = now
	unlock, ok := q.lock(r)
	if !ok {
		return false
	}
	defer unlock()
	for k := 0; k < int(r.hdr.Consumers); k++ {
		i := r.hdr.ConsumerEntry(k)
		if i == q.entry {
			continue
		}
		off := layout.RoleOffset(i)
		lo := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimLo))
		hi := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimHi))
		if hi != lo+1 || lo < h || lo >= ch {
			continue
		}
		if free, err := q.unheld(r, lo); err != nil || !free {
			continue
		}
		// Ours now: record our claim, then withdraw the dead ones.
		atomic.StoreUint64(q.claimHi, lo+1)
		atomic.StoreUint64(q.claimLo, lo)
		for k2 := 0; k2 < int(r.hdr.Consumers); k2++ {
			i2 := r.hdr.ConsumerEntry(k2)
			if i2 == q.entry {
				continue
			}
			off2 := layout.RoleOffset(i2)
			if atomic.LoadUint64(word64(r.mem, off2+layout.RoleClaimLo)) == lo {
				atomic.StoreUint64(word64(r.mem, off2+layout.RoleClaimLo), atomic.LoadUint64(word64(r.mem, off2+layout.RoleClaimHi)))
			}
		}
		q.holding, c.head = true, lo
		return true
	}
	return false
}

// unheld reports whether position p, recorded in a dead receiver's claim,
// is still pending and no live receiver (other than this one) claims it:
// whether it may be taken over. A dead receiver's claim may be stale: it
// records its claim before its claim CAS, so one that died between the two,
// or after losing the CAS, claims a position another receiver won. The
// head and the consumed mark are read after the claims, because a live
// holder marks the position consumed (and head passes it only after that)
// before it withdraws its claim: a position whose live claim we missed is
// seen consumed. The caller holds the rescue lock.
func (q *wqConsumer) unheld(r *Ring, p uint64) (bool, error) {
	if live, err := q.liveClaim(r, p); err != nil || live {
		return false, err
	}
	return atomic.LoadUint64(r.head) <= p && !q.consumed(r, p), nil
}

// liveClaim reports whether a live receiver (other than this one) has a
// claim covering p.
func (q *wqConsumer) liveClaim(r *Ring, p uint64) (bool, error) {
	for k := 0; k < int(r.hdr.Consumers); k++ {
		i := r.hdr.ConsumerEntry(k)
		if i == q.entry {
			continue
		}
		off := layout.RoleOffset(i)
		lo := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimLo))
		hi := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimHi))
		if p < lo || p >= hi {
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

func (q *wqConsumer) release(c *Receiver, k uint64) {
	if k > 0 && q.holding {
		q.consume(c, true)
	}
}

// consume marks the held position consumed, withdraws the claim, moves
// head over the consumed run at head, and wakes senders.
func (q *wqConsumer) consume(c *Receiver, got bool) {
	r := c.r
	p := c.head
	atomic.StoreUint32(word32(r.slot(p), layout.SlotSeq), wqConsumed(p)) // SYNC POINT "consume" (release half)
	atomic.StoreUint64(q.claimLo, atomic.LoadUint64(q.claimHi))
	q.holding = false
	if got {
		atomic.AddUint64(q.received, 1)
	}
	q.advance(r)
	r.wake(&r.send)
}

// advance moves head over the consumed run at head (at most a ring's
// worth), and reports whether it saw head move.
func (q *wqConsumer) advance(r *Ring) bool {
	moved := false
	for n := uint64(0); n <= r.capacity; n++ {
		h := atomic.LoadUint64(r.head)
		if h >= atomic.LoadUint64(q.claimHead) || !q.consumed(r, h) { // SYNC POINT "consume" (acquire half)
			break
		}
		atomic.CompareAndSwapUint64(r.head, h, h+1)
		moved = true
	}
	return moved
}
