package bench

// What a run produces: a sample per measurement, the cells that collect
// them, their median/min/max, and a description of the machine.

import (
	"bufio"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A sample is one measurement of one cell.
type sample struct {
	Rate     float64    // values (or round trips) per second
	Syscalls float64    // wait system calls (futex or mq) per value or round trip; -1: not counted
	Allocs   float64    // heap allocations per value in the parent; -1: not counted
	Lat      [4]float64 // round trip p50, p90, p99, p99.9 in ns (latency rows)
	N        uint64     // values or round trips measured
}

func uncounted(rate float64, n uint64) sample {
	return sample{Rate: rate, Syscalls: -1, Allocs: -1, N: n}
}

// A cell is one row at one size: why it cannot be measured, or its samples.
type cell struct {
	row  *row
	size int
	na   string
	runs []sample
}

// results is everything a run measured.
type results struct {
	cfg     Config
	cells   []*cell
	cut     int // runs planned, when the time limit cut them short; else 0
	machine machineInfo
	elapsed time.Duration
	started time.Time
	loadEnd string
	targets []target
}

func (r *results) cell(key string, size int) *cell {
	for _, c := range r.cells {
		if c.row.key == key && c.size == size {
			return c
		}
	}
	return nil
}

// summary is the median, min and max of some values.
type summary struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

func summarize(vs []float64) *summary {
	if len(vs) == 0 {
		return nil
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &summary{Median: med, Min: s[0], Max: s[len(s)-1], Runs: vs}
}

func (c *cell) stat(f func(sample) float64) *summary {
	var vs []float64
	for _, s := range c.runs {
		if v := f(s); v >= 0 {
			vs = append(vs, v)
		}
	}
	return summarize(vs)
}

func (c *cell) rate() *summary { return c.stat(func(s sample) float64 { return s.Rate }) }

func (c *cell) lat(i int) *summary {
	return c.stat(func(s sample) float64 { return s.Lat[i] })
}

func (c *cell) syscalls() *summary {
	return c.stat(func(s sample) float64 { return s.Syscalls })
}

func (c *cell) allocs() *summary {
	return c.stat(func(s sample) float64 { return s.Allocs })
}

// machineInfo describes where the numbers come from.
type machineInfo struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	Virtual    bool   `json:"virtual"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	LoadStart  string `json:"load_start"`
}

func describeMachine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version(), Arch: runtime.GOOS + "/" + runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadStart: loadAvg(), CPU: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch {
			case !ok:
			case k == "model name" && m.CPU == "unknown CPU":
				m.CPU = v
			case k == "flags" && strings.Contains(" "+v+" ", " hypervisor "):
				m.Virtual = true
			}
		}
		f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
