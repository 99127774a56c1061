package bench

// Run: the repetitions of the plan, rows interleaved, with cleanup on
// return, error and signals; then the report.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// Run measures what cfg says, prints the tables on stdout (progress and
// errors go to stderr), writes the JSON file and the chart if cfg asks for
// them, and returns the command's exit code: 0, or 1 if anything failed (a
// value that arrived wrong above all). Whatever happens, what the bench
// made is removed and its peers are killed, on SIGINT, SIGTERM and SIGHUP
// too (the process then exits with 130).
func Run(cfg Config, stdout, stderr io.Writer) int {
	e := &env{cfg: cfg, clean: newCleaner(), stderr: stderr}
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

	res, err := measureAll(e)
	if err != nil {
		var ve *verifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(stderr, "\nshmchan bench: !!! %v\nshmchan bench: !!! a value arrived wrong; no result of this run can be trusted\n", err)
		} else {
			fmt.Fprintf(stderr, "\nshmchan bench: %v\n", err)
		}
		return 1
	}
	printReport(stdout, res)
	if cfg.JSONPath != "" {
		if err := writeJSON(cfg.JSONPath, res); err != nil {
			fmt.Fprintf(stderr, "shmchan bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "shmchan bench: wrote %s\n", cfg.JSONPath)
	}
	if cfg.ChartPath != "" {
		if err := writeChart(cfg.ChartPath, res); err != nil {
			fmt.Fprintf(stderr, "shmchan bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "shmchan bench: wrote %s\n", cfg.ChartPath)
	}
	return 0
}

// measureAll runs every repetition of the plan, rows interleaved, and
// checks the targets.
func measureAll(e *env) (*results, error) {
	res := &results{cfg: e.cfg, cells: plan(e.cfg), machine: describeMachine(), started: time.Now()}
	todo := 0
	for _, c := range res.cells {
		if c.na == "" {
			todo++
		}
	}
	if todo == 0 {
		return nil, fmt.Errorf("nothing to measure (check -only and -sizes)")
	}
	tty := isTerminal(e.stderr)
	fmt.Fprintf(e.stderr, "shmchan bench: %d measurements × %d runs, rows interleaved; load average %s\n", todo, e.cfg.Runs, res.machine.LoadStart)
	for run := 1; run <= e.cfg.Runs; run++ {
		// A loaded machine can make every run slow: rather than overrun
		// the time limit, report the runs made (each covers every row).
		if done := run - 1; done > 0 && e.cfg.Limit > 0 {
			spent := time.Since(res.started)
			if spent+spent/time.Duration(done) > e.cfg.Limit {
				fmt.Fprintf(e.stderr, "shmchan bench: stopping after %d of %d runs: another would end after the %v limit (-limit)\n", done, e.cfg.Runs, e.cfg.Limit)
				res.cfg.Runs, res.cut = done, e.cfg.Runs
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
			if tty && !e.cfg.Verbose {
				fmt.Fprintf(e.stderr, "\r\033[K  run %d/%d [%d/%d] %s, %s", run, e.cfg.Runs, i, todo, c.row.name, sizeName(c.size))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+20*e.cfg.Budget+2*e.cfg.LatencyBudget)
			t := time.Now()
			s, err := c.row.run(ctx, e, c.size)
			cancel()
			if e.cfg.Verbose && err == nil {
				what := si(s.Rate) + " values/s"
				if c.row.section == sectionLatency {
					what = "p50 " + micros(s.Lat[0]) + ", p99 " + micros(s.Lat[2])
				}
				fmt.Fprintf(e.stderr, "  run %d/%d [%d/%d] %s, %s: %s (%d measured; %.0fms)\n",
					run, e.cfg.Runs, i, todo, c.row.name, sizeName(c.size), what, s.N, float64(time.Since(t).Microseconds())/1000)
			}
			if err != nil {
				if tty {
					fmt.Fprintln(e.stderr)
				}
				return nil, fmt.Errorf("%s, %s: %w", c.row.name, sizeName(c.size), err)
			}
			c.runs = append(c.runs, s)
		}
		if tty && !e.cfg.Verbose {
			fmt.Fprint(e.stderr, "\r\033[K")
		}
		fmt.Fprintf(e.stderr, "  run %d/%d done in %.1fs\n", run, e.cfg.Runs, time.Since(runStart).Seconds())
	}
	res.elapsed = time.Since(res.started)
	res.loadEnd = loadAvg()
	res.targets = checkTargets(res)
	return res, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// env is what the measurements share: configuration, names, cleanup.
type env struct {
	cfg     Config
	clean   *cleaner
	stderr  io.Writer
	nameSeq atomic.Int64
}

// newName returns a name for a region or queue that no other process
// uses: it holds the bench's pid.
func (e *env) newName(kind string) string {
	return fmt.Sprintf("shmchan-bench-%d-%s%d", os.Getpid(), kind, e.nameSeq.Add(1))
}
