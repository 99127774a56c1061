package bench

// The in-process references: a buffered Go channel between two goroutines,
// and copy() on one core.

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// goChanNA: a Go channel's element must be smaller than 64 KiB.
func goChanNA(size int) string {
	if size >= 64<<10 {
		return "Go channel: elements must be smaller than 64 KiB"
	}
	return ""
}

// goChanRun is the run function of the Go channel throughput row.
func goChanRun(ctx context.Context, e *env, size int) (sample, error) {
	f := opsFor(size).goChan
	if f == nil {
		return sample{}, fmt.Errorf("%s", goChanNA(size))
	}
	return f(ctx, e, size)
}

// goChanThroughput: two goroutines, a channel of T with the capacity
// the shmchan rows have, the same values and checks.
func goChanThroughput[T any](ctx context.Context, e *env, size int) (sample, error) {
	capacity, _ := geometry(size)
	warm := warmCount(size)
	ch := make(chan T, capacity)
	sent := make(chan uint64, 1)
	spec := job{Size: size, Warm: warm, Budget: e.cfg.Budget, Corrupt: e.cfg.corruptAt}
	go func() {
		v := new(T)
		w := asWords(v)
		fill(w, 0)
		n, _ := sendLoop(spec, func(seq uint64) (int, error) {
			stamp(w, seq)
			corrupt(w, seq, &spec)
			ch <- *v
			return 1, nil
		})
		close(ch)
		sent <- n
	}()
	var seq, m0 uint64
	var rerr error
	meter := newMeter(warm, e.cfg.Budget, func() { m0 = mallocs() })
	for v := range ch {
		if rerr = check(asWords(&v), seq, seq%fullEvery == 0); rerr != nil {
			break
		}
		seq++
		meter.got(seq)
	}
	meter.stop()
	m1 := mallocs()
	if rerr != nil {
		go func() {
			for range ch {
			}
		}()
		return sample{}, rerr
	}
	if n := <-sent; n != seq {
		return sample{}, verifyf("sent %d values, %d arrived", n, seq)
	}
	n, rate, err := meter.result(seq)
	if err != nil {
		return sample{}, err
	}
	s := uncounted(rate, n)
	s.Allocs = float64(m1-m0) / float64(n)
	return s, nil
}

// goChanLatency: round trips between two goroutines over two
// channels of one element.
func goChanLatency(ctx context.Context, e *env, _ int) (sample, error) {
	ping, pong := make(chan [2]uint64, 1), make(chan [2]uint64, 1)
	echoErr := make(chan error, 1)
	go func() {
		var seq uint64
		for v := range ping {
			if err := check(v[:], seq, true); err != nil {
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
	s, err := measureRTT(ctx, e, func(seq uint64) error {
		stamp(v[:], seq)
		ping <- v
		r, ok := <-pong
		if !ok {
			return <-echoErr
		}
		return check(r[:], seq, true)
	})
	close(ping)
	for range pong {
	}
	if err != nil {
		return sample{}, err
	}
	return s, <-echoErr
}

// copyThroughput: copy() of one value from a source buffer into the next slot
// of a destination ring as large as the shmchan region for the size, on
// one core, for the time budget. No check can be done per copy without
// changing what is measured; the ring is checked at the end instead.
func copyThroughput(ctx context.Context, e *env, size int) (sample, error) {
	capacity, _ := geometry(size)
	src := make([]uint64, size/8)
	fill(src, 0)
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
	timer := time.AfterFunc(e.cfg.Budget, func() { over.Store(true) })
	defer timer.Stop()
	t0 := time.Now()
	base := n
	for !over.Load() {
		one()
	}
	t1 := time.Now()
	for i := 0; i < capacity; i++ {
		if err := check(dst[i*words:(i+1)*words], 0, true); err != nil {
			return sample{}, err
		}
	}
	rate, err := perSecond(n-base, t1.Sub(t0))
	if err != nil {
		return sample{}, err
	}
	return uncounted(rate, n-base), nil
}
