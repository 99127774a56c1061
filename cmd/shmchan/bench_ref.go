package main

// The references: an in-process buffered Go channel, copy() on one core, a
// bare SPSC ring between two processes (what the hardware allows a ring
// with one copy in and one out), and the two latency floors, a cache-line
// ping-pong (spinning) and a raw futex ping-pong (sleeping).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan/futex"
)

// benchGoChanNA: a Go channel's element must be smaller than 64 KiB.
func benchGoChanNA(size int) string {
	if size >= 64<<10 {
		return "Go channel: elements must be smaller than 64 KiB"
	}
	return ""
}

// benchGoChanRun is the run function of the Go channel throughput row.
func benchGoChanRun(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
	f := benchOps(size).goChan
	if f == nil {
		return benchSample{}, fmt.Errorf("%s", benchGoChanNA(size))
	}
	return f(ctx, e, size)
}

// benchGoChanThroughput: two goroutines, a channel of T with the capacity
// the shmchan rows have, the same values and checks.
func benchGoChanThroughput[T any](ctx context.Context, e *benchEnv, size int) (benchSample, error) {
	capacity, _ := benchGeometry(size)
	warm := benchWarm(size)
	ch := make(chan T, capacity)
	sent := make(chan uint64, 1)
	spec := benchPeerSpec{Size: size, Warm: warm, Budget: e.cfg.budget, Corrupt: e.corruptAt}
	go func() {
		v := new(T)
		w := benchWords(v)
		benchFill(w, 0)
		n, _ := benchSendLoop(spec, func(seq uint64) (int, error) {
			benchStamp(w, seq)
			benchCorrupt(w, seq, &spec)
			ch <- *v
			return 1, nil
		})
		close(ch)
		sent <- n
	}()
	var seq, m0 uint64
	var rerr error
	meter := newBenchMeter(warm, e.cfg.budget, func() { m0 = benchMallocs() })
	for v := range ch {
		if rerr = benchCheck(benchWords(&v), seq, seq%benchFullEvery == 0); rerr != nil {
			break
		}
		seq++
		meter.got(seq)
	}
	meter.stop()
	m1 := benchMallocs()
	if rerr != nil {
		go func() {
			for range ch {
			}
		}()
		return benchSample{}, rerr
	}
	if n := <-sent; n != seq {
		return benchSample{}, benchVerifyf("sent %d values, %d arrived", n, seq)
	}
	n, rate, err := meter.result(seq)
	if err != nil {
		return benchSample{}, err
	}
	s := benchUncounted(rate, n)
	s.Allocs = float64(m1-m0) / float64(n)
	return s, nil
}

// benchGoChanLatency: round trips between two goroutines over two
// channels of one element.
func benchGoChanLatency(ctx context.Context, e *benchEnv, _ int) (benchSample, error) {
	ping, pong := make(chan [2]uint64, 1), make(chan [2]uint64, 1)
	echoErr := make(chan error, 1)
	go func() {
		var seq uint64
		for v := range ping {
			if err := benchCheck(v[:], seq, true); err != nil {
				echoErr <- err
				close(pong)
				return
			}
			pong <- v
			seq++
		}
		echoErr <- nil
		close(pong)
	}()
	var v [2]uint64
	s, err := benchMeasureRTT(ctx, e, func(seq uint64) error {
		benchStamp(v[:], seq)
		ping <- v
		r, ok := <-pong
		if !ok {
			return <-echoErr
		}
		return benchCheck(r[:], seq, true)
	})
	close(ping)
	for range pong {
	}
	if err != nil {
		return benchSample{}, err
	}
	return s, <-echoErr
}

// benchCopy: copy() of one value from a source buffer into the next slot
// of a destination ring as large as the shmchan region for the size, on
// one core, for the time budget. No check can be done per copy without
// changing what is measured; the ring is checked at the end instead.
func benchCopy(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
	capacity, _ := benchGeometry(size)
	src := make([]uint64, size/8)
	benchFill(src, 0)
	dst := make([]uint64, capacity*size/8)
	words := size / 8
	mask := uint64(capacity - 1)
	var n uint64
	one := func() {
		i := int(n&mask) * words
		copy(dst[i:i+words], src)
		n++
	}
	for range 2 * capacity {
		one()
	}
	var over atomic.Bool
	timer := time.AfterFunc(e.cfg.budget, func() { over.Store(true) })
	defer timer.Stop()
	t0 := time.Now()
	base := n
	for !over.Load() {
		one()
	}
	t1 := time.Now()
	for i := 0; i < capacity; i++ {
		if err := benchCheck(dst[i*words:(i+1)*words], 0, true); err != nil {
			return benchSample{}, err
		}
	}
	rate, err := benchRate(n-base, t1.Sub(t0))
	if err != nil {
		return benchSample{}, err
	}
	return benchUncounted(rate, n-base), nil
}

// The shared memory of the bare ring and the ping-pongs: an anonymous
// memfd (no name, nothing to clean up), its descriptor passed to the peer.
const (
	benchRingTail = 0   // uint64: values published by the sender
	benchRingHead = 128 // uint64: values consumed by the receiver
	benchRingDone = 256 // uint64: 1 once the sender has published its last value
	benchRingData = 512 // slots
	benchFutexOff = 64  // uint32: the raw futex ping-pong's word
)

// benchMemfd makes a shared memory object of n bytes and maps it.
func benchMemfd(n int) (*os.File, []byte, error) {
	fd, err := unix.MemfdCreate("shmchan-bench", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	if err := unix.Ftruncate(fd, int64(n)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("ftruncate memfd: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mmap memfd: %w", err)
	}
	return f, mem, nil
}

// benchMapFd maps all of descriptor fd (the peer's side of benchMemfd).
func benchMapFd(fd int, want int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size != int64(want) {
		return nil, fmt.Errorf("shared memory of %d bytes, want %d", st.Size, want)
	}
	return unix.Mmap(fd, 0, want, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func benchWord64(mem []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off])) }
func benchWord32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// benchPublish stores v for a peer process that reads it with
// atomic.LoadUint64. On amd64 it is a plain MOV: under x86-TSO a store is
// never reordered with earlier stores, so everything written before it (the
// slot's bytes) is visible to a reader that sees v; and the compiler keeps
// it after those writes, which are a call (memmove) or stores to the same
// kind of memory. It needs no StoreLoad fence because nobody sleeps on the
// ring. Elsewhere it is a sequentially consistent atomic store.
func benchPublish(p *uint64, v uint64) {
	if runtime.GOARCH == "amd64" {
		*p = v
		return
	}
	atomic.StoreUint64(p, v)
}

// benchSpinner is a spin loop's state: call spin in every round. Like
// shmchan's own spinning (WaitSpin), it lets other goroutines run now and
// then but never gives the CPU back to the kernel: on a loaded machine a
// spinner whose peer was preempted burns its time slice, and a sched_yield
// does not help, since the peer waits for another CPU (measured: with a
// yield the ping-pong's median went from 0.1µs to tens of µs under load).
type benchSpinner struct{ n uint64 }

func (s *benchSpinner) spin(ctx context.Context) error {
	s.n++
	if s.n&1023 == 0 {
		runtime.Gosched()
		return ctx.Err()
	}
	return nil
}

func benchRingSize(size, capacity int) int {
	n := benchRingData + size*capacity
	return (n + 4095) &^ 4095
}

// benchRingThroughput: a bare single-producer single-consumer ring over a
// shared mapping, both sides spinning; one copy in, one copy out, the same
// checks as every other row.
func benchRingThroughput(ctx context.Context, e *benchEnv, size int) (benchSample, error) {
	capacity, _ := benchGeometry(size)
	warm := benchWarm(size)
	total := benchRingSize(size, capacity)
	f, mem, err := benchMemfd(total)
	if err != nil {
		return benchSample{}, err
	}
	defer unix.Munmap(mem)
	p, err := e.startPeer(benchPeerSpec{Role: "ring-send", Size: size, Cap: capacity, Warm: warm, Budget: e.cfg.budget, Corrupt: e.corruptAt}, f)
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}
	tail, head, done := benchWord64(mem, benchRingTail), benchWord64(mem, benchRingHead), benchWord64(mem, benchRingDone)
	words := size / 8
	data := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[benchRingData])), capacity*words)
	mask := uint64(capacity - 1)
	out := make([]uint64, words)
	var h, tc uint64
	var sp benchSpinner
	var rerr error
	meter := newBenchMeter(warm, e.cfg.budget, nil)
	for rerr == nil {
		if h == tc {
			if tc = atomic.LoadUint64(tail); h == tc {
				if atomic.LoadUint64(done) != 0 {
					if tc = atomic.LoadUint64(tail); h == tc {
						break // the sender is done, and everything is here
					}
					continue
				}
				rerr = sp.spin(mctx)
				continue
			}
			sp = benchSpinner{}
		}
		i := int(h&mask) * words
		copy(out, data[i:i+words])
		if rerr = benchCheck(out, h, h%benchFullEvery == 0); rerr != nil {
			break
		}
		h++
		benchPublish(head, h)
		meter.got(h)
	}
	meter.stop()
	stop()
	return benchFinishThroughput(p, rerr, h, meter)
}

// benchRingSend is the bare ring's sender.
func benchRingSend(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	total := benchRingSize(s.Size, s.Cap)
	mem, err := benchMapFd(3, total)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	tail, head, done := benchWord64(mem, benchRingTail), benchWord64(mem, benchRingHead), benchWord64(mem, benchRingDone)
	words := s.Size / 8
	data := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[benchRingData])), s.Cap*words)
	capacity, mask := uint64(s.Cap), uint64(s.Cap-1)
	src := make([]uint64, words)
	benchFill(src, 0)
	var hc uint64
	n, err := benchSendLoop(s, func(t uint64) (int, error) {
		if t-hc == capacity {
			var sp benchSpinner
			for hc = atomic.LoadUint64(head); t-hc == capacity; hc = atomic.LoadUint64(head) {
				if err := sp.spin(ctx); err != nil {
					return 0, err
				}
			}
		}
		benchStamp(src, t)
		benchCorrupt(src, t, &s)
		i := int(t&mask) * words
		copy(data[i:i+words], src)
		benchPublish(tail, t+1)
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	atomic.StoreUint64(done, 1)
	return n, nil
}

// benchLineLatency: the cache-line ping-pong. The parent writes an odd
// number into a shared word, the peer spins until it sees it and writes the
// next even number, the parent spins until it sees that. One cache line
// crosses between the cores twice: the floor of any spinning round trip.
func benchLineLatency(ctx context.Context, e *benchEnv, _ int) (benchSample, error) {
	f, mem, err := benchMemfd(4096)
	if err != nil {
		return benchSample{}, err
	}
	defer unix.Munmap(mem)
	p, err := e.startPeer(benchPeerSpec{Role: "line-echo", Budget: e.cfg.latBudget}, f)
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}
	defer stop()
	w := benchWord64(mem, 0)
	var rounds uint64
	s, rerr := benchMeasureRTT(mctx, e, func(seq uint64) error {
		v := 2*seq + 1
		benchPublish(w, v)
		var sp benchSpinner
		for {
			x := atomic.LoadUint64(w)
			if x == v+1 {
				break
			}
			if x != v {
				return benchVerifyf("round trip %d: word is %d, want %d or %d", seq, x, v, v+1)
			}
			if err := sp.spin(mctx); err != nil {
				return err
			}
		}
		rounds++
		return nil
	})
	benchPublish(w, benchLineStop)
	return benchFinishRTT(p, rerr, s, rounds)
}

const benchLineStop = ^uint64(0)

func benchLineEcho(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	mem, err := benchMapFd(3, 4096)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	w := benchWord64(mem, 0)
	for seq := uint64(0); ; seq++ {
		want := 2*seq + 1
		var sp benchSpinner
		for {
			x := atomic.LoadUint64(w)
			if x == want {
				break
			}
			if x == benchLineStop {
				return seq, nil
			}
			if x != want-1 {
				return seq, benchVerifyf("round trip %d: word is %d, want %d", seq, x, want)
			}
			if err := sp.spin(ctx); err != nil {
				return seq, err
			}
		}
		benchPublish(w, want+1)
	}
}

// benchFutexLatency: the raw futex ping-pong, the floor of a round trip
// in which both sides sleep: the parent stores an odd number and wakes, the
// peer (asleep in FUTEX_WAIT) wakes, stores the next even number and wakes
// the parent, asleep in FUTEX_WAIT in turn. No spinning at all.
func benchFutexLatency(ctx context.Context, e *benchEnv, _ int) (benchSample, error) {
	f, mem, err := benchMemfd(4096)
	if err != nil {
		return benchSample{}, err
	}
	defer unix.Munmap(mem)
	p, err := e.startPeer(benchPeerSpec{Role: "futex-echo", Budget: e.cfg.latBudget}, f)
	if err != nil {
		return benchSample{}, err
	}
	if err := p.ready(); err != nil {
		return benchSample{}, err
	}
	mctx, stop, err := p.start(ctx)
	if err != nil {
		return benchSample{}, err
	}
	defer stop()
	w := benchWord32(mem, benchFutexOff)
	var rounds uint64
	s, rerr := benchMeasureRTT(mctx, e, func(seq uint64) error {
		v := uint32(2*seq + 1)
		atomic.StoreUint32(w, v)
		if _, err := futex.Wake(w, 1); err != nil {
			return err
		}
		for {
			x := atomic.LoadUint32(w)
			if x == v+1 {
				break
			}
			if x != v {
				return benchVerifyf("round trip %d: word is %d, want %d or %d", seq, x, v, v+1)
			}
			if err := futex.Wait(w, v, 50*time.Millisecond); errors.Is(err, futex.ErrTimeout) {
				if err := mctx.Err(); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		rounds++
		return nil
	})
	atomic.StoreUint32(w, benchFutexStop)
	_, _ = futex.Wake(w, 1)
	return benchFinishRTT(p, rerr, s, rounds)
}

const benchFutexStop = ^uint32(0)

func benchFutexEcho(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
	mem, err := benchMapFd(3, 4096)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	w := benchWord32(mem, benchFutexOff)
	for seq := uint64(0); ; seq++ {
		want := uint32(2*seq + 1)
		for {
			x := atomic.LoadUint32(w)
			if x == want {
				break
			}
			if x == benchFutexStop {
				return seq, nil
			}
			if x != want-1 {
				return seq, benchVerifyf("round trip %d: word is %d, want %d", seq, x, want)
			}
			if err := futex.Wait(w, x, 50*time.Millisecond); errors.Is(err, futex.ErrTimeout) {
				if err := ctx.Err(); err != nil {
					return seq, err
				}
			} else if err != nil {
				return seq, err
			}
		}
		atomic.StoreUint32(w, want+1)
		if _, err := futex.Wake(w, 1); err != nil {
			return seq, err
		}
	}
}
