package futex

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// word is a futex word alone on its cache line, in ordinary Go memory.
type word struct {
	v uint32
	_ [60]byte
}

func TestWaitValueDiffers(t *testing.T) {
	w := new(word)
	atomic.StoreUint32(&w.v, 7)
	start := time.Now()
	for _, timeout := range []time.Duration{-1, 0, 10 * time.Second} {
		if err := Wait(&w.v, 8, timeout); err != nil {
			t.Errorf("Wait(timeout %v) with a different value: %v", timeout, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Wait with a different value blocked for %v", d)
	}
}

func TestWaitTimeout(t *testing.T) {
	w := new(word)
	for _, timeout := range []time.Duration{0, time.Nanosecond, 20 * time.Millisecond} {
		start := time.Now()
		err := Wait(&w.v, 0, timeout)
		elapsed := time.Since(start)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Wait(timeout %v): %v, want ErrTimeout", timeout, err)
		}
		if elapsed < timeout {
			t.Errorf("Wait(timeout %v) returned after only %v", timeout, elapsed)
		}
	}
}

func TestWakeNoWaiter(t *testing.T) {
	w := new(word)
	for _, n := range []int{1, 0, -1, All} {
		if got, err := Wake(&w.v, n); err != nil || got != 0 {
			t.Errorf("Wake(n=%d) with no waiter = %d, %v", n, got, err)
		}
	}
}

// wakeUntil calls Wake(addr, n) until it reports want waiters woken. The
// waiters are expected to go back to sleep after a wake that did not change
// their word, so they are all asleep at once sooner or later.
func wakeUntil(t *testing.T, addr *uint32, n, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := Wake(addr, n)
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		if got > want {
			t.Fatalf("Wake(n=%d) woke %d, want at most %d", n, got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Wake(n=%d) never woke %d waiters", n, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWakeOne(t *testing.T) {
	w := new(word)
	done := make(chan error, 1)
	var stop atomic.Bool
	go func() {
		// The value never changes, so only a Wake (or the timeout, which
		// fails the test) ends a Wait for good; a signal may end one early
		// (spurious returns are allowed: the waiter just waits again).
		for !stop.Load() {
			if err := Wait(&w.v, 0, 30*time.Second); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	wakeUntil(t, &w.v, 1, 1) // a Wake(n=1) found the waiter and woke it
	stop.Store(true)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("woken Wait returned %v", err)
			}
			return
		case <-time.After(time.Millisecond):
			Wake(&w.v, 1) //nolint:errcheck // the waiter may have gone back to sleep before it saw stop
		}
	}
}

func TestWakeAll(t *testing.T) {
	for _, n := range []int{0, -5, All} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			w := new(word)
			const waiters = 3
			var wg sync.WaitGroup
			errs := make(chan error, waiters)
			for range waiters {
				wg.Go(func() {
					for atomic.LoadUint32(&w.v) == 0 {
						if err := Wait(&w.v, 0, 30*time.Second); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wakeUntil(t, &w.v, n, waiters)
			atomic.StoreUint32(&w.v, 1)
			if _, err := Wake(&w.v, All); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// misaligned returns a pointer to a uint32 that starts one byte into buf.
//
//go:nocheckptr
func misaligned(buf *[8]uint32) *uint32 {
	return (*uint32)(unsafe.Add(unsafe.Pointer(buf), 1))
}

func TestBadAddress(t *testing.T) {
	var buf [8]uint32
	for _, addr := range []*uint32{nil, misaligned(&buf)} {
		if err := Wait(addr, 0, 0); !errors.Is(err, ErrUnaligned) || !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Wait(%p): %v, want ErrUnaligned", addr, err)
		}
		if _, err := Wake(addr, 1); !errors.Is(err, ErrUnaligned) {
			t.Errorf("Wake(%p): %v, want ErrUnaligned", addr, err)
		}
	}
}

// TestPingPongStress has two goroutines hand a turn back and forth 100,000
// times, each sleeping on the futex until it is its turn and waking the
// other after every move. A lost wake-up would stall it; the bounded waits
// and the overall deadline turn a stall into a failure instead of a hang.
func TestPingPongStress(t *testing.T) {
	rounds := 100_000
	if testing.Short() {
		rounds = 10_000
	}
	w := new(word) // 0: player 0 moves, 1: player 1 moves
	deadline := time.Now().Add(2 * time.Minute)
	var stop atomic.Bool
	var moves, sleeps, woken atomic.Int64

	play := func(me, other uint32) error {
		for i := 0; i < rounds; i++ {
			for atomic.LoadUint32(&w.v) != me {
				if stop.Load() {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("player %d stuck at round %d of %d", me, i, rounds)
				}
				sleeps.Add(1)
				if err := Wait(&w.v, other, 100*time.Millisecond); err != nil && !errors.Is(err, ErrTimeout) {
					return err
				}
			}
			moves.Add(1)
			atomic.StoreUint32(&w.v, other)
			n, err := Wake(&w.v, 1)
			if err != nil {
				return err
			}
			woken.Add(int64(n))
		}
		return nil
	}

	errs := make(chan error, 2)
	for _, p := range [][2]uint32{{0, 1}, {1, 0}} {
		go func() {
			err := play(p[0], p[1])
			if err != nil {
				stop.Store(true)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := moves.Load(); got != int64(2*rounds) && !t.Failed() {
		t.Errorf("%d moves, want %d", got, 2*rounds)
	}
	t.Logf("%d moves, %d Wait calls, %d waiters woken", moves.Load(), sleeps.Load(), woken.Load())
}
