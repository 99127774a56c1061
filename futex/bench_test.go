package futex

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWakeNoWaiter: FUTEX_WAKE on a word nobody waits on. It is still
// a system call, which is why wakers keep a "someone sleeps" flag.
func BenchmarkWakeNoWaiter(b *testing.B) {
	w := new(word)
	for b.Loop() {
		if _, err := Wake(&w.v, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitValueDiffers: FUTEX_WAIT that returns EAGAIN at once.
func BenchmarkWaitValueDiffers(b *testing.B) {
	w := new(word)
	for b.Loop() {
		if err := Wait(&w.v, 1, -1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBarrier: one membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED).
func BenchmarkBarrier(b *testing.B) {
	if !RegisterBarrier() {
		b.Skip("membarrier global expedited not available")
	}
	for b.Loop() {
		if err := Barrier(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingPong: one op is a full round trip between two goroutines
// that sleep on the futex while it is not their turn (no spinning), so it
// measures two wake-ups and two sleeps.
func BenchmarkPingPong(b *testing.B) {
	w := new(word)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // the responder: waits for 1, answers 0
		defer close(done)
		for !stop.Load() {
			if atomic.LoadUint32(&w.v) != 1 {
				_ = Wait(&w.v, 0, 10*time.Millisecond)
				continue
			}
			atomic.StoreUint32(&w.v, 0)
			_, _ = Wake(&w.v, 1)
		}
	}()
	for b.Loop() {
		atomic.StoreUint32(&w.v, 1)
		if _, err := Wake(&w.v, 1); err != nil {
			b.Fatal(err)
		}
		for atomic.LoadUint32(&w.v) != 0 {
			_ = Wait(&w.v, 1, 10*time.Millisecond)
		}
	}
	b.StopTimer()
	stop.Store(true)
	_, _ = Wake(&w.v, All)
	<-done
}

// The costs the asymmetric fence trades: a sequentially consistent store
// followed by a load (XCHG on amd64), against a plain store and an atomic
// load. Reference numbers only; see the package documentation.
var sink uint32

func BenchmarkStoreLoadSeqCst(b *testing.B) {
	w, flag := new(word), new(word)
	for b.Loop() {
		atomic.StoreUint32(&w.v, 1)
		sink += atomic.LoadUint32(&flag.v)
	}
}

func BenchmarkStoreLoadPlain(b *testing.B) {
	w, flag := new(word), new(word)
	for b.Loop() {
		w.v++
		sink += atomic.LoadUint32(&flag.v)
	}
}
