package bench

// The timing shared by the rows: the sender's loop (sendLoop), the
// receiver's clock (meter), round trips (measureRTT), and the arithmetic.

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// sendLoop drives a sender: send(seq) sends value seq (or a batch
// starting there) and returns how many values it sent. It sends the
// warm-up (at most half the time budget on it), then goes on for the time
// budget. The clock is watched by timers that raise flags, so the loop
// pays one load per value for it, and a slow transport cannot overshoot.
func sendLoop(s job, send func(seq uint64) (int, error)) (uint64, error) {
	return sendLoopMarked(s, send, nil)
}

// sendLoopMarked is sendLoop that calls warmed (if not nil) with the
// number of values sent when the warm-up is over, just before the timed
// part: the fan-out rows, whose sender is the parent, start their clock
// there.
func sendLoopMarked(s job, send func(seq uint64) (int, error), warmed func(sent uint64)) (uint64, error) {
	var warmOver, over atomic.Bool
	t := time.AfterFunc(s.Budget/2, func() { warmOver.Store(true) })
	defer t.Stop()
	var seq uint64
	for seq < s.Warm && !warmOver.Load() {
		k, err := send(seq)
		seq += uint64(k)
		if err != nil {
			return seq, err
		}
	}
	if warmed != nil {
		warmed(seq)
	}
	t2 := time.AfterFunc(s.Budget, func() { over.Store(true) })
	defer t2.Stop()
	for !over.Load() {
		k, err := send(seq)
		seq += uint64(k)
		if err != nil {
			return seq, err
		}
	}
	return seq, nil
}

// meter times the receiving side of a throughput run: the clock starts
// when the warm-up is over (warm values arrived, or half the time budget
// passed since the start) and stops at the end.
type meter struct {
	warm     uint64
	warmOver atomic.Bool
	timer    *time.Timer
	on       bool
	base     uint64
	t0, t1   time.Time
	onStart  func() // called just before the clock starts
}

func newMeter(warm uint64, budget time.Duration, onStart func()) *meter {
	m := &meter{warm: warm, onStart: onStart}
	m.timer = time.AfterFunc(budget/2, func() { m.warmOver.Store(true) })
	return m
}

// got is called after each value with the number received so far.
func (m *meter) got(n uint64) {
	if !m.on && (n >= m.warm || m.warmOver.Load()) {
		m.start(n)
	}
}

func (m *meter) start(n uint64) {
	if m.onStart != nil {
		m.onStart()
	}
	m.on, m.base, m.t0 = true, n, time.Now()
}

// stop stops the clock after n values.
func (m *meter) stop() { m.t1 = time.Now(); m.timer.Stop() }

// result returns how many values were measured, and the rate.
func (m *meter) result(n uint64) (uint64, float64, error) {
	if !m.on {
		return 0, 0, fmt.Errorf("only %d values arrived, fewer than the warm-up (%d)", n, m.warm)
	}
	rate, err := perSecond(n-m.base, m.t1.Sub(m.t0))
	return n - m.base, rate, err
}

// measureRTT runs round trips until it has e.cfg.LatencySamples of them
// or the latency budget is spent (after a warm-up that is not recorded).
// rt does one round trip of value seq and checks the echo.
func measureRTT(ctx context.Context, e *env, rt func(seq uint64) error) (sample, error) {
	const warm = 200
	var warmOver atomic.Bool
	wt := time.AfterFunc(e.cfg.LatencyBudget/4, func() { warmOver.Store(true) })
	defer wt.Stop()
	var seq uint64
	for ; seq < warm && !warmOver.Load(); seq++ {
		if err := rt(seq); err != nil {
			return sample{}, err
		}
	}
	ds := make([]float64, 0, e.cfg.LatencySamples)
	var over atomic.Bool
	timer := time.AfterFunc(e.cfg.LatencyBudget, func() { over.Store(true) })
	defer timer.Stop()
	start := time.Now()
	for len(ds) < cap(ds) && (len(ds) < 100 || !over.Load()) {
		if len(ds)&63 == 0 {
			if err := ctx.Err(); err != nil {
				return sample{}, err
			}
		}
		t := time.Now()
		if err := rt(seq); err != nil {
			return sample{}, err
		}
		ds = append(ds, float64(time.Since(t).Nanoseconds()))
		seq++
	}
	total := time.Since(start)
	n := uint64(len(ds))
	s := uncounted(float64(n)/total.Seconds(), n)
	s.Lat = percentiles(ds)
	return s, nil
}

// perSecond turns a count over an interval into a rate, refusing intervals
// too short to mean anything.
func perSecond(n uint64, d time.Duration) (float64, error) {
	if n == 0 || d <= 0 {
		return 0, fmt.Errorf("measured %d values in %v: nothing to divide", n, d)
	}
	return float64(n) / d.Seconds(), nil
}

// mallocs returns the process's allocation count so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// percentiles returns p50, p90, p99 and p99.9 of ds (which it sorts).
func percentiles(ds []float64) [4]float64 {
	sort.Float64s(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return [4]float64{at(0.50), at(0.90), at(0.99), at(0.999)}
}
