package bench

// The targets of issues 5 and 12, checked against a run: ratios of the medians
// (and of the best runs) of the cells they compare.

import (
	"fmt"
	"math"
	"strings"
)

// target is one of the targets, checked against this run.
type target struct {
	Name     string  `json:"name"`
	Detail   string  `json:"detail"`
	Value    float64 `json:"value"`
	Cmp      string  `json:"cmp"` // ">=" or "<="
	Target   float64 `json:"target"`
	Unit     string  `json:"unit"` // "x" for a ratio
	Measured bool    `json:"measured"`
	Met      bool    `json:"met"`
	// The same from the best run of each side (highest rate, lowest
	// latency or count): what the code does when the machine lets it.
	Best    float64 `json:"best"`
	BestMet bool    `json:"best_met"`
	// Spread is the largest max/min ratio of the cells it compares: above
	// unsteadySpread the runs disagree too much for the ratio to mean much.
	Spread float64 `json:"spread"`
}

// unsteadySpread: a cell whose runs span more than this factor was disturbed.
const unsteadySpread = 4

func (t *target) judge() {
	ok := func(v float64) bool {
		return (t.Cmp == ">=" && v >= t.Target) || (t.Cmp == "<=" && v <= t.Target)
	}
	t.Met, t.BestMet = ok(t.Value), ok(t.Best)
}

func checkTargets(r *results) []target {
	// rate and lat return the median and the best run of a cell.
	spread := 1.0 // of the cells looked at for the current target
	look := func(s *summary) {
		if s.Min > 0 {
			spread = math.Max(spread, s.Max/s.Min)
		}
	}
	rate := func(key string, size int) (med, best float64, ok bool) {
		if c := r.cell(key, size); c != nil && c.na == "" {
			if s := c.rate(); s != nil {
				look(s)
				return s.Median, s.Max, true
			}
		}
		return 0, 0, false
	}
	lat := func(key string, i int) (med, best float64, ok bool) {
		if c := r.cell(key, 16); c != nil {
			if s := c.lat(i); s != nil {
				look(s)
				return s.Median, s.Min, true
			}
		}
		return 0, 0, false
	}
	var ts []target
	ratio := func(name, cmp string, want float64, a, aBest, b, bBest float64, ok bool, detail string) {
		t := target{Name: name, Cmp: cmp, Target: want, Unit: "x", Measured: ok && b > 0 && bBest > 0, Detail: detail, Spread: spread}
		if t.Measured {
			t.Value, t.Best = a/b, aBest/bBest
			t.judge()
		}
		ts = append(ts, t)
		spread = 1
	}
	rr := func(name string, want float64, ka string, sa int, kb string, sb int) {
		a, aBest, okA := rate(ka, sa)
		b, bBest, okB := rate(kb, sb)
		ratio(name, ">=", want, a, aBest, b, bBest, okA && okB, fmt.Sprintf("%s ÷ %s values/s", si(a), si(b)))
	}
	rr("16 B, one per call: shmchan futex ÷ pipe", 30, "shm-futex", 16, "pipe", 16)
	rr("16 B, one per call: shmchan futex ÷ Go channel", 3, "shm-futex", 16, "gochan", 16)
	rr("16 B, batched: shmchan SendBatch ÷ Go channel", 5, "shm-batch", 16, "gochan", 16)
	rr("16 B, one per call: shmchan futex ÷ bare ring", 0.8, "shm-futex", 16, "bare-ring", 16)
	rr("1 MiB, copying: shmchan futex ÷ copy()", 1, "shm-futex", 1<<20, "copy", 1<<20)
	rr("1 MiB, in place: SendFunc/RecvFunc ÷ copy()", 1, "shm-inplace", 1<<20, "copy", 1<<20)
	rr("1 MiB: in place ÷ copying (faster still)", 1, "shm-inplace", 1<<20, "shm-futex", 1<<20)
	rr("16 B, MPSC: 4 sending processes ÷ 2 (issue 12)", 0.5, "fan-mpsc4", 16, "fan-mpsc2", 16)
	rr("16 B, 4 sending processes: shmchan MPSC ÷ POSIX mq (issue 12)", 5, "fan-mpsc4", 16, "fan-mqw4", 16)
	ll := func(name string, want float64, ka string, ia int, kb string, ib int) {
		a, aBest, okA := lat(ka, ia)
		b, bBest, okB := lat(kb, ib)
		ratio(name, "<=", want, a, aBest, b, bBest, okA && okB, fmt.Sprintf("%s ÷ %s", micros(a), micros(b)))
	}
	ll("round trip p50: shmchan spin ÷ cache-line ping-pong", 2, "rt-shm-spin", 0, "rt-cacheline", 0)
	ll("round trip p99: shmchan spin ÷ cache-line ping-pong", 3, "rt-shm-spin", 2, "rt-cacheline", 2)
	ll("sleeping round trip p50: shmchan futex ÷ raw futex", 1.2, "rt-shm-futex-sleep", 0, "rt-futex-raw", 0)
	// Below every kernel transport: against the fastest of them.
	var best, bestBest float64
	bestName, okB := "", false
	for _, k := range []string{"rt-posix-mq", "rt-pipe", "rt-unix"} {
		if v, vb, ok := lat(k, 0); ok {
			if !okB || v < best {
				best, bestName = v, k
			}
			if !okB || vb < bestBest {
				bestBest = vb
			}
			okB = true
		}
	}
	a, aBest, okA := lat("rt-shm-futex-sleep", 0)
	ratio("sleeping round trip p50: shmchan futex ÷ fastest kernel transport", "<", 1, a, aBest, best, bestBest, okA && okB,
		fmt.Sprintf("%s ÷ %s (%s)", micros(a), micros(best), strings.TrimPrefix(bestName, "rt-")))
	if t := &ts[len(ts)-1]; t.Measured {
		t.Met, t.BestMet = t.Value < 1, t.Best < 1
	}
	per := func(name string, key string, size int, f func(*cell) *summary) {
		t := target{Name: name, Cmp: "<=", Target: 0.001, Unit: "/value"}
		if c := r.cell(key, size); c != nil {
			if s := f(c); s != nil {
				t.Measured, t.Value, t.Best = true, s.Median, s.Min
				t.judge()
				t.Detail = fmt.Sprintf("runs: %s", joinPerValue(s.Runs))
			}
		}
		ts = append(ts, t)
	}
	per("16 B, both sides busy: wait system calls per value, shmchan futex", "shm-futex", 16, (*cell).syscalls)
	per("16 B, both sides busy: allocations per value, shmchan futex", "shm-futex", 16, (*cell).allocs)
	return ts
}
