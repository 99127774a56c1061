package main

// shmchan bench: the seed's comparison table (shared memory against a
// message queue, plus pipes, Unix sockets and references), measured live.
//
// Design
//
//   - Cross-process rows run the sender (or echoer) in a second process: the
//     bench re-executes its own binary (os.Executable) with the peer's job in
//     the SHMCHAN_BENCH_PEER environment variable. The parent creates every
//     shared object (regions, queues, pipes, socket pairs, memfds), starts
//     the peer, waits for its "ready", removes the names at once (the peer
//     has them open), says "go", and measures. Pipes, sockets and memfds
//     reach the peer as inherited descriptors (ExtraFiles) and have no name.
//   - Throughput: the peer sends a warm-up (two ring-fulls, or half the
//     time budget if that is shorter), then values for the time budget, then
//     closes; the parent receives and checks every value (bench_value.go)
//     and times from the end of the warm-up to the close. Timers raise
//     flags for the loops, so a slow transport cannot overrun its budget.
//     Latency: the parent sends a 16-byte value and waits for the peer's
//     echo, timing each round trip, up to a number of them or a time.
//   - The shmchan rows also report the channel's wake-ups and sleeps per
//     value (its Stats, both processes) and the receiving process's heap
//     allocations per value (runtime.MemStats), over the timed part.
//   - Every row runs once per repetition, rows interleaved round-robin, so
//     the machine's noise spreads over all of them; the tables show the
//     median with min..max.
//   - Cleanup: every name has the bench's pid in it and is removed as soon
//     as the peer has opened it, and again (with every child killed) on
//     return, error or SIGINT/SIGTERM/SIGHUP. Children also get SIGKILL if
//     the bench dies (Pdeathsig) and exit when their stdin closes.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/mq"
)

const benchUsage = `usage: shmchan bench [-quick] [-runs N] [-limit D] [-time D] [-samples N] [-sizes LIST] [-only REGEXP]
                     [-json FILE] [-chart FILE.svg] [-v]

Measures shmchan against POSIX message queues, pipes and Unix sockets,
across two processes, with an in-process Go channel, copy() and the raw
hardware floors (cache-line and futex ping-pong) as references. Every value
is checked on receipt; a wrong one fails the run.

`

// benchPeerEnv marks a process started by the bench as its peer; the value
// is the peer's job (benchPeerSpec as JSON).
const benchPeerEnv = "SHMCHAN_BENCH_PEER"

// benchPeerExe is the executable run as the peer: "" means this one
// (os.Executable). The tests, whose own executable is the test binary, set
// it to a built shmchan.
var benchPeerExe = ""

// benchCorruptAt, if not 0, makes every sender damage that value on
// purpose; the tests use it to check that the damage is caught.
var benchCorruptAt uint64

// The sizes, and per size the channel capacity (so a region stays within
// about 8 MiB) and the batch length of the batched rows.
var benchAllSizes = []int{16, 256, 4 << 10, 64 << 10, 1 << 20}

func benchGeometry(size int) (capacity, batch int) {
	switch {
	case size <= 256:
		return 1024, 64
	case size <= 4<<10:
		return 256, 32
	case size <= 64<<10:
		return 64, 8
	default:
		return 8, 4
	}
}

// benchWarm is how many values a throughput run sends before the clock
// starts: every slot written twice, so page faults and cold caches are out.
func benchWarm(size int) uint64 {
	c, _ := benchGeometry(size)
	return uint64(2 * c)
}

type benchConfig struct {
	quick      bool
	runs       int
	budget     time.Duration // one throughput measurement
	latBudget  time.Duration // one latency measurement, at most
	latSamples int           // round trips per latency measurement, at most
	sizes      []int
	only       *regexp.Regexp
	jsonPath   string
	chartPath  string
	verbose    bool
	limit      time.Duration // start no run that would end after this; 0: none
}

// runBench is the "bench" command.
func runBench(args []string) int {
	return benchMain(args, os.Stdout, os.Stderr)
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	if spec, ok := os.LookupEnv(benchPeerEnv); ok {
		return benchPeerMain(spec)
	}
	cfg, code, ok := benchParseFlags(args, stderr)
	if !ok {
		return code
	}
	e := &benchEnv{cfg: cfg, clean: newBenchCleaner(), stderr: stderr, corruptAt: benchCorruptAt}
	defer e.clean.all()

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	stopSig := make(chan struct{})
	defer func() { signal.Stop(sigc); close(stopSig) }()
	go func() {
		select {
		case s := <-sigc:
			fmt.Fprintf(stderr, "\nshmchan bench: %v: removing the bench's regions and queues, killing its peers\n", s)
			e.clean.all()
			os.Exit(130)
		case <-stopSig:
		}
	}()

	res, err := benchRun(e)
	if err != nil {
		var ve *benchVerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "\nshmchan bench: !!! %v\nshmchan bench: !!! a value arrived wrong; no result of this run can be trusted\n", err)
		} else {
			fmt.Fprintf(stderr, "\nshmchan bench: %v\n", err)
		}
		return 1
	}
	benchPrint(stdout, res)
	if cfg.jsonPath != "" {
		if err := benchWriteJSON(cfg.jsonPath, res); err != nil {
			fmt.Fprintf(stderr, "shmchan bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "shmchan bench: wrote %s\n", cfg.jsonPath)
	}
	if cfg.chartPath != "" {
		if err := benchWriteChart(cfg.chartPath, res); err != nil {
			fmt.Fprintf(stderr, "shmchan bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "shmchan bench: wrote %s\n", cfg.chartPath)
	}
	return 0
}

func benchParseFlags(args []string, stderr io.Writer) (cfg benchConfig, code int, ok bool) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "smoke run for CI: 3 sizes, 3 runs, short measurements (under 20 s)")
	runs := fs.Int("runs", 0, "repetitions; the tables show the median and min..max (default 5, 3 with -quick)")
	budget := fs.Duration("time", 0, "length of one throughput measurement (default 100ms, 25ms with -quick)")
	samples := fs.Int("samples", 0, "round trips per latency measurement, at most (default 20000, 3000 with -quick)")
	sizes := fs.String("sizes", "", "value sizes, comma-separated, e.g. 16,4k,1m (default 16,256,4k,64k,1m; 16,4k,1m with -quick)")
	only := fs.String("only", "", "measure only the rows whose key or name matches this regular expression")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&cfg.chartPath, "chart", "", "also draw an SVG chart of the results to this file")
	fs.BoolVar(&cfg.verbose, "v", false, "print every measurement on stderr as it is made")
	limit := fs.Duration("limit", 0, "start no further run once the next would end after this; 0: no limit (default 2m30s, 15s with -quick)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, 0, false
		}
		return cfg, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "shmchan bench: unexpected argument %q\n", fs.Arg(0))
		return cfg, 2, false
	}
	cfg.quick = *quick
	cfg.runs, cfg.budget, cfg.latBudget, cfg.latSamples = 5, 100*time.Millisecond, 400*time.Millisecond, 20000
	cfg.sizes, cfg.limit = benchAllSizes, 150*time.Second
	if cfg.quick {
		cfg.runs, cfg.budget, cfg.latBudget, cfg.latSamples = 3, 25*time.Millisecond, 60*time.Millisecond, 3000
		cfg.sizes, cfg.limit = []int{16, 4 << 10, 1 << 20}, 15*time.Second
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["runs"] {
		cfg.runs = *runs
	}
	if set["time"] {
		cfg.budget = *budget
		cfg.latBudget = 4 * *budget
	}
	if set["samples"] {
		cfg.latSamples = *samples
	}
	if set["limit"] {
		cfg.limit = *limit
	}
	if cfg.runs < 1 || cfg.budget <= 0 || cfg.latSamples < 100 {
		fmt.Fprintln(stderr, "shmchan bench: -runs must be ≥ 1, -time > 0, -samples ≥ 100")
		return cfg, 2, false
	}
	if *sizes != "" {
		cfg.sizes = nil
		for _, s := range strings.Split(*sizes, ",") {
			n, err := benchParseSize(s)
			if err != nil {
				fmt.Fprintf(stderr, "shmchan bench: -sizes: %v\n", err)
				return cfg, 2, false
			}
			cfg.sizes = append(cfg.sizes, n)
		}
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "shmchan bench: -only: %v\n", err)
			return cfg, 2, false
		}
		cfg.only = re
	}
	return cfg, 0, true
}

// benchParseSize reads one of the sizes the bench has types for: 16, 256,
// 4k, 64k, 1m (or the same in bytes).
func benchParseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mul := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mul, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mul, t = 1<<20, strings.TrimSuffix(t, "m")
	}
	n, err := strconv.Atoi(t)
	if err == nil {
		n *= mul
		for _, ok := range benchAllSizes {
			if n == ok {
				return n, nil
			}
		}
	}
	return 0, fmt.Errorf("size %q: want one of 16, 256, 4k, 64k, 1m", s)
}

// A benchRow is one line of a table: a transport (and how it is used).
type benchRow struct {
	key     string // stable identifier, used in JSON and by -only
	name    string // what the table shows
	section string // benchSingle, benchBatch, benchInPlace, benchRef, benchLatency
	shm     bool   // a shmchan row: wait system calls and allocations are counted
	// run measures one cell: size is the value size in bytes (16 for latency).
	run func(ctx context.Context, e *benchEnv, size int) (benchSample, error)
	// na says why the row cannot carry a size, "" if it can.
	na func(size int) string
}

const (
	benchSingle  = "single"  // one value per call
	benchBatch   = "batch"   // many values per call
	benchInPlace = "inplace" // SendFunc/RecvFunc
	benchRef     = "ref"     // throughput references
	benchLatency = "latency" // 16-byte round trips
)

// A benchSample is one measurement of one cell.
type benchSample struct {
	Rate     float64    // values (or round trips) per second
	Syscalls float64    // wait system calls (futex or mq) per value or round trip; -1: not counted
	Allocs   float64    // heap allocations per value in the parent; -1: not counted
	Lat      [4]float64 // round trip p50, p90, p99, p99.9 in ns (latency rows)
	N        uint64     // values or round trips measured
}

func benchUncounted(rate float64, n uint64) benchSample {
	return benchSample{Rate: rate, Syscalls: -1, Allocs: -1, N: n}
}

type benchCell struct {
	row  *benchRow
	size int
	na   string
	runs []benchSample
}

// benchResults is everything a run measured.
type benchResults struct {
	cfg     benchConfig
	cells   []*benchCell
	cut     int // runs planned, when the time limit cut them short; else 0
	machine benchMachine
	elapsed time.Duration
	started time.Time
	loadEnd string
	targets []benchTarget
}

func (r *benchResults) cell(key string, size int) *benchCell {
	for _, c := range r.cells {
		if c.row.key == key && c.size == size {
			return c
		}
	}
	return nil
}

// benchPlan lists the cells of a run, in the order each repetition runs them.
func benchPlan(cfg benchConfig) []*benchCell {
	var cells []*benchCell
	for _, row := range benchRows() {
		if cfg.only != nil && !cfg.only.MatchString(row.key) && !cfg.only.MatchString(row.name) {
			continue
		}
		sizes := cfg.sizes
		if row.section == benchLatency {
			sizes = []int{16}
		}
		for _, size := range sizes {
			c := &benchCell{row: row, size: size}
			if row.na != nil {
				c.na = row.na(size)
			}
			cells = append(cells, c)
		}
	}
	return cells
}

func benchRun(e *benchEnv) (*benchResults, error) {
	res := &benchResults{cfg: e.cfg, cells: benchPlan(e.cfg), machine: benchMachineInfo(), started: time.Now()}
	todo := 0
	for _, c := range res.cells {
		if c.na == "" {
			todo++
		}
	}
	if todo == 0 {
		return nil, fmt.Errorf("nothing to measure (check -only and -sizes)")
	}
	tty := benchIsTerminal(e.stderr)
	fmt.Fprintf(e.stderr, "shmchan bench: %d measurements × %d runs, rows interleaved; load average %s\n", todo, e.cfg.runs, res.machine.LoadStart)
	for run := 1; run <= e.cfg.runs; run++ {
		// A loaded machine can make every run slow: rather than overrun
		// the time limit, report the runs made (each covers every row).
		if done := run - 1; done > 0 && e.cfg.limit > 0 {
			spent := time.Since(res.started)
			if spent+spent/time.Duration(done) > e.cfg.limit {
				fmt.Fprintf(e.stderr, "shmchan bench: stopping after %d of %d runs: another would end after the %v limit (-limit)\n", done, e.cfg.runs, e.cfg.limit)
				res.cfg.runs, res.cut = done, e.cfg.runs
				break
			}
		}
		runStart := time.Now()
		i := 0
		for _, c := range res.cells {
			if c.na != "" {
				continue
			}
			i++
			if tty && !e.cfg.verbose {
				fmt.Fprintf(e.stderr, "\r\033[K  run %d/%d [%d/%d] %s, %s", run, e.cfg.runs, i, todo, c.row.name, benchSizeName(c.size))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+20*e.cfg.budget+2*e.cfg.latBudget)
			t := time.Now()
			s, err := c.row.run(ctx, e, c.size)
			cancel()
			if e.cfg.verbose && err == nil {
				what := benchSI(s.Rate) + " values/s"
				if c.row.section == benchLatency {
					what = "p50 " + benchMicros(s.Lat[0]) + ", p99 " + benchMicros(s.Lat[2])
				}
				fmt.Fprintf(e.stderr, "  run %d/%d [%d/%d] %s, %s: %s (%d measured; %.0fms)\n",
					run, e.cfg.runs, i, todo, c.row.name, benchSizeName(c.size), what, s.N, float64(time.Since(t).Microseconds())/1000)
			}
			if err != nil {
				if tty {
					fmt.Fprintln(e.stderr)
				}
				return nil, fmt.Errorf("%s, %s: %w", c.row.name, benchSizeName(c.size), err)
			}
			c.runs = append(c.runs, s)
		}
		if tty && !e.cfg.verbose {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
		fmt.Fprintf(e.stderr, "  run %d/%d done in %.1fs\n", run, e.cfg.runs, time.Since(runStart).Seconds())
	}
	res.elapsed = time.Since(res.started)
	res.loadEnd = benchLoadAvg()
	res.targets = benchTargets(res)
	return res, nil
}

func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func benchSizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// benchEnv is what the measurements share: configuration, names, cleanup.
type benchEnv struct {
	cfg     benchConfig
	clean   *benchCleaner
	stderr  io.Writer
	nameSeq atomic.Int64

	corruptAt uint64 // passed to senders as benchPeerSpec.Corrupt
}

// newName returns a name for a region or queue that no other process
// uses: it holds the bench's pid.
func (e *benchEnv) newName(kind string) string {
	return fmt.Sprintf("shmchan-bench-%d-%s%d", os.Getpid(), kind, e.nameSeq.Add(1))
}

// benchCleaner remembers what the bench created so that it can be removed
// whatever happens: regions, queues, and child processes.
type benchCleaner struct {
	mu    sync.Mutex
	shm   map[string]bool
	mqs   map[string]bool
	procs map[*os.Process]bool
}

func newBenchCleaner() *benchCleaner {
	return &benchCleaner{shm: map[string]bool{}, mqs: map[string]bool{}, procs: map[*os.Process]bool{}}
}

// addShm records a region name before it is created.
func (c *benchCleaner) addShm(name string) {
	c.mu.Lock()
	c.shm[name] = true
	c.mu.Unlock()
}

// addMQ records a queue name before it is created.
func (c *benchCleaner) addMQ(name string) {
	c.mu.Lock()
	c.mqs[name] = true
	c.mu.Unlock()
}

// unlinkShm removes a region (and its doorbell queues) now.
func (c *benchCleaner) unlinkShm(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shm[name] {
		_ = shmchan.Unlink(name)
		delete(c.shm, name)
	}
}

// unlinkMQ removes a queue now.
func (c *benchCleaner) unlinkMQ(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mqs[name] {
		_ = mq.Unlink(name)
		delete(c.mqs, name)
	}
}

func (c *benchCleaner) addProc(p *os.Process) {
	c.mu.Lock()
	c.procs[p] = true
	c.mu.Unlock()
}

func (c *benchCleaner) dropProc(p *os.Process) {
	c.mu.Lock()
	delete(c.procs, p)
	c.mu.Unlock()
}

// all kills every child still running and removes every name still there.
func (c *benchCleaner) all() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.procs {
		_ = p.Kill()
	}
	clear(c.procs)
	for n := range c.shm {
		_ = shmchan.Unlink(n)
	}
	clear(c.shm)
	for n := range c.mqs {
		_ = mq.Unlink(n)
	}
	clear(c.mqs)
}

// benchPeerSpec is a peer's job.
type benchPeerSpec struct {
	Role   string        `json:"role"`
	Size   int           `json:"size"`
	Names  []string      `json:"names,omitempty"`
	Spin   time.Duration `json:"spin,omitempty"` // WithSpin for shmchan handles; 0: default
	Warm   uint64        `json:"warm,omitempty"`
	Budget time.Duration `json:"budget,omitempty"`
	Batch  int           `json:"batch,omitempty"`
	Cap    int           `json:"cap,omitempty"`
	Duplex bool          `json:"duplex,omitempty"` // stream echo: descriptor 3 both ways

	// Corrupt, if not 0, makes a sender damage value number Corrupt on
	// purpose (the tests check that the receiver notices).
	Corrupt uint64 `json:"corrupt,omitempty"`
}

// benchCorrupt damages value seq if the spec asks for it.
func benchCorrupt(w []uint64, seq uint64, s *benchPeerSpec) {
	if s.Corrupt != 0 && seq == s.Corrupt {
		w[len(w)-1] ^= 1 << 17
	}
}

// benchPeerResult is what a peer reports when it is done.
type benchPeerResult struct {
	Count  uint64 `json:"count"`            // values sent, or round trips echoed
	Err    string `json:"err,omitempty"`    // what went wrong
	Verify bool   `json:"verify,omitempty"` // Err is a verification failure
}

// benchPeer is a running peer process, seen from the parent.
type benchPeer struct {
	e      *benchEnv
	cmd    *exec.Cmd
	ctl    *os.File // the peer's stdin: "go", then closed
	out    *os.File // the peer's stdout: "ready", then its result
	rd     *bufio.Reader
	exited chan struct{}
	werr   error // cmd.Wait's, valid once exited is closed
	budget time.Duration
	once   sync.Once // release
}

// startPeer starts a peer for spec, handing it files as descriptors 3, 4, ...
// It closes files (the peer's ends) in the parent, whatever happens.
func (e *benchEnv) startPeer(spec benchPeerSpec, files ...*os.File) (*benchPeer, error) {
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	exe := benchPeerExe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the bench's own executable: %w", err)
		}
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(exe, "bench")
	cmd.Env = append(os.Environ(), benchPeerEnv+"="+string(js))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("starting the peer: %w", err)
	}
	e.clean.addProc(cmd.Process)
	p := &benchPeer{e: e, cmd: cmd, ctl: inW, out: outR, rd: bufio.NewReader(outR), exited: make(chan struct{}), budget: spec.Budget}
	go func() {
		p.werr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// readLine reads the peer's next line within d.
func (p *benchPeer) readLine(d time.Duration) (string, error) {
	_ = p.out.SetReadDeadline(time.Now().Add(d))
	line, err := p.rd.ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", fmt.Errorf("peer said nothing for %v", d)
		}
		// EOF: the peer is gone; say how it ended.
		select {
		case <-p.exited:
			return "", fmt.Errorf("peer exited early: %v (its stderr is above)", p.werr)
		case <-time.After(5 * time.Second):
			return "", fmt.Errorf("peer closed its output: %w", err)
		}
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// ready waits for the peer to have opened everything.
func (p *benchPeer) ready() error {
	line, err := p.readLine(30 * time.Second)
	if err == nil && line != "ready" {
		err = fmt.Errorf("peer said %q, want ready", line)
	}
	if err != nil {
		p.kill()
		p.release()
	}
	return err
}

// start tells the peer to go, and returns a context that ends if the peer
// fails (exits unsuccessfully) or the parent's ctx ends, in which case the
// peer is killed, so that a parent blocked in a read sees end of file.
// Call stop when the measurement is over.
func (p *benchPeer) start(ctx context.Context) (mctx context.Context, stop func(), err error) {
	if _, err := io.WriteString(p.ctl, "go\n"); err != nil {
		p.kill()
		p.release()
		return nil, nil, fmt.Errorf("telling the peer to go: %w", err)
	}
	mctx, cancel := context.WithCancel(ctx)
	quit := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-p.exited:
			if p.werr != nil {
				cancel()
			}
		case <-mctx.Done():
			p.kill()
		case <-quit:
		}
	}()
	return mctx, func() { once.Do(func() { close(quit); cancel() }) }, nil
}

// finish collects the peer's result and waits for it to exit. bodyErr is
// the parent's own error, if any: a peer's error is reported in its place
// (it is usually the cause), and a verification failure on either side
// always wins.
func (p *benchPeer) finish(bodyErr error) (benchPeerResult, error) {
	var res benchPeerResult
	defer p.release()
	wait := p.budget + 20*time.Second
	if bodyErr != nil {
		var ve *benchVerifyError
		if errors.As(bodyErr, &ve) {
			p.kill()
			return res, bodyErr
		}
		// The parent failed: if the peer failed first, it says why at
		// once; if not, it may be stuck waiting for the parent.
		wait = 2 * time.Second
	}
	line, err := p.readLine(wait)
	if err == nil {
		if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
			err = fmt.Errorf("peer's result %q: %v", line, jerr)
		}
	}
	if err != nil {
		p.kill()
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
		<-p.exited
	}
	switch {
	case err != nil && bodyErr != nil:
		return res, bodyErr
	case err != nil:
		return res, err
	case res.Err != "" && res.Verify:
		return res, &benchVerifyError{msg: "in the peer: " + strings.TrimPrefix(res.Err, "verification failed: ")}
	case res.Err != "":
		return res, fmt.Errorf("peer: %s", res.Err)
	case bodyErr != nil:
		return res, bodyErr
	case p.werr != nil:
		return res, fmt.Errorf("peer: %v", p.werr)
	}
	return res, nil
}

func (p *benchPeer) kill() {
	_ = p.cmd.Process.Kill()
}

// release waits for the peer to exit (killing it after 10s) and closes
// the parent's ends of its pipes.
func (p *benchPeer) release() {
	p.once.Do(func() {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.kill()
			<-p.exited
		}
		p.ctl.Close()
		p.out.Close()
		p.e.clean.dropProc(p.cmd.Process)
	})
}

// benchPeerMain runs in the peer process.
func benchPeerMain(specJSON string) int {
	// Ctrl-C reaches the whole process group: the parent handles it and
	// kills us.
	signal.Ignore(os.Interrupt, syscall.SIGHUP)
	var spec benchPeerSpec
	res := benchPeerResult{}
	err := json.Unmarshal([]byte(specJSON), &spec)
	var role func(context.Context, benchPeerSpec, func() error) (uint64, error)
	if err == nil {
		role = benchPeerRoles()[spec.Role]
		if role == nil {
			err = fmt.Errorf("unknown peer role %q", spec.Role)
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*spec.Budget+60*time.Second)
		defer cancel()
		in := bufio.NewReader(os.Stdin)
		handshake := func() error {
			if _, err := io.WriteString(os.Stdout, "ready\n"); err != nil {
				return err
			}
			line, err := in.ReadString('\n')
			if err != nil || line != "go\n" {
				return fmt.Errorf("waiting for go: got %q, %v", line, err)
			}
			// The parent closes our stdin when it is done with us, or
			// when it dies: then there is nobody to talk to.
			go func() {
				_, _ = io.Copy(io.Discard, in)
				os.Exit(3)
			}()
			return nil
		}
		res.Count, err = role(ctx, spec, handshake)
	}
	if err != nil {
		res.Err = err.Error()
		var ve *benchVerifyError
		res.Verify = errors.As(err, &ve)
	}
	js, _ := json.Marshal(res)
	_, _ = os.Stdout.Write(append(js, '\n'))
	if err != nil {
		return 1
	}
	return 0
}

// benchPeerRoles maps a role name to what the peer does. Each role opens
// what the parent made, calls handshake, then works until it is done,
// and returns how many values it sent (or round trips it echoed).
func benchPeerRoles() map[string]func(context.Context, benchPeerSpec, func() error) (uint64, error) {
	return map[string]func(context.Context, benchPeerSpec, func() error) (uint64, error){
		"shm-send": func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
			return benchOps(s.Size).shmSend(ctx, s, hs)
		},
		"shm-send-batch": func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
			return benchOps(s.Size).shmSendBatch(ctx, s, hs)
		},
		"shm-send-inplace": func(ctx context.Context, s benchPeerSpec, hs func() error) (uint64, error) {
			return benchOps(s.Size).shmSendInPlace(ctx, s, hs)
		},
		"shm-echo":    benchShmEcho,
		"mq-send":     benchMQSend,
		"mq-echo":     benchMQEcho,
		"stream-send": benchStreamSend,
		"stream-echo": benchStreamEcho,
		"ring-send":   benchRingSend,
		"line-echo":   benchLineEcho,
		"futex-echo":  benchFutexEcho,
	}
}

// benchRate turns a count over an interval into a rate, refusing intervals
// too short to mean anything.
func benchRate(n uint64, d time.Duration) (float64, error) {
	if n == 0 || d <= 0 {
		return 0, fmt.Errorf("measured %d values in %v: nothing to divide", n, d)
	}
	return float64(n) / d.Seconds(), nil
}

// benchMallocs returns the process's allocation count so far.
func benchMallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// benchPercentiles returns p50, p90, p99 and p99.9 of ds (which it sorts).
func benchPercentiles(ds []float64) [4]float64 {
	sort.Float64s(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return [4]float64{at(0.50), at(0.90), at(0.99), at(0.999)}
}

// benchMeasureRTT runs round trips until it has e.cfg.latSamples of them
// or the latency budget is spent (after a warm-up that is not recorded).
// rt does one round trip of value seq and checks the echo.
func benchMeasureRTT(ctx context.Context, e *benchEnv, rt func(seq uint64) error) (benchSample, error) {
	const warm = 200
	var warmOver atomic.Bool
	wt := time.AfterFunc(e.cfg.latBudget/4, func() { warmOver.Store(true) })
	defer wt.Stop()
	var seq uint64
	for ; seq < warm && !warmOver.Load(); seq++ {
		if err := rt(seq); err != nil {
			return benchSample{}, err
		}
	}
	ds := make([]float64, 0, e.cfg.latSamples)
	var over atomic.Bool
	timer := time.AfterFunc(e.cfg.latBudget, func() { over.Store(true) })
	defer timer.Stop()
	start := time.Now()
	for len(ds) < cap(ds) && (len(ds) < 100 || !over.Load()) {
		if len(ds)&63 == 0 {
			if err := ctx.Err(); err != nil {
				return benchSample{}, err
			}
		}
		t := time.Now()
		if err := rt(seq); err != nil {
			return benchSample{}, err
		}
		ds = append(ds, float64(time.Since(t).Nanoseconds()))
		seq++
	}
	total := time.Since(start)
	n := uint64(len(ds))
	s := benchUncounted(float64(n)/total.Seconds(), n)
	s.Lat = benchPercentiles(ds)
	return s, nil
}
