// Command shmchan looks after shmchan channels: it measures them against
// the other IPC mechanisms (bench), and lists, inspects, watches and removes
// the regions in /dev/shm (ls, stat, watch, rm).
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
	case "help", "-h", "-help", "--help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "shmchan: unknown command %q\n\n%s", cmd, usage)
	return 2
}
