package main

// shmchan bench: the flags, and a call into internal/bench, which measures
// and reports (its doc.go says how).

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/shmchan/shmchan/cmd/shmchan/internal/bench"
)

const benchUsage = `usage: shmchan bench [-quick] [-runs N] [-limit D] [-time D] [-samples N] [-sizes LIST] [-only REGEXP]
                     [-json FILE] [-chart FILE.svg] [-v]

Measures shmchan against POSIX message queues, pipes and Unix sockets,
across two processes, with an in-process Go channel, copy() and the raw
hardware floors (cache-line and futex ping-pong) as references. The fan-out
rows (16-byte values, one process per side) put a work queue read by 2 and 4
processes beside one POSIX mq read by as many, a broadcast to 2 and 4
subscribers beside a pipe per subscriber written in turn, and MPSC with 2
and 4 sending processes beside one POSIX mq written by 4 (-only '^fan-'
runs them alone). Every value is checked on receipt; a wrong one fails the
run.

`

// runBench is the "bench" command.
func runBench(args []string) int {
	return benchMain(args, os.Stdout, os.Stderr)
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	// The bench runs its peers as "shmchan bench" with their job in the
	// environment: such a process is a peer, whatever its arguments.
	if bench.IsPeer() {
		return bench.RunPeer()
	}
	cfg, code, ok := benchParseFlags(args, stderr)
	if !ok {
		return code
	}
	return bench.Run(cfg, stdout, stderr)
}

func benchParseFlags(args []string, stderr io.Writer) (cfg bench.Config, code int, ok bool) {
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
	jsonPath := fs.String("json", "", "also write the results as JSON to this file")
	chartPath := fs.String("chart", "", "also draw an SVG chart of the results to this file")
	verbose := fs.Bool("v", false, "print every measurement on stderr as it is made")
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
	cfg = bench.Defaults(*quick)
	cfg.JSONPath, cfg.ChartPath, cfg.Verbose = *jsonPath, *chartPath, *verbose
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["runs"] {
		cfg.Runs = *runs
	}
	if set["time"] {
		cfg.Budget = *budget
		cfg.LatencyBudget = 4 * *budget
	}
	if set["samples"] {
		cfg.LatencySamples = *samples
	}
	if set["limit"] {
		cfg.Limit = *limit
	}
	if cfg.Runs < 1 || cfg.Budget <= 0 || cfg.LatencySamples < 100 {
		fmt.Fprintln(stderr, "shmchan bench: -runs must be ≥ 1, -time > 0, -samples ≥ 100")
		return cfg, 2, false
	}
	if *sizes != "" {
		cfg.Sizes = nil
		for _, s := range strings.Split(*sizes, ",") {
			n, err := bench.ParseSize(s)
			if err != nil {
				fmt.Fprintf(stderr, "shmchan bench: -sizes: %v\n", err)
				return cfg, 2, false
			}
			cfg.Sizes = append(cfg.Sizes, n)
		}
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "shmchan bench: -only: %v\n", err)
			return cfg, 2, false
		}
		cfg.Only = re
	}
	return cfg, 0, true
}
