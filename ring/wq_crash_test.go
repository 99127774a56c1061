package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// Fan-out peers caught between two of their stores, on Go memory: work-
// queue receivers that die where a crash is hardest to recover from, and a
// broadcast sender halfway through recording a claim. The peer's state is
// what its last stores left in the region, written here the way its code
// writes it.

// setClaim writes the claim words of role entry i, as a receiver does
// before its claim CAS.
func setClaim(mem []byte, i int, lo, hi uint64) {
	off := layout.RoleOffset(i)
	atomic.StoreUint64(word64(mem, off+layout.RoleClaimHi), hi)
	atomic.StoreUint64(word64(mem, off+layout.RoleClaimLo), lo)
}

// tryGet is get without waiting.
func tryGet(c *Receiver) (uint64, error) {
	b, err := c.TryPeek()
	if err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(b)
	c.Release()
	return v, nil
}

// pollGet calls TryPeek until it gives something other than ErrEmpty, for
// a while (several stuck checks): a rescue or a skip happens only once per
// stuck check.
func pollGet(c *Receiver, d time.Duration) (uint64, error) {
	deadline := time.Now().Add(d)
	for {
		v, err := tryGet(c)
		if !errors.Is(err, ErrEmpty) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestWorkQueueStaleClaimNotResumed: receiver A records its claim of
// position 0, B wins position 0 with its CAS, and A dies before it
// withdraws its claim (between its stores and its failed CAS). A process
// that takes A's entry over must not resume that claim while B, alive,
// holds the position: the value would be returned twice.
func TestWorkQueueStaleClaimNotResumed(t *testing.T) {
	mem, h, r, l := fanRing(t, layout.ModeWorkQueue, 0, 8, 1, 3)
	ctx := context.Background()
	s, _ := r.NewSender(1, Identity{})
	ea, eb := h.ConsumerEntry(0), h.ConsumerEntry(1)
	if _, err := r.NewConsumer(ea, Identity{}); err != nil {
		t.Fatal(err)
	}
	b, _ := r.NewConsumer(eb, Identity{})
	put(s, ctx, 10)
	if p, err := b.TryPeek(); err != nil || binary.LittleEndian.Uint64(p) != 10 {
		t.Fatalf("b's peek: %v", err)
	}
	setClaim(mem, ea, 0, 1) // A's claim, recorded before the CAS it lost
	l.dead.Store(ea, true)
	a2, err := r.NewConsumer(ea, Identity{}) // A's successor
	if err != nil {
		t.Fatal(err)
	}
	l.dead.Delete(ea)
	if v, err := tryGet(a2); !errors.Is(err, ErrEmpty) {
		t.Fatalf("A's successor got %d, %v while B holds it: the value is returned twice", v, err)
	}
	b.Release()
	s.Close()
	for _, c := range []*Receiver{a2, b} {
		if v, err := pollGet(c, 50*time.Millisecond); !errors.Is(err, ErrClosed) {
			t.Fatalf("after close: %d, %v; want ErrClosed", v, err)
		}
	}
}

// TestWorkQueueRescueConsumedPosition: A died with a stale claim of the
// position B holds (as above); a rescuer finds A's claim and, while it asks
// whether A lives, B consumes the position. The rescuer must not take the
// consumed position: it would wait on it, find no writer, mark the slot
// consumed again over the next lap's committed value, and that value would
// be lost.
func TestWorkQueueRescueConsumedPosition(t *testing.T) {
	mem, h := fanRegion(t, layout.ModeWorkQueue, 0, 1, 1, 3)
	var l liveness
	ea, eb, ec := h.ConsumerEntry(0), h.ConsumerEntry(1), h.ConsumerEntry(2)
	var b *Receiver
	var hooked atomic.Bool
	cfg := l.config()
	cfg.Alive = func(i int) (bool, error) {
		if i == ea && b != nil && hooked.CompareAndSwap(false, true) {
			b.Release() // B consumes while the rescuer looks at A's claim
		}
		return l.alive(i)
	}
	r := newRing(t, mem, h, cfg)
	ctx := context.Background()
	s, _ := r.NewSender(1, Identity{})
	r.NewConsumer(ea, Identity{})
	bb, _ := r.NewConsumer(eb, Identity{})
	c, _ := r.NewConsumer(ec, Identity{})
	put(s, ctx, 10)
	if _, err := bb.TryPeek(); err != nil {
		t.Fatal(err)
	}
	setClaim(mem, ea, 0, 1)
	l.dead.Store(ea, true)
	b = bb
	if v, err := tryGet(c); !errors.Is(err, ErrEmpty) {
		t.Fatalf("rescuer: %d, %v", v, err)
	}
	if !hooked.Load() {
		t.Fatal("the rescuer never looked at A's claim")
	}
	b = nil
	// The next lap: one more value, which someone must get.
	if err := put(s, ctx, 11); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, x := range []*Receiver{c, bb, c, bb} {
		if v, err := pollGet(x, 20*time.Millisecond); err == nil {
			got = append(got, v)
		} else if !errors.Is(err, ErrEmpty) {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0] != 11 {
		t.Fatalf("after the rescue got %v, want [11] (stats %+v)", got, r.Stats())
	}
	if st := r.Stats(); st.Abandoned != 0 {
		t.Fatalf("stats %+v: a committed value was taken for abandoned", st)
	}
}

// TestWorkQueueResumeLockBusy: A dies holding a value; its successor takes
// the entry over while another process holds the rescue lock. The successor
// must neither take the value unlocked nor drop A's claim: nobody rescues a
// claim that was withdrawn, so the value would be lost and head would stay
// behind it for good (the ring wedged once it fills).
func TestWorkQueueResumeLockBusy(t *testing.T) {
	_, h, r, l := fanRing(t, layout.ModeWorkQueue, 0, 2, 1, 2)
	ctx := context.Background()
	s, _ := r.NewSender(1, Identity{})
	ea, eb := h.ConsumerEntry(0), h.ConsumerEntry(1)
	a, _ := r.NewConsumer(ea, Identity{})
	b, _ := r.NewConsumer(eb, Identity{})
	put(s, ctx, 10)
	if _, err := a.TryPeek(); err != nil {
		t.Fatal(err)
	}
	l.dead.Store(ea, true) // A dies holding 10
	l.mu.Lock()            // a rescuer elsewhere holds the lock
	a2, err := r.NewConsumer(ea, Identity{})
	if err != nil {
		t.Fatal(err)
	}
	l.dead.Delete(ea)
	if v, err := tryGet(a2); !errors.Is(err, ErrEmpty) {
		t.Fatalf("successor without the lock: %d, %v", v, err)
	}
	l.mu.Unlock()
	put(s, ctx, 11)
	s.Close()
	var got []uint64
	for _, x := range []*Receiver{a2, b} {
		for {
			v, err := pollGet(x, 100*time.Millisecond)
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("got %v, %v; stats %+v", got, err, r.Stats())
				}
				break
			}
			got = append(got, v)
		}
	}
	if len(got) != 2 || got[0]+got[1] != 21 {
		t.Fatalf("got %v, want 10 and 11", got)
	}
}

// TestWorkQueueDeadAtHead: A consumes the value at head (marks its slot)
// and dies before it moves head on. Nobody else has a value to consume, so
// no other receiver's consume moves head either: the receivers that find
// nothing to claim must move it, or a closed channel never reports
// ErrClosed and a full one never takes another value.
func TestWorkQueueDeadAtHead(t *testing.T) {
	for _, full := range []bool{false, true} {
		mem, h, r, l := fanRing(t, layout.ModeWorkQueue, 0, 2, 1, 2)
		ctx := context.Background()
		s, _ := r.NewSender(1, Identity{})
		ea, eb := h.ConsumerEntry(0), h.ConsumerEntry(1)
		a, _ := r.NewConsumer(ea, Identity{})
		b, _ := r.NewConsumer(eb, Identity{})
		put(s, ctx, 10)
		if full {
			put(s, ctx, 11)
		}
		if _, err := a.TryPeek(); err != nil {
			t.Fatal(err)
		}
		if full {
			if v, err := tryGet(b); err != nil || v != 11 {
				t.Fatalf("b: %d, %v", v, err)
			}
		}
		// A's consume, up to its crash: the mark, then the withdrawn claim.
		atomic.StoreUint32(word32(r.slot(0), layout.SlotSeq), wqConsumed(0))
		setClaim(mem, ea, 1, 1)
		l.dead.Store(ea, true)
		if full {
			var err error
			for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
				if _, err = tryGet(b); !errors.Is(err, ErrEmpty) {
					break
				}
				if _, err = s.TryReserve(); err == nil {
					break
				}
				time.Sleep(200 * time.Microsecond)
			}
			if err != nil {
				t.Fatalf("full ring after a receiver died at head: %v (stats %+v)", err, r.Stats())
			}
			s.Abort()
		}
		s.Close()
		if v, err := pollGet(b, 100*time.Millisecond); !errors.Is(err, ErrClosed) {
			t.Fatalf("full %v: after close: %d, %v; want ErrClosed (stats %+v)", full, v, err, r.Stats())
		}
	}
}

// TestBroadcastClaimInBetween: a broadcast sender records a claim by
// storing its claim's hi, then its lo. Between the two, its entry shows
// [the end of its last claim, the new hi): a lo that may be far behind the
// tail if others sent meanwhile. Such a lo is no claim in progress (one
// that won its CAS is never more than a ring behind the tail, and one
// whose lo is already behind the tail cannot win any more); another sender
// must not take it for its bound and call the region corrupt.
func TestBroadcastClaimInBetween(t *testing.T) {
	mem, h, r, _ := fanRing(t, layout.ModeBroadcast, layout.OverflowWait, 8, 2, 1)
	ctx := context.Background()
	a, _ := r.NewSender(1, Identity{})
	b, _ := r.NewSender(2, Identity{})
	c, _ := r.NewConsumer(h.ConsumerEntry(0), Identity{})
	put(a, ctx, 0) // a's claim [0, 1), withdrawn: lo = hi = 1
	if v, err := get(c, ctx); err != nil || v != 0 {
		t.Fatal(v, err)
	}
	for i := uint64(1); i < 20; i++ { // b sends more than a ring meanwhile
		if err := put(b, ctx, i); err != nil {
			t.Fatal(err)
		}
		if v, err := get(c, ctx); err != nil || v != i {
			t.Fatal(v, err)
		}
	}
	// a starts its next claim: the new hi is stored, lo not yet.
	off := layout.RoleOffset(1)
	atomic.StoreUint64(word64(mem, off+layout.RoleClaimHi), 21)
	// b sends on (its bound is computed again within a ring's worth).
	for i := uint64(20); i < 40; i++ {
		buf, err := b.TryReserve()
		if err != nil {
			t.Fatalf("value %d, with a's claim half recorded: %v", i, err)
		}
		binary.LittleEndian.PutUint64(buf, i)
		binary.LittleEndian.PutUint64(buf[8:], ^i)
		b.Commit(16)
		if v, err := get(c, ctx); err != nil || v != i {
			t.Fatal(v, err)
		}
	}
}
