// Command producer is one half of the two-terminal demo: it sends a stream
// of 64-byte samples (sequence number, timestamp, payload) through a
// shmchan channel, at full speed or at -rate values per second, then
// closes the channel. Run the consumer in another terminal, before or
// after this one:
//
//	go run ./examples/consumer             # terminal 1
//	go run ./examples/producer -n 10000000 # terminal 2
//
// Ctrl-C stops it cleanly: it closes the channel, so the consumer receives
// what was sent and stops too. The sending code is in
// examples/internal/flow.
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
	n := flag.Uint64("n", 0, "values to send, then close the channel (0: until Ctrl-C)")
	rate := flag.Float64("rate", 0, "values per second (0: as fast as the consumer takes them)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := flow.Produce(ctx, *name, *n, *rate, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}
