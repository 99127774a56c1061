package ring

import (
	"sync/atomic"

	"github.com/shmchan/shmchan/layout"
)

// SPSC (layout.ModeSPSC): one sender, one receiver.
//
// The sender owns the tail word and keeps its count locally; the receiver
// owns the head word likewise. A value at position p is committed once the
// tail store that covers it is visible: payload and length are plain stores
// before a release store of the tail (SYNC POINT "publish"), which the
// receiver loads with acquire before reading the slot. Releasing is the
// mirror: the receiver's reads of a slot come before its release store of
// head (SYNC POINT "release"), which the sender loads before writing the
// slot again.
//
// Invariant: head <= count(tail) <= head + capacity. The sender checks it
// against every head it reads (a head never goes back and never passes the
// tail this sender published); the receiver against every tail.

// spscProducer is SPSC's sending half. Its state lives in Sender (tail,
// headCache, room), which the inlined fast path reads.
type spscProducer struct{}

func (spscProducer) reserve(s *Sender, max uint64) error {
	if s.closed {
		return ErrClosed
	}
	f := s.r.capacity - (s.tail - s.headCache)
	if f == 0 {
		if err := s.refreshHead(s.tail); err != nil {
			return err
		}
		if f = s.r.capacity - (s.tail - s.headCache); f == 0 {
			return ErrFull
		}
	}
	s.resLo, s.resN = s.tail, min(f, max)
	return nil
}

func (spscProducer) commit(s *Sender, k uint64) {
	s.resN = 0
	if k == 0 {
		return
	}
	s.tail += k
	publish64(s.r.tail, s.tail) // SYNC POINT "publish" (release half)
	s.r.wake(&s.r.recv)
}

func (spscProducer) close(s *Sender) {
	if !s.closed {
		atomic.StoreUint64(s.r.tail, s.tail|layout.ClosedBit)
	}
}

// spscConsumer is SPSC's receiving half: every position below the tail is
// committed, so it hands out runs.
type spscConsumer struct{}

func (spscConsumer) state(*Receiver, uint64) (readiness, error)    { return ready, nil }
func (q spscConsumer) peek(c *Receiver) ([]byte, readiness, error) { return headPeek(c, q.state) }
func (spscConsumer) release(c *Receiver, k uint64)                 { headRelease(c, k) }
func (spscConsumer) ahead() bool                                   { return true }
func (spscConsumer) detach(*Receiver)                              {}
