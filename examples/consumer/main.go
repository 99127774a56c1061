// Command consumer is the other half of the two-terminal demo: it receives
// the producer's samples, prints once a second how many arrived and at
// what rate, checks that the sequence has no gaps and every payload is
// intact, and exits when the producer has closed the channel and it is
// drained (or on Ctrl-C). Either side may start first.
//
//	go run ./examples/consumer             # terminal 1
//	go run ./examples/producer -n 10000000 # terminal 2
//
// The consumer is the last one out: on exit it unlinks the channel, so the
// next run starts afresh. It exits 1 if the stream was not continuous. The
// receiving code is in examples/internal/flow.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shmchan/shmchan/examples/internal/flow"
)

func main() {
	name := flag.String("name", flow.DefaultName, "channel name (a file in /dev/shm)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := flow.Consume(ctx, *name, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}
