package ring

// Ring-level tests for the protocol defects of issue 10; each failed
// before its fix.

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// TestJoinWhileIndicesMove: a producer joining an MPSC ring reads the head
// and tail while other producers claim and the receiver consumes. joinHook
// moves both between NewSender's loads, as they legitimately can: the
// join must not call that corrupt, and the new producer's values must
// arrive in order after the others.
func TestJoinWhileIndicesMove(t *testing.T) {
	for _, step := range []struct {
		name         string
		sends, recvs int
	}{
		{"both", 3, 3},       // head passes the tail read before it
		{"fill", 8, 0},       // tail reaches head + capacity
		{"fill-drain", 8, 8}, // then head catches up
	} {
		t.Run(step.name, func(t *testing.T) {
			mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 8, 16, 3)
			r := newRing(t, mem, h, Config{})
			c, err := r.NewReceiver(Identity{})
			if err != nil {
				t.Fatal(err)
			}
			other, err := r.NewSender(1, Identity{PID: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			next, want := uint64(0), uint64(0)
			// Start mid-ring, past a wrap.
			for range 13 {
				if err := put(other, ctx, next); err != nil {
					t.Fatal(err)
				}
				next++
				if v, err := get(c, ctx); err != nil || v != want {
					t.Fatalf("got %d, %v; want %d", v, err, want)
				}
				want++
			}
			calls := 0
			joinHook = func() {
				calls++
				for range step.sends {
					if r.Len() == r.Cap() {
						break
					}
					if err := put(other, ctx, next); err != nil {
						t.Error(err)
						return
					}
					next++
				}
				for range step.recvs {
					if r.Len() == 0 {
						break
					}
					if v, err := get(c, ctx); err != nil || v != want {
						t.Errorf("got %d, %v; want %d", v, err, want)
						return
					}
					want++
				}
			}
			s, err := r.NewSender(2, Identity{PID: 2})
			joinHook = nil
			if err != nil {
				t.Fatalf("join with the indices moving (%d hook calls): %v", calls, err)
			}
			if calls == 0 {
				t.Fatal("joinHook was not called")
			}
			for r.Len() > 0 {
				if v, err := get(c, ctx); err != nil || v != want {
					t.Fatalf("got %d, %v; want %d", v, err, want)
				}
				want++
			}
			const mark = 1 << 40
			if err := put(s, ctx, mark); err != nil {
				t.Fatal(err)
			}
			if v, err := get(c, ctx); err != nil || v != mark {
				t.Fatalf("the new producer's value: got %d, %v", v, err)
			}
		})
	}
}

// TestJoinStress joins a busy MPSC ring again and again: two producers
// send and the receiver consumes all the while, and no join may report
// the ring corrupt.
func TestJoinStress(t *testing.T) {
	d := 500 * time.Millisecond
	if testing.Short() || raceEnabled {
		d = 150 * time.Millisecond
	}
	mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 16, 16, 3)
	r := newRing(t, mem, h, Config{})
	c, err := r.NewReceiver(Identity{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var received atomic.Uint64
	errs := make(chan error, 3)
	for p := 1; p <= 2; p++ {
		s, err := r.NewSender(p, Identity{PID: uint32(p)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := uint64(0); ; i++ {
				if err := put(s, ctx, i); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
			}
		})
	}
	wg.Go(func() {
		for {
			if _, err := get(c, ctx); err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			received.Add(1)
		}
	})
	joins := 0
	var joinErr error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); joins++ {
		if _, joinErr = r.NewSender(3, Identity{PID: 3}); joinErr != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if joinErr != nil {
		t.Fatalf("join %d on a busy ring: %v", joins, joinErr)
	}
	if received.Load() == 0 {
		t.Fatalf("the ring did not move during %d joins", joins)
	}
	t.Logf("%d joins while %d values went through", joins, received.Load())
}

// TestJoinReceiverWhileTailMoves: a receiver taking over an MPSC ring
// while producers fill it between its loads (only a receiver moves the
// head, so the head stays put), and an SPSC sender taking over while the
// receiver drains between its loads.
func TestJoinReceiverWhileTailMoves(t *testing.T) {
	ctx := context.Background()
	t.Run("receiver", func(t *testing.T) {
		mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 8, 16, 2)
		r := newRing(t, mem, h, Config{})
		if _, err := r.NewReceiver(Identity{}); err != nil {
			t.Fatal(err)
		}
		s, _ := r.NewSender(1, Identity{})
		for i := range uint64(3) {
			if err := put(s, ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		joinHook = func() {
			for i := uint64(3); r.Len() < r.Cap(); i++ {
				if err := put(s, ctx, i); err != nil {
					t.Error(err)
					return
				}
			}
		}
		c, err := r.NewReceiver(Identity{})
		joinHook = nil
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(8) {
			if v, err := get(c, ctx); err != nil || v != i {
				t.Fatalf("got %d, %v; want %d", v, err, i)
			}
		}
	})
	t.Run("spsc-sender", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 8, 16, 1)
		r := newRing(t, mem, h, Config{})
		c, _ := r.NewReceiver(Identity{})
		s, _ := r.NewSender(1, Identity{})
		for i := range uint64(8) {
			if err := put(s, ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		want := uint64(0)
		joinHook = func() {
			for range 4 {
				if v, err := get(c, ctx); err != nil || v != want {
					t.Errorf("got %d, %v; want %d", v, err, want)
					return
				}
				want++
			}
		}
		s, err := r.NewSender(1, Identity{}) // the first holder is gone
		joinHook = nil
		if err != nil {
			t.Fatal(err)
		}
		if err := put(s, ctx, 8); err != nil {
			t.Fatal(err)
		}
		for ; want <= 8; want++ {
			if v, err := get(c, ctx); err != nil || v != want {
				t.Fatalf("got %d, %v; want %d", v, err, want)
			}
		}
	})
}

// TestSkipDeadClaimOnce: a dead producer's claim of seven positions, then
// a live producer's claim, uncommitted. One liveness verdict covers the
// dead claim (about one StuckCheck, not seven), each skipped slot gets its
// position's seq, and the live claim is waited for, never skipped.
func TestSkipDeadClaimOnce(t *testing.T) {
	const stuck = 50 * time.Millisecond
	mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 8, 16, 2)
	r := newRing(t, mem, h, Config{StuckCheck: stuck, Alive: func(i int) (bool, error) { return i != 1, nil }})
	c, _ := r.NewReceiver(Identity{})
	dead, _ := r.NewSender(1, Identity{PID: 1})
	live, _ := r.NewSender(2, Identity{PID: 2})
	if n, err := dead.TryReserveN(7); err != nil || n != 7 {
		t.Fatalf("dead claim: %d, %v", n, err)
	}
	b, err := live.TryReserve()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	start := time.Now()
	go func() {
		v, err := get(c, ctx)
		if err == nil && v != 77 {
			err = fmt.Errorf("got %d, want 77", v)
		}
		got <- err
	}()
	for r.Stats().Abandoned < 7 && time.Since(start) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	if a := r.Stats().Abandoned; a != 7 {
		t.Fatalf("abandoned %d after %v, want 7", a, took)
	}
	t.Logf("seven dead positions skipped after %v (stuck check %v)", took, stuck)
	if took > 4*stuck {
		t.Errorf("skipping one dead claim of seven positions took %v, with a stuck check of %v", took, stuck)
	}
	for p := range uint64(7) {
		if seq := atomic.LoadUint32(word32(r.slot(p), layout.SlotSeq)); seq != uint32(p+1) {
			t.Errorf("skipped slot %d has seq %d, want %d", p, seq, p+1)
		}
	}
	time.Sleep(3 * stuck) // the live claim is looked at again, and kept
	select {
	case err := <-got:
		t.Fatalf("the receiver went past a live claim: %v", err)
	default:
	}
	if a := r.Stats().Abandoned; a != 7 {
		t.Fatalf("abandoned %d, want 7: the live claim was skipped", a)
	}
	binary.LittleEndian.PutUint64(b, 77)
	binary.LittleEndian.PutUint64(b[8:], ^uint64(77))
	live.Commit(16)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestMQSleepsOnce: in WaitMQ every sleep pays the cross-process barrier,
// so none needs a short bound: a receiver idle for a while on an empty
// ring, and a sender on a full one, each sleep once, until the wake-up.
// (An unbarriered first sleep would be bounded, and in the poller, which
// rounds sub-millisecond timeouts up, that bound is about a millisecond,
// not FirstSleep.) The first round of each may sleep twice: the wake-ups
// NewSender and NewReceiver send leave a token in the doorbells.
func TestMQSleepsOnce(t *testing.T) {
	if barrier, _ := sleeperBarrier(); !barrier {
		t.Skip("no membarrier: sleeps here poll every millisecond")
	}
	const idle = 30 * time.Millisecond
	mem, h := region(t, layout.ModeSPSC, layout.WaitMQ, 4, 16, 1)
	r := newRing(t, mem, h, Config{})
	c, _ := r.NewReceiver(Identity{})
	s, _ := r.NewSender(1, Identity{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := uint64(0)
	for round := 1; round <= 2; round++ {
		before := r.Stats().RecvSleeps
		got := make(chan error, 1)
		go func() {
			v, err := get(c, ctx)
			if err == nil && v != next {
				err = fmt.Errorf("got %d, want %d", v, next)
			}
			got <- err
		}()
		time.Sleep(idle)
		if err := put(s, ctx, next); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		next++
		if n := r.Stats().RecvSleeps - before; round == 2 && n != 1 {
			t.Errorf("the receiver slept %d times in %v on an empty ring, want 1", n, idle)
		}
	}
	for round := 1; round <= 2; round++ {
		for r.Len() < r.Cap() {
			if err := put(s, ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
		before := r.Stats().SendSleeps
		sent := make(chan error, 1)
		go func() { sent <- put(s, ctx, 0) }()
		time.Sleep(idle)
		if _, err := get(c, ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if n := r.Stats().SendSleeps - before; round == 2 && n != 1 {
			t.Errorf("the sender slept %d times in %v on a full ring, want 1", n, idle)
		}
	}
}
