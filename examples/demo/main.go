// Command demo shows two processes talking through shmchan with one
// command:
//
//	go run ./examples/demo
//
// It starts itself twice more, once as the consumer and once as the
// producer of examples/consumer and examples/producer (the same code, from
// examples/internal/flow), on a channel of its own, and waits for both.
// The producer sends 5 million samples (-n) and closes the channel; the
// consumer prints its progress once a second, checks that every value
// arrived once and in order, and removes the channel. The demo exits 0 if
// both did their part.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/examples/internal/flow"
)

// roleEnv tells a re-started copy of this program which side it plays.
const roleEnv = "SHMCHAN_DEMO_ROLE"

func main() {
	n := flag.Uint64("n", 5_000_000, "values to send")
	rate := flag.Float64("rate", 0, "values per second (0: full speed)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch role := os.Getenv(roleEnv); role {
	case "producer":
		if err := flow.Produce(ctx, os.Getenv("SHMCHAN_DEMO_NAME"), *n, *rate, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			os.Exit(1)
		}
		return
	case "consumer":
		if _, err := flow.Consume(ctx, os.Getenv("SHMCHAN_DEMO_NAME"), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "consumer:", err)
			os.Exit(1)
		}
		return
	case "":
	default:
		fmt.Fprintf(os.Stderr, "demo: unknown role %q\n", role)
		os.Exit(2)
	}

	// The parent: a channel name of its own, so that two demos (or a demo
	// and the two-terminal example) do not meet.
	name := "shmchan-demo-" + strconv.Itoa(os.Getpid())
	defer shmchan.Unlink(name) // normally the consumer already has

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	start := func(role string) *exec.Cmd {
		cmd := exec.Command(self, os.Args[1:]...)
		cmd.Env = append(os.Environ(), roleEnv+"="+role, "SHMCHAN_DEMO_NAME="+name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: starting the %s: %v\n", role, err)
			os.Exit(1)
		}
		return cmd
	}
	what := fmt.Sprintf("%d values", *n)
	if *n == 0 {
		what = "values until Ctrl-C"
	}
	fmt.Printf("demo: two processes, one channel %q, %s\n", name, what)
	consumer := start("consumer")
	producer := start("producer")
	// Ctrl-C reaches the children too (same process group); they stop
	// cleanly and the waits below return.
	perr, cerr := producer.Wait(), consumer.Wait()
	if perr != nil || cerr != nil {
		fmt.Fprintf(os.Stderr, "demo: producer: %v, consumer: %v\n", perr, cerr)
		os.Exit(1)
	}
	fmt.Printf("demo: producer (pid %d) and consumer (pid %d) are done\n", producer.Process.Pid, consumer.Process.Pid)
}
