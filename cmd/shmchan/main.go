// Command shmchan looks after shmchan channels: it measures them against
// the other IPC mechanisms (bench); lists, inspects, watches and removes
// the regions in /dev/shm (ls, stat, watch, rm); checks a machine for what
// shmchan needs (doctor); exports every channel's counters to Prometheus
// (metrics); and records a channel's values to a file and sends them back
// (record, replay).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shmchan/shmchan/shm"
)

const usage = `usage: shmchan <command> [arguments]

commands:
  bench   measure shmchan against POSIX mq, pipes, Unix sockets and more
  ls      list the shmchan regions in /dev/shm
  stat    show everything about one region
  watch   live view of one region's rates
  rm      remove regions (and their doorbell queues)
  doctor  check this machine (and regions) for what shmchan needs
  metrics serve every channel's counters to Prometheus
  record  record a channel's values to a file
  replay  send a recording into a channel
  help    show this help

Run 'shmchan <command> -h' for a command's options.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "bench":
		return runBench(rest)
	case "ls":
		return runLs(rest)
	case "stat":
		return runStat(rest)
	case "watch":
		return runWatch(rest)
	case "rm":
		return runRm(rest)
	case "doctor":
		return runDoctor(rest)
	case "metrics":
		return runMetrics(rest)
	case "record":
		return runRecord(rest)
	case "replay":
		return runReplay(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "shmchan: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// parseArgs parses a command line in which flags and operands may be mixed
// ("stat NAME -json"); "--" ends the flags. -h and -help print the usage on
// standard output: ok false and code 0. A bad flag prints the error and the
// usage on standard error: ok false and code 2.
func parseArgs(fset *flag.FlagSet, args []string, usage string) (operands []string, ok bool, code int) {
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	for {
		err := fset.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, usage)
			return nil, false, 0
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n%s", fset.Name(), err, usage)
			return nil, false, 2
		}
		rest := fset.Args()
		if len(rest) == 0 {
			return operands, true, 0
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(operands, rest...), true, 0
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// cleanArg turns what a user typed into a region name: "x", "/x" and
// "/dev/shm/x" all name /dev/shm/x.
func cleanArg(arg string) (string, error) {
	name := strings.TrimPrefix(arg, shmDir+"/")
	if _, err := shm.Path(name); err != nil {
		return "", err
	}
	return strings.TrimPrefix(name, "/"), nil
}

// errf prints "shmchan: CMD: message" on standard error.
func errf(cmd, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "shmchan: "+cmd+": "+format+"\n", args...)
}
