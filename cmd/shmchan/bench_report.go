package main

// The rows of the tables, and what is printed and written at the end:
// tables, target ratios, JSON.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan"
)

// benchRows lists every row, in table order. The throughput rows run at
// every size, the latency rows at 16 bytes.
func benchRows() []*benchRow {
	return []*benchRow{
		{key: "shm-futex", name: "shmchan, futex wait (default)", section: benchSingle, shm: true, run: benchShmRun(shmchan.WaitFutex, benchSingle)},
		{key: "shm-spin", name: "shmchan, spin wait", section: benchSingle, shm: true, run: benchShmRun(shmchan.WaitSpin, benchSingle)},
		{key: "shm-mqwait", name: "shmchan, mq wait", section: benchSingle, shm: true, run: benchShmRun(shmchan.WaitMQ, benchSingle)},
		{key: "posix-mq", name: "POSIX mq", section: benchSingle, run: benchMQThroughput, na: benchMQNA},
		{key: "pipe", name: "pipe", section: benchSingle, run: benchStreamThroughput("pipe", false)},
		{key: "unix", name: "Unix stream socket", section: benchSingle, run: benchStreamThroughput("unix", false)},

		{key: "shm-batch", name: "shmchan SendBatch/RecvBatch", section: benchBatch, shm: true, run: benchShmRun(shmchan.WaitFutex, benchBatch)},
		{key: "pipe-batch", name: "pipe, a batch per write", section: benchBatch, run: benchStreamThroughput("pipe", true)},
		{key: "unix-batch", name: "Unix socket, a batch per write", section: benchBatch, run: benchStreamThroughput("unix", true)},

		{key: "shm-inplace", name: "shmchan SendFunc/RecvFunc", section: benchInPlace, shm: true, run: benchShmRun(shmchan.WaitFutex, benchInPlace)},

		{key: "gochan", name: "Go channel (in-process)", section: benchRef, run: benchGoChanRun, na: benchGoChanNA},
		{key: "bare-ring", name: "bare SPSC ring (spin)", section: benchRef, run: benchRingThroughput},
		{key: "copy", name: "copy(), one core", section: benchRef, run: benchCopy},

		{key: "rt-cacheline", name: "cache-line ping-pong (spin floor)", section: benchLatency, run: benchLineLatency},
		{key: "rt-futex-raw", name: "raw futex ping-pong (sleep floor)", section: benchLatency, run: benchFutexLatency},
		{key: "rt-shm-spin", name: "shmchan, spin wait", section: benchLatency, shm: true, run: benchShmLatency(shmchan.WaitSpin, 0)},
		{key: "rt-shm-futex", name: "shmchan, futex wait (spins 50µs first)", section: benchLatency, shm: true, run: benchShmLatency(shmchan.WaitFutex, 0)},
		{key: "rt-shm-futex-sleep", name: "shmchan, futex wait, no spin", section: benchLatency, shm: true, run: benchShmLatency(shmchan.WaitFutex, -1)},
		{key: "rt-shm-mqwait", name: "shmchan, mq wait (spins 50µs first)", section: benchLatency, shm: true, run: benchShmLatency(shmchan.WaitMQ, 0)},
		{key: "rt-shm-mqwait-sleep", name: "shmchan, mq wait, no spin", section: benchLatency, shm: true, run: benchShmLatency(shmchan.WaitMQ, -1)},
		{key: "rt-posix-mq", name: "POSIX mq", section: benchLatency, run: benchMQLatency},
		{key: "rt-pipe", name: "pipe (two)", section: benchLatency, run: benchStreamLatency("pipe")},
		{key: "rt-unix", name: "Unix stream socket", section: benchLatency, run: benchStreamLatency("unix")},
		{key: "rt-gochan", name: "Go channel (in-process)", section: benchLatency, run: benchGoChanLatency},
	}
}

// benchMachine describes where the numbers come from.
type benchMachine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	Virtual    bool   `json:"virtual"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Arch       string `json:"arch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	LoadStart  string `json:"load_start"`
}

func benchMachineInfo() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Arch: runtime.GOOS + "/" + runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), LoadStart: benchLoadAvg(), CPU: "unknown CPU"}
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

// benchLoadAvg returns the 1, 5 and 15 minute load averages.
func benchLoadAvg() string {
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

// benchStats is the median, min and max of some values.
type benchStats struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

func benchStatOf(vs []float64) *benchStats {
	if len(vs) == 0 {
		return nil
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &benchStats{Median: med, Min: s[0], Max: s[len(s)-1], Runs: vs}
}

func (c *benchCell) stat(f func(benchSample) float64) *benchStats {
	var vs []float64
	for _, s := range c.runs {
		if v := f(s); v >= 0 {
			vs = append(vs, v)
		}
	}
	return benchStatOf(vs)
}

func (c *benchCell) rate() *benchStats { return c.stat(func(s benchSample) float64 { return s.Rate }) }
func (c *benchCell) lat(i int) *benchStats {
	return c.stat(func(s benchSample) float64 { return s.Lat[i] })
}
func (c *benchCell) syscalls() *benchStats {
	return c.stat(func(s benchSample) float64 { return s.Syscalls })
}
func (c *benchCell) allocs() *benchStats {
	return c.stat(func(s benchSample) float64 { return s.Allocs })
}

// benchTarget is one of the targets, checked against this run.
type benchTarget struct {
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
	// benchUnsteady the runs disagree too much for the ratio to mean much.
	Spread float64 `json:"spread"`
}

// benchUnsteady: a cell whose runs span more than this factor was disturbed.
const benchUnsteady = 4

func (t *benchTarget) judge() {
	ok := func(v float64) bool {
		return (t.Cmp == ">=" && v >= t.Target) || (t.Cmp == "<=" && v <= t.Target)
	}
	t.Met, t.BestMet = ok(t.Value), ok(t.Best)
}

func benchTargets(r *benchResults) []benchTarget {
	// rate and lat return the median and the best run of a cell.
	spread := 1.0 // of the cells looked at for the current target
	look := func(s *benchStats) {
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
	var ts []benchTarget
	ratio := func(name, cmp string, target float64, a, aBest, b, bBest float64, ok bool, detail string) {
		t := benchTarget{Name: name, Cmp: cmp, Target: target, Unit: "x", Measured: ok && b > 0 && bBest > 0, Detail: detail, Spread: spread}
		if t.Measured {
			t.Value, t.Best = a/b, aBest/bBest
			t.judge()
		}
		ts = append(ts, t)
		spread = 1
	}
	rr := func(name string, target float64, ka string, sa int, kb string, sb int) {
		a, aBest, okA := rate(ka, sa)
		b, bBest, okB := rate(kb, sb)
		ratio(name, ">=", target, a, aBest, b, bBest, okA && okB, fmt.Sprintf("%s ÷ %s values/s", benchSI(a), benchSI(b)))
	}
	rr("16 B, one per call: shmchan futex ÷ pipe", 30, "shm-futex", 16, "pipe", 16)
	rr("16 B, one per call: shmchan futex ÷ Go channel", 3, "shm-futex", 16, "gochan", 16)
	rr("16 B, batched: shmchan SendBatch ÷ Go channel", 5, "shm-batch", 16, "gochan", 16)
	rr("16 B, one per call: shmchan futex ÷ bare ring", 0.8, "shm-futex", 16, "bare-ring", 16)
	rr("1 MiB, copying: shmchan futex ÷ copy()", 1, "shm-futex", 1<<20, "copy", 1<<20)
	rr("1 MiB, in place: SendFunc/RecvFunc ÷ copy()", 1, "shm-inplace", 1<<20, "copy", 1<<20)
	rr("1 MiB: in place ÷ copying (faster still)", 1, "shm-inplace", 1<<20, "shm-futex", 1<<20)
	ll := func(name string, target float64, ka string, ia int, kb string, ib int) {
		a, aBest, okA := lat(ka, ia)
		b, bBest, okB := lat(kb, ib)
		ratio(name, "<=", target, a, aBest, b, bBest, okA && okB, fmt.Sprintf("%s ÷ %s", benchMicros(a), benchMicros(b)))
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
		fmt.Sprintf("%s ÷ %s (%s)", benchMicros(a), benchMicros(best), strings.TrimPrefix(bestName, "rt-")))
	if t := &ts[len(ts)-1]; t.Measured {
		t.Met, t.BestMet = t.Value < 1, t.Best < 1
	}
	per := func(name string, key string, size int, f func(*benchCell) *benchStats) {
		t := benchTarget{Name: name, Cmp: "<=", Target: 0.001, Unit: "/value"}
		if c := r.cell(key, size); c != nil {
			if s := f(c); s != nil {
				t.Measured, t.Value, t.Best = true, s.Median, s.Min
				t.judge()
				t.Detail = fmt.Sprintf("runs: %s", benchJoinPerValue(s.Runs))
			}
		}
		ts = append(ts, t)
	}
	per("16 B, both sides busy: wait system calls per value, shmchan futex", "shm-futex", 16, (*benchCell).syscalls)
	per("16 B, both sides busy: allocations per value, shmchan futex", "shm-futex", 16, (*benchCell).allocs)
	return ts
}

func benchJoinPerValue(vs []float64) string {
	var s []string
	for _, v := range vs {
		s = append(s, benchPerValue(v))
	}
	return strings.Join(s, " ")
}

// benchSI formats a rate with three significant digits and a unit prefix.
func benchSI(v float64) string {
	for _, u := range []struct {
		f float64
		s string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.f {
			return benchSig3(v/u.f) + u.s
		}
	}
	return benchSig3(v)
}

func benchSig3(x float64) string {
	switch {
	case x >= 99.95:
		return fmt.Sprintf("%.0f", x)
	case x >= 9.995:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// benchRange formats min..max, with the unit once when both share it.
func benchRange(lo, hi float64) string {
	a, b := benchSI(lo), benchSI(hi)
	if len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] && strings.ContainsAny(a[len(a)-1:], "kMG") {
		a = a[:len(a)-1]
	}
	return a + ".." + b
}

func benchBandwidth(bps float64) string {
	if bps >= 1e9 {
		return benchSig3(bps/1e9) + " GB/s"
	}
	return benchSig3(bps/1e6) + " MB/s"
}

// benchMicros formats nanoseconds as microseconds.
func benchMicros(ns float64) string {
	us := ns / 1000
	switch {
	case us >= 100:
		return fmt.Sprintf("%.0fµs", us)
	case us >= 10:
		return fmt.Sprintf("%.1fµs", us)
	}
	return fmt.Sprintf("%.2fµs", us)
}

func benchPerValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.0001:
		return "<0.0001"
	case v < 1:
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// benchTable prints rows of cells in columns: the first left-aligned, the
// others right-aligned. A row with one cell is a heading.
func benchTable(w io.Writer, rows [][]string) {
	var width []int
	for _, r := range rows {
		if len(r) == 1 {
			continue
		}
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		if len(r) == 1 {
			fmt.Fprintln(w, r[0])
			continue
		}
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("   " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

var benchSectionTitles = map[string]string{
	benchSingle:  "one value per call (shmchan Sender.Send/Receiver.Recv, mq_send/mq_receive, write/read)",
	benchBatch:   "batched (values per call: %s)",
	benchInPlace: "in place (SendFunc/RecvFunc: written and read in the slot)",
	benchRef:     "references",
}

func benchPrint(w io.Writer, r *benchResults) {
	m := r.machine
	virt := ""
	if m.Virtual {
		virt = ", virtual machine"
	}
	fmt.Fprintf(w, "shmchan bench: %s, %d CPUs%s, Linux %s, %s %s, GOMAXPROCS %d\n", m.CPU, m.CPUs, virt, m.Kernel, m.Go, m.Arch, m.GOMAXPROCS)
	cut := ""
	if r.cut > 0 {
		cut = fmt.Sprintf(" (of %d planned: time limit)", r.cut)
	}
	fmt.Fprintf(w, "%d runs%s, rows interleaved, %v per throughput measurement; load average %s at start, %s at end; %.0fs in all\n",
		r.cfg.runs, cut, r.cfg.budget, m.LoadStart, r.loadEnd, r.elapsed.Seconds())
	fmt.Fprintf(w, "Every value checked on receipt (sequence, middle and last words; every %dth in full). Sender and receiver are separate processes except where marked in-process.\n", benchFullEvery)

	notes := map[string]int{}
	var noteList []string
	na := func(reason string) string {
		n, ok := notes[reason]
		if !ok {
			noteList = append(noteList, reason)
			n = len(noteList)
			notes[reason] = n
		}
		return fmt.Sprintf("n/a [%d]", n)
	}
	sizes := r.cfg.sizes
	header := []string{""}
	for _, s := range sizes {
		header = append(header, benchSizeName(s))
	}
	var batches []string
	for _, s := range sizes {
		_, b := benchGeometry(s)
		batches = append(batches, fmt.Sprint(b))
	}

	// Throughput: msg/s with ranges, then MB/s.
	for _, view := range []string{"msg/s", "MB/s"} {
		fmt.Fprintln(w)
		if view == "msg/s" {
			fmt.Fprintf(w, "Throughput, values per second: median (min..max) of %d runs\n", r.cfg.runs)
		} else {
			fmt.Fprintln(w, "Throughput, bytes per second (median; 1 MB = 10^6 bytes)")
		}
		rows := [][]string{header}
		section := ""
		for _, row := range benchRows() {
			if row.section == benchLatency {
				continue
			}
			line := []string{"  " + row.name}
			any := false
			for _, size := range sizes {
				c := r.cell(row.key, size)
				switch {
				case c == nil:
					line = append(line, "-")
				case c.na != "":
					line = append(line, na(c.na))
					any = true
				default:
					any = true
					s := c.rate()
					if s == nil {
						line = append(line, "-")
					} else if view == "msg/s" {
						line = append(line, fmt.Sprintf("%s (%s)", benchSI(s.Median), benchRange(s.Min, s.Max)))
					} else {
						line = append(line, benchBandwidth(s.Median*float64(size)))
					}
				}
			}
			if !any {
				continue
			}
			if row.section != section {
				section = row.section
				title := benchSectionTitles[section]
				if section == benchBatch {
					title = fmt.Sprintf(title, strings.Join(batches, ", "))
				}
				rows = append(rows, []string{title})
			}
			rows = append(rows, line)
		}
		benchTable(w, rows)
	}

	// System calls and allocations of the shmchan rows.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "shmchan, per value (median): wait system calls (wake-ups + sleeps, both processes) / heap allocations (receiving process)")
	rows := [][]string{header}
	for _, row := range benchRows() {
		if !row.shm || row.section == benchLatency {
			continue
		}
		line := []string{"  " + row.name}
		any := false
		for _, size := range sizes {
			c := r.cell(row.key, size)
			if c == nil || c.na != "" || len(c.runs) == 0 {
				line = append(line, "-")
				continue
			}
			any = true
			sc, al := c.syscalls(), c.allocs()
			cell := "-"
			if sc != nil && al != nil {
				cell = benchPerValue(sc.Median) + " / " + benchPerValue(al.Median)
			}
			line = append(line, cell)
		}
		if any {
			rows = append(rows, line)
		}
	}
	benchTable(w, rows)

	// Latency.
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Round trip of a 16-byte value (ping, echo): median of %d runs, p50 with min..max\n", r.cfg.runs)
	rows = [][]string{{"", "p50", "p90", "p99", "p99.9", "syscalls/rt", "allocs/rt"}}
	for _, row := range benchRows() {
		if row.section != benchLatency {
			continue
		}
		c := r.cell(row.key, 16)
		if c == nil || len(c.runs) == 0 {
			continue
		}
		p50 := c.lat(0)
		line := []string{"  " + row.name, fmt.Sprintf("%s (%s..%s)", benchMicros(p50.Median), strings.TrimSuffix(benchMicros(p50.Min), "µs"), benchMicros(p50.Max))}
		for i := 1; i < 4; i++ {
			line = append(line, benchMicros(c.lat(i).Median))
		}
		for _, s := range []*benchStats{c.syscalls(), c.allocs()} {
			if s == nil {
				line = append(line, "-")
			} else {
				line = append(line, benchPerValue(s.Median))
			}
		}
		rows = append(rows, line)
	}
	benchTable(w, rows)

	if len(noteList) > 0 {
		fmt.Fprintln(w)
		for i, n := range noteList {
			fmt.Fprintf(w, "[%d] %s\n", i+1, n)
		}
	}

	// Targets.
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets (issue 5): the ratio of the medians above, and of the best runs (highest rate, lowest time) in brackets")
	rows = [][]string{{"", "median", "(best)", "target", "verdict", ""}}
	unsteady := 0
	for _, t := range r.targets {
		line := []string{"  " + t.Name}
		if !t.Measured {
			rows = append(rows, append(line, "not measured", "", "", "", ""))
			continue
		}
		cmp := map[string]string{">=": "≥", "<=": "≤", "<": "<"}[t.Cmp]
		detail := t.Detail
		if t.Spread > benchUnsteady {
			detail += fmt.Sprintf("; UNSTEADY: runs %s× apart", benchSig3(t.Spread))
			unsteady++
		}
		rows = append(rows, append(line, benchFormatTarget(t.Value, t.Unit), "("+benchFormatTarget(t.Best, t.Unit)+")",
			cmp+" "+benchFormatTarget(t.Target, t.Unit), benchVerdict(t), detail))
	}
	benchTable(w, rows)
	if unsteady > 0 {
		fmt.Fprintf(w, "UNSTEADY: the runs of a cell in that ratio differ by more than %d×; the machine disturbed it, measure again on a quieter one.\n", benchUnsteady)
	}
	met, best := 0, 0
	for _, t := range r.targets {
		if t.Met {
			met++
		}
		if t.BestMet {
			best++
		}
	}
	fmt.Fprintf(w, "%d of %d targets met on the medians, %d on the best runs", met, len(r.targets), best)
	if l := benchLoadFirst(r.machine.LoadStart); l > float64(r.machine.CPUs)/2 {
		fmt.Fprintf(w, "; the machine was loaded (load average %.1f on %d CPUs), so take the medians as a floor", l, r.machine.CPUs)
	}
	fmt.Fprintln(w)
}

func benchLoadFirst(s string) float64 {
	var l float64
	fmt.Sscan(s, &l)
	return l
}

// benchVerdict says whether a target was met, and if not by how much.
func benchVerdict(t benchTarget) string {
	var v string
	switch {
	case t.Met:
		return "met"
	case t.Unit != "x":
		v = "MISSED"
	case t.Cmp == ">=":
		v = fmt.Sprintf("MISSED, %.0f%% short", 100*(1-t.Value/t.Target))
	case t.Value/t.Target >= 3:
		v = fmt.Sprintf("MISSED, %s× the limit", benchSig3(t.Value/t.Target))
	default:
		v = fmt.Sprintf("MISSED, %.0f%% over", 100*(t.Value/t.Target-1))
	}
	if t.BestMet {
		v += " (best runs: met)"
	}
	return v
}

func benchFormatTarget(v float64, unit string) string {
	if unit == "x" {
		if v >= 10 {
			return fmt.Sprintf("%.0f×", v)
		}
		return fmt.Sprintf("%.2f×", v)
	}
	return benchPerValue(v) + unit
}

// The JSON file.
type benchJSONFile struct {
	Machine benchMachine `json:"machine"`
	Config  struct {
		Runs           int     `json:"runs"`
		RunsPlanned    int     `json:"runs_planned"`
		Quick          bool    `json:"quick"`
		BudgetMS       float64 `json:"budget_ms"`
		LatencyMS      float64 `json:"latency_budget_ms"`
		LatencySamples int     `json:"latency_samples"`
		Sizes          []int   `json:"sizes"`
	} `json:"config"`
	Started    string              `json:"started"`
	ElapsedSec float64             `json:"elapsed_sec"`
	LoadEnd    string              `json:"load_end"`
	Throughput []benchJSONRow      `json:"throughput"`
	Latency    []benchJSONLatency  `json:"latency"`
	Targets    []benchTarget       `json:"targets"`
	Transports map[string][]string `json:"transports"` // section -> keys
}

type benchJSONRow struct {
	Key              string      `json:"key"`
	Name             string      `json:"name"`
	Section          string      `json:"section"`
	Size             int         `json:"size"`
	Batch            int         `json:"batch,omitempty"`
	NA               string      `json:"na,omitempty"`
	MsgPerSec        *benchStats `json:"msg_per_sec,omitempty"`
	MBPerSec         *benchStats `json:"mb_per_sec,omitempty"`
	SyscallsPerValue *benchStats `json:"syscalls_per_value,omitempty"`
	AllocsPerValue   *benchStats `json:"allocs_per_value,omitempty"`
}

type benchJSONLatency struct {
	Key              string      `json:"key"`
	Name             string      `json:"name"`
	P50ns            *benchStats `json:"p50_ns"`
	P90ns            *benchStats `json:"p90_ns"`
	P99ns            *benchStats `json:"p99_ns"`
	P999ns           *benchStats `json:"p999_ns"`
	RoundTripsPerSec *benchStats `json:"round_trips_per_sec"`
	SyscallsPerRT    *benchStats `json:"syscalls_per_round_trip,omitempty"`
	AllocsPerRT      *benchStats `json:"allocs_per_round_trip,omitempty"`
}

func benchJSONOf(r *benchResults) benchJSONFile {
	var f benchJSONFile
	f.Machine = r.machine
	f.Config.Runs, f.Config.RunsPlanned, f.Config.Quick = r.cfg.runs, max(r.cut, r.cfg.runs), r.cfg.quick
	f.Config.BudgetMS = float64(r.cfg.budget) / float64(time.Millisecond)
	f.Config.LatencyMS = float64(r.cfg.latBudget) / float64(time.Millisecond)
	f.Config.LatencySamples, f.Config.Sizes = r.cfg.latSamples, r.cfg.sizes
	f.Started = r.started.UTC().Format(time.RFC3339)
	f.ElapsedSec = math.Round(r.elapsed.Seconds()*10) / 10
	f.LoadEnd = r.loadEnd
	f.Targets = r.targets
	f.Transports = map[string][]string{}
	seen := map[string]bool{}
	for _, c := range r.cells {
		if !seen[c.row.key] {
			seen[c.row.key] = true
			f.Transports[c.row.section] = append(f.Transports[c.row.section], c.row.key)
		}
		if c.row.section == benchLatency {
			f.Latency = append(f.Latency, benchJSONLatency{
				Key: c.row.key, Name: c.row.name,
				P50ns: c.lat(0), P90ns: c.lat(1), P99ns: c.lat(2), P999ns: c.lat(3),
				RoundTripsPerSec: c.rate(), SyscallsPerRT: c.syscalls(), AllocsPerRT: c.allocs(),
			})
			continue
		}
		row := benchJSONRow{Key: c.row.key, Name: c.row.name, Section: c.row.section, Size: c.size, NA: c.na}
		if c.row.section == benchBatch {
			_, row.Batch = benchGeometry(c.size)
		}
		if c.na == "" {
			row.MsgPerSec = c.rate()
			size := float64(c.size)
			row.MBPerSec = c.stat(func(s benchSample) float64 { return s.Rate * size / 1e6 })
			row.SyscallsPerValue, row.AllocsPerValue = c.syscalls(), c.allocs()
		}
		f.Throughput = append(f.Throughput, row)
	}
	return f
}

func benchWriteJSON(path string, r *benchResults) error {
	b, err := json.MarshalIndent(benchJSONOf(r), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
