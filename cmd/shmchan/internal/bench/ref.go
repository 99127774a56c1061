package bench

// The hardware references between two processes: a bare SPSC ring (what
// the hardware allows a ring with one copy in and one out), and the two
// latency floors, a cache-line ping-pong (spinning) and a raw futex
// ping-pong (sleeping).

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

// The shared memory of the bare ring and the ping-pongs: an anonymous
// memfd (no name, nothing to clean up), its descriptor passed to the peer.
const (
	ringTail = 0   // uint64: values published by the sender
	ringHead = 128 // uint64: values consumed by the receiver
	ringDone = 256 // uint64: 1 once the sender has published its last value
	ringData = 512 // slots
	futexOff = 64  // uint32: the raw futex ping-pong's word
)

// newMemfd makes a shared memory object of n bytes and maps it.
func newMemfd(n int) (*os.File, []byte, error) {
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

// mapFd maps all of descriptor fd (the peer's side of newMemfd).
func mapFd(fd int, want int) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size != int64(want) {
		return nil, fmt.Errorf("shared memory of %d bytes, want %d", st.Size, want)
	}
	return unix.Mmap(fd, 0, want, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func word64(mem []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off])) }

func word32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// publish stores v for a peer process that reads it with
// atomic.LoadUint64. On amd64 it is a plain MOV: under x86-TSO a store is
// never reordered with earlier stores, so everything written before it (the
// slot's bytes) is visible to a reader that sees v; and the compiler keeps
// it after those writes, which are a call (memmove) or stores to the same
// kind of memory. It needs no StoreLoad fence because nobody sleeps on the
// ring. Elsewhere it is a sequentially consistent atomic store.
func publish(p *uint64, v uint64) {
	if runtime.GOARCH == "amd64" {
		*p = v
		return
	}
	atomic.StoreUint64(p, v)
}

// spinner is a spin loop's state: call spin in every round. Like
// shmchan's own spinning (WaitSpin), it lets other goroutines run now and
// then but never gives the CPU back to the kernel: on a loaded machine a
// spinner whose peer was preempted burns its time slice, and a sched_yield
// does not help, since the peer waits for another CPU (measured: with a
// yield the ping-pong's median went from 0.1µs to tens of µs under load).
type spinner struct{ n uint64 }

func (s *spinner) spin(ctx context.Context) error {
	s.n++
	if s.n&1023 == 0 {
		runtime.Gosched()
		return ctx.Err()
	}
	return nil
}

func ringSize(size, capacity int) int {
	n := ringData + size*capacity
	return (n + 4095) &^ 4095
}

// ringThroughput: a bare single-producer single-consumer ring over a
// shared mapping, both sides spinning; one copy in, one copy out, the same
// checks as every other row.
func ringThroughput(ctx context.Context, e *env, size int) (sample, error) {
	capacity, _ := geometry(size)
	warm := warmCount(size)
	total := ringSize(size, capacity)
	f, mem, err := newMemfd(total)
	if err != nil {
		return sample{}, err
	}
	defer unix.Munmap(mem)
	p, mctx, stop, err := e.launch(ctx, job{Role: "ring-send", Size: size, Cap: capacity, Warm: warm, Budget: e.cfg.Budget, Corrupt: e.cfg.corruptAt}, nil, f)
	if err != nil {
		return sample{}, err
	}
	tail, head, done := word64(mem, ringTail), word64(mem, ringHead), word64(mem, ringDone)
	words := size / 8
	data := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[ringData])), capacity*words)
	mask := uint64(capacity - 1)
	out := make([]uint64, words)
	var h, tc uint64
	var sp spinner
	var rerr error
	meter := newMeter(warm, e.cfg.Budget, nil)
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
			sp = spinner{}
		}
		i := int(h&mask) * words
		copy(out, data[i:i+words])
		if rerr = check(out, h, h%fullEvery == 0); rerr != nil {
			break
		}
		h++
		publish(head, h)
		meter.got(h)
	}
	meter.stop()
	stop()
	return finishThroughput(p, rerr, h, meter)
}

// ringSend is the bare ring's sender.
func ringSend(ctx context.Context, s job, hs func() error) (uint64, error) {
	total := ringSize(s.Size, s.Cap)
	mem, err := mapFd(3, total)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	tail, head, done := word64(mem, ringTail), word64(mem, ringHead), word64(mem, ringDone)
	words := s.Size / 8
	data := unsafe.Slice((*uint64)(unsafe.Pointer(&mem[ringData])), s.Cap*words)
	capacity, mask := uint64(s.Cap), uint64(s.Cap-1)
	src := make([]uint64, words)
	fill(src, 0)
	var hc uint64
	n, err := sendLoop(s, func(t uint64) (int, error) {
		if t-hc == capacity {
			var sp spinner
			for hc = atomic.LoadUint64(head); t-hc == capacity; hc = atomic.LoadUint64(head) {
				if err := sp.spin(ctx); err != nil {
					return 0, err
				}
			}
		}
		stamp(src, t)
		corrupt(src, t, &s)
		i := int(t&mask) * words
		copy(data[i:i+words], src)
		publish(tail, t+1)
		return 1, nil
	})
	if err != nil {
		return n, err
	}
	atomic.StoreUint64(done, 1)
	return n, nil
}

// lineLatency: the cache-line ping-pong. The parent writes an odd
// number into a shared word, the peer spins until it sees it and writes the
// next even number, the parent spins until it sees that. One cache line
// crosses between the cores twice: the floor of any spinning round trip.
func lineLatency(ctx context.Context, e *env, _ int) (sample, error) {
	f, mem, err := newMemfd(4096)
	if err != nil {
		return sample{}, err
	}
	defer unix.Munmap(mem)
	p, mctx, stop, err := e.launch(ctx, job{Role: "line-echo", Budget: e.cfg.LatencyBudget}, nil, f)
	if err != nil {
		return sample{}, err
	}
	defer stop()
	w := word64(mem, 0)
	var rounds uint64
	s, rerr := measureRTT(mctx, e, func(seq uint64) error {
		v := 2*seq + 1
		publish(w, v)
		var sp spinner
		for {
			x := atomic.LoadUint64(w)
			if x == v+1 {
				break
			}
			if x != v {
				return verifyf("round trip %d: word is %d, want %d or %d", seq, x, v, v+1)
			}
			if err := sp.spin(mctx); err != nil {
				return err
			}
		}
		rounds++
		return nil
	})
	publish(w, lineStop)
	return finishRTT(p, rerr, s, rounds)
}

const lineStop = ^uint64(0)

func lineEcho(ctx context.Context, s job, hs func() error) (uint64, error) {
	mem, err := mapFd(3, 4096)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	w := word64(mem, 0)
	for seq := uint64(0); ; seq++ {
		want := 2*seq + 1
		var sp spinner
		for {
			x := atomic.LoadUint64(w)
			if x == want {
				break
			}
			if x == lineStop {
				return seq, nil
			}
			if x != want-1 {
				return seq, verifyf("round trip %d: word is %d, want %d", seq, x, want)
			}
			if err := sp.spin(ctx); err != nil {
				return seq, err
			}
		}
		publish(w, want+1)
	}
}

// futexLatency: the raw futex ping-pong, the floor of a round trip
// in which both sides sleep: the parent stores an odd number and wakes, the
// peer (asleep in FUTEX_WAIT) wakes, stores the next even number and wakes
// the parent, asleep in FUTEX_WAIT in turn. No spinning at all.
func futexLatency(ctx context.Context, e *env, _ int) (sample, error) {
	f, mem, err := newMemfd(4096)
	if err != nil {
		return sample{}, err
	}
	defer unix.Munmap(mem)
	p, mctx, stop, err := e.launch(ctx, job{Role: "futex-echo", Budget: e.cfg.LatencyBudget}, nil, f)
	if err != nil {
		return sample{}, err
	}
	defer stop()
	w := word32(mem, futexOff)
	var rounds uint64
	s, rerr := measureRTT(mctx, e, func(seq uint64) error {
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
				return verifyf("round trip %d: word is %d, want %d or %d", seq, x, v, v+1)
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
	atomic.StoreUint32(w, futexStop)
	_, _ = futex.Wake(w, 1)
	return finishRTT(p, rerr, s, rounds)
}

const futexStop = ^uint32(0)

func futexEcho(ctx context.Context, s job, hs func() error) (uint64, error) {
	mem, err := mapFd(3, 4096)
	if err != nil {
		return 0, err
	}
	if err := hs(); err != nil {
		return 0, err
	}
	w := word32(mem, futexOff)
	for seq := uint64(0); ; seq++ {
		want := uint32(2*seq + 1)
		for {
			x := atomic.LoadUint32(w)
			if x == want {
				break
			}
			if x == futexStop {
				return seq, nil
			}
			if x != want-1 {
				return seq, verifyf("round trip %d: word is %d, want %d", seq, x, want)
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
