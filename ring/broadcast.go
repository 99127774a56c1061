package ring

import (
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Broadcast (layout.ModeBroadcast): senders, and receivers that each see
// every value sent after they joined.
//
// Senders claim and commit positions as in MPSC (claims recorded in their
// entries, a CAS on the tail, a release store of each slot's seq). A
// receiver keeps its own cursor, the next position it reads, in its
// consumer entry; nobody consumes a slot for anyone else, and the head word
// is only a statistic (the lowest bound a sender computed).
//
// Joining: the receiver takes a consumer entry, sets its cursor to the tail
// count it reads, then sets RoleJoined. A sender that computed its bound
// before seeing the new cursor can only claim up to (an older bound) +
// capacity <= cursor + capacity, so it never overwrites a position at or
// after the joiner's cursor: a joiner needs no handshake.
//
// Senders' bound (broadcastBound), the lowest position a sender must not
// lap:
//   - the claims in progress of the other senders (both policies): two
//     senders must never write one slot for two laps at once. A recorded
//     lo more than a ring behind the tail is none (see broadcastBound);
//   - WaitForSlowest: the cursors of the joined receivers.
//
// A bound that stays put past the stuck check while it gates a sender has
// its holder's liveness checked: a dead receiver's RoleJoined is cleared
// (it stops gating), a dead sender's claim is withdrawn.
//
// DropOldest: senders never wait for receivers. A receiver at cursor c
// whose tail count t is more than capacity past c has lost values: it gets
// one *LagError{Missed: (t-capacity)-c} and goes on at t-capacity, the
// oldest position that can still be intact. It copies each payload out of
// the slot and then re-reads the tail: if a sender has claimed the slot's
// next lap meanwhile (t > c+capacity), the copy may be torn and is thrown
// away (the next peek reports the lag). A claim is made before the slot is
// written, so a tail at most c+capacity after the copy proves that nobody
// wrote the slot during it.

// broadcastBound is the senders' bound (see above); t is the tail count.
func broadcastBound(s *Sender, t uint64) (uint64, error) {
	r := s.r
	for round := 0; round < 2; round++ {
		h, gate := t, -1
		for i := 1; i <= int(r.hdr.Producers); i++ {
			if i == s.entry {
				continue
			}
			off := layout.RoleOffset(i)
			lo := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimLo))
			hi := atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimHi))
			// A claim that won its CAS is never more than a ring behind
			// the tail (it gates the others); a lo further behind is a
			// sender between the two stores of its next claim (the new hi,
			// its last claim's end as lo) or a claim that can no longer
			// win: not a bound.
			if hi > lo && lo < h && t-lo <= r.capacity {
				h, gate = lo, i
			}
		}
		if r.hdr.Overflow == layout.OverflowWait {
			for k := 0; k < int(r.hdr.Consumers); k++ {
				i := r.hdr.ConsumerEntry(k)
				off := layout.RoleOffset(i)
				if atomic.LoadUint32(word32(r.mem, off+layout.RoleFlags))&layout.RoleJoined == 0 {
					continue
				}
				if c := atomic.LoadUint64(word64(r.mem, off+layout.RoleCursor)); c < h {
					h, gate = c, i
				}
			}
		}
		if t-h < r.capacity || gate < 0 {
			s.gateSince = time.Time{}
			raiseHead(r, h)
			return h, nil
		}
		if t-h > r.capacity {
			// A cursor more than a ring behind is not corruption: a
			// receiver between the two cursor stores of its join (see
			// newBcastConsumer). Wait as if full.
			h = t - r.capacity
		}
		// h gates this sender. If it has not moved for a stuck check, ask
		// whether its holder lives.
		now := time.Now()
		if s.gateSince.IsZero() || s.gateAt != h {
			s.gateSince, s.gateAt = now, h
			return h, nil
		}
		if now.Sub(s.gateSince) < r.stuck || r.alive == nil {
			return h, nil
		}
		s.gateSince = now
		alive, err := r.alive(gate)
		if err != nil || alive {
			return h, err
		}
		off := layout.RoleOffset(gate)
		if gate <= int(r.hdr.Producers) {
			// A dead sender's claim: withdraw it; receivers skip its slots.
			atomic.StoreUint64(word64(r.mem, off+layout.RoleClaimLo), atomic.LoadUint64(word64(r.mem, off+layout.RoleClaimHi)))
		} else {
			clearFlag(word32(r.mem, off+layout.RoleFlags), layout.RoleJoined)
		}
		s.gateSince = time.Time{}
	}
	return t - r.capacity, nil
}

// raiseHead moves the head word up to h (statistics: the lowest bound a
// sender saw). One attempt: a lost race means someone raised it.
func raiseHead(r *Ring, h uint64) {
	if old := atomic.LoadUint64(r.head); old < h {
		atomic.CompareAndSwapUint64(r.head, old, h)
	}
}

func clearFlag(w *uint32, f uint32) {
	for {
		old := atomic.LoadUint32(w)
		if old&f == 0 || atomic.CompareAndSwapUint32(w, old, old&^f) {
			return
		}
	}
}

// bcastConsumer is a broadcast receiver's half: its cursor is c.head,
// published in its entry.
type bcastConsumer struct {
	cursor, received *uint64
	flags            *uint32
	drop             bool
	writer           writerCheck
	stable           []byte // DropOldest: the private copy a peek returns
	fence            uint64 // a private word for the copy's full barrier
}

func newBcastConsumer(c *Receiver, off int) *bcastConsumer {
	r := c.r
	q := &bcastConsumer{
		cursor:   word64(r.mem, off+layout.RoleCursor),
		received: word64(r.mem, off+layout.RoleSent),
		flags:    word32(r.mem, off+layout.RoleFlags),
		drop:     r.hdr.Overflow == layout.OverflowDrop,
		writer:   newWriterCheck(),
	}
	if q.drop {
		q.stable = alignedBytes(int(r.maxMsg)) // for in-place views of raw values
	}
	// Join: the cursor first, then the flag that makes senders read it,
	// then the tail again. A sender that computed its bound without seeing
	// the flag read its tail before this second load, so it never
	// overwrites a position at or after it; every later sender is gated by
	// the cursor. (After the first load alone, a bound computed before the
	// flag can be past the cursor: the receiver would start lapped.)
	t := atomic.LoadUint64(r.tail)
	atomic.StoreUint64(q.cursor, t&^layout.ClosedBit)
	atomic.StoreUint64(word64(r.mem, off+layout.RoleClaimHi), 0)
	atomic.StoreUint32(q.flags, layout.RoleJoined)
	if t2 := atomic.LoadUint64(r.tail); t2 != t {
		t = t2
		atomic.StoreUint64(q.cursor, t&^layout.ClosedBit)
	}
	c.head, c.tailCache, c.closed = t&^layout.ClosedBit, t&^layout.ClosedBit, t&layout.ClosedBit != 0
	return q
}

func (*bcastConsumer) ahead() bool                                { return false }
func (*bcastConsumer) state(*Receiver, uint64) (readiness, error) { return notReady, nil }

func (q *bcastConsumer) detach(*Receiver) { clearFlag(q.flags, layout.RoleJoined) }

func (q *bcastConsumer) release(c *Receiver, k uint64) {
	c.head += k
	atomic.StoreUint64(q.cursor, c.head) // SYNC POINT "release" (release half): senders read cursors
	atomic.AddUint64(q.received, k)
	if !q.drop {
		c.r.wake(&c.r.send)
	}
}

func (q *bcastConsumer) peek(c *Receiver) ([]byte, readiness, error) {
	r := c.r
	for {
		pos := c.head
		if pos >= c.tailCache || c.tailCache-pos > r.capacity {
			t := atomic.LoadUint64(r.tail) // SYNC POINT "publish" (acquire half)
			cnt := t &^ layout.ClosedBit
			if cnt < c.tailCache {
				return nil, notReady, corruptf("tail %d went back from %d", cnt, c.tailCache)
			}
			c.tailCache, c.closed = cnt, t&layout.ClosedBit != 0
			if pos == cnt {
				return nil, notReady, c.emptyErr()
			}
		}
		if c.tailCache-pos > r.capacity {
			if !q.drop {
				return nil, notReady, corruptf("tail %d is more than %d past this receiver's cursor %d", c.tailCache, r.capacity, pos)
			}
			resume := c.tailCache - r.capacity
			missed := resume - pos
			c.head = resume
			atomic.StoreUint64(q.cursor, resume)
			atomic.AddUint64(word64(r.mem, layout.OffLagged), missed)
			q.writer.reset()
			return nil, ready, &LagError{Missed: missed}
		}
		if !committedAt(r, pos) {
			// Not committed for pos: not yet, or (DropOldest) lapped. The
			// cached tail may be stale; only a fresh one tells.
			if t := atomic.LoadUint64(r.tail) &^ layout.ClosedBit; t-pos > r.capacity {
				c.tailCache = t
				continue
			}
			dead, err := q.writer.dead(r, pos)
			if err != nil || !dead {
				return nil, stuck, errOr(err, ErrEmpty)
			}
			atomic.AddUint64(r.abandoned, 1)
			q.release(c, 1)
			continue
		}
		q.writer.reset()
		b, n, err := c.payloadAt(pos)
		if (err != nil || n == layout.SlotSkip) && q.drop && q.lapped(c, pos) {
			continue // the length was the next lap's: the next round reports the lag
		}
		if err != nil {
			return nil, notReady, err
		}
		if n == layout.SlotSkip {
			q.release(c, 1)
			continue
		}
		if !q.drop {
			return b, ready, nil
		}
		m := copy(q.stable, b)
		if q.lapped(c, pos) {
			continue // overwritten while we copied: the next round reports the lag
		}
		return q.stable[:m], ready, nil
	}
}

// lapped reports whether a sender has claimed the next lap of pos's slot
// (DropOldest), after a full barrier: what was read from the slot before
// is read before the tail.
func (q *bcastConsumer) lapped(c *Receiver, pos uint64) bool {
	atomic.AddUint64(&q.fence, 1)
	if t := atomic.LoadUint64(c.r.tail) &^ layout.ClosedBit; t-pos > c.r.capacity {
		c.tailCache = t
		return true
	}
	return false
}

func errOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}
