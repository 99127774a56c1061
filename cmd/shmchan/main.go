// Command shmchan looks after shmchan channels: it measures them against
// the other IPC mechanisms (bench); lists, inspects, watches and removes
// the regions in /dev/shm (ls, stat, watch, rm); checks a machine for what
// shmchan needs (doctor); exports every channel's counters to Prometheus
// (metrics); and records a channel's values to a file and sends them back
// (record, replay).
package main

import (
	"fmt"
	"os"
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
