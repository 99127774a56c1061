package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/capture"
	"github.com/shmchan/shmchan/cmd/shmchan/internal/progress"
	"github.com/shmchan/shmchan/layout"
)

const recordUsage = `usage: shmchan record [-consume] [-count N] [-duration D] [-f] NAME FILE

Records channel NAME into FILE: the slot bytes of every value, each with
the time the recorder took it, after a header naming the channel's codec,
type, fingerprint and value size (the format is described in
docs/PRODUCTION.md). 'shmchan replay' sends a recording back into a
channel of the same type.

It stops after -count values, after -duration, on Ctrl-C (SIGINT or
SIGTERM), or when the channel is closed for sending and drained. In every
case the file is finished properly (its end record written and synced);
a recording whose recorder was killed lacks the end record, and replay
says so (replay -partial takes what is there).

A broadcast channel (shmchan.WithBroadcast) is recorded as a subscriber:
the recorder takes one of its receiver entries (refused with "busy" when
every one is held), sees every value sent from the moment it joins, and
takes nothing from the other receivers. On a WaitForSlowest channel a
recorder that cannot keep up holds the senders back, as any receiver
does; on a DropOldest channel it may miss values, which it counts and
reports (the recording then has gaps).

Any other channel has receivers that consume what they take, so
recording needs -consume: on an SPSC or MPSC channel the recorder takes
the receiver role (refused with "role held by a live process" while
another receiver is alive), on a work queue it becomes one more receiver
and records only the values it is handed; the values it records are gone
from the channel. Use it for a channel nobody else reads, or one you fill
for the purpose. Each value is written to the file before it is released
from the channel: a recorder that is killed loses no value (the last ones
it wrote may also still be in the channel, for the next receiver).

A progress line (values, rate, elapsed) is shown on a terminal, on
standard error; a summary line is printed on standard output at the end.

  -consume     take a receiver role and consume the values (required
               for a channel that is not a broadcast channel; a
               broadcast channel is never consumed)
  -count N     stop after N values (default 0: no limit)
  -duration D  stop after D, e.g. 30s or 5m (default 0: no limit)
  -f           overwrite FILE if it exists

Examples:
  shmchan record -duration 1m prices /tmp/prices.rec      (a broadcast channel)
  shmchan record -consume -count 100000 orders /tmp/orders.rec
  shmchan replay -rate max /tmp/orders.rec orders-test

Exit status: 0 when the recording was written, 1 on an error, 2 for a
usage error.
`

func runRecord(args []string) int {
	fset := flag.NewFlagSet("shmchan record", flag.ContinueOnError)
	consume := fset.Bool("consume", false, "take the receiver role and consume")
	count := fset.Int64("count", 0, "stop after N values")
	duration := fset.Duration("duration", 0, "stop after this long")
	force := fset.Bool("f", false, "overwrite FILE")
	operands, ok, code := parseArgs(fset, args, recordUsage)
	if !ok {
		return code
	}
	if len(operands) != 2 {
		fmt.Fprintf(os.Stderr, "shmchan record: want NAME and FILE, got %d arguments\n%s", len(operands), recordUsage)
		return 2
	}
	if *count < 0 || *duration < 0 {
		fmt.Fprintf(os.Stderr, "shmchan record: -count and -duration must not be negative\n%s", recordUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := recordOpts{name: operands[0], file: operands[1], consume: *consume, count: *count,
		duration: *duration, force: *force, line: progress.New(os.Stderr)}
	res, err := record(ctx, opts)
	if err != nil {
		errf("record", "%v", err)
		return 1
	}
	missed := ""
	if res.missed > 0 {
		missed = fmt.Sprintf("; missed %d overwritten before the recorder read them", res.missed)
	}
	fmt.Printf("recorded %d values (%s) from %s to %s in %v: %s%s\n",
		res.count, humanBytes(res.bytes), opts.name, opts.file, res.elapsed.Round(time.Millisecond), res.why, missed)
	return 0
}

type recordOpts struct {
	name, file string
	consume    bool
	count      int64
	duration   time.Duration
	force      bool
	line       *progress.Line
}

type recordResult struct {
	count   int64
	bytes   int64
	missed  uint64 // broadcast DropOldest: values overwritten before the recorder read them
	elapsed time.Duration
	why     string // why it stopped
}

// errNeedConsume: the channel is not a broadcast channel and -consume was
// not given.
var errNeedConsume = errors.New("recording would consume the channel's values")

// recordBatch is how many values one Hold asks for.
const recordBatch = 256

func record(ctx context.Context, o recordOpts) (res recordResult, err error) {
	conn, err := openRawConn(o.name)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	info := conn.Info()
	if !info.Broadcast && !o.consume {
		what := "taken by its own receiver, which would then never see them"
		if info.Topology == layout.ModeWorkQueue.String() {
			what = "taken from its receivers, each of which gets a share"
		}
		return res, fmt.Errorf("%s is a %s channel: %w %s. "+
			"A broadcast channel (shmchan.WithBroadcast) is recorded as a subscriber, without taking anything; "+
			"-consume takes a receiver role here and consumes what it records", o.name, topologyName(info.Topology), errNeedConsume, what)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(o.file, flags, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return res, fmt.Errorf("%s exists (-f overwrites it)", o.file)
		}
		return res, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	start := time.Now()
	w, err := capture.NewWriter(f, capture.Header{
		Codec: info.Codec, Type: info.Type, Channel: o.name, Fingerprint: info.Fingerprint,
		Raw: info.Raw, ValueSize: info.ValueSize, MaxMsg: info.MaxMsg, Capacity: uint64(info.Capacity),
		Started: start.UnixNano(),
	})
	if err != nil {
		return res, err
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	msgs := make([]rawMsg, recordBatch)
	res.why = "interrupted"
	for {
		want := recordBatch
		if o.count > 0 {
			if left := o.count - w.Count(); left < int64(want) {
				want = int(left)
			}
			if want == 0 {
				res.why = "count reached"
				break
			}
		}
		n, herr := conn.Hold(ctx, msgs[:want])
		at := time.Now().UnixNano()
		for i := 0; i < n; i++ {
			if err := w.Write(at, msgs[i].Data); err != nil {
				return res, fmt.Errorf("%s: %w", o.file, err)
			}
		}
		if n > 0 {
			// In the file (the kernel's page cache) before they leave
			// the channel: a recorder killed now loses none of them.
			if err := w.Flush(); err != nil {
				return res, fmt.Errorf("%s: %w", o.file, err)
			}
			if err := conn.Release(n); err != nil {
				return res, err
			}
		}
		o.line.Update("record %s: %s", o.name, progress.Rate(uint64(w.Count()), "values", time.Since(start)))
		var lag *shmchan.LagError
		if errors.As(herr, &lag) {
			// DropOldest overwrote values before the recorder read them:
			// count them and go on with the oldest value still there.
			res.missed += lag.Missed
			o.line.Clear()
			fmt.Fprintf(os.Stderr, "shmchan record: %s: missed %d values (the channel drops the oldest for a slow receiver)\n", o.name, lag.Missed)
			continue
		}
		if herr != nil {
			switch {
			case errors.Is(herr, shmchan.ErrClosed):
				res.why = "channel closed and drained"
			case errors.Is(herr, context.DeadlineExceeded) && o.duration > 0:
				res.why = "duration reached"
			case ctx.Err() != nil:
				res.why = "interrupted"
			default:
				o.line.Clear()
				// Finish the file so that what was recorded is usable.
				w.Close(time.Now().UnixNano())
				return res, herr
			}
			break
		}
	}
	o.line.Set("record %s: %s", o.name, progress.Rate(uint64(w.Count()), "values", time.Since(start)))
	o.line.Done()
	if err := w.Close(time.Now().UnixNano()); err != nil {
		return res, fmt.Errorf("%s: %w", o.file, err)
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("%s: %w", o.file, err)
	}
	res.count, res.bytes, res.elapsed = w.Count(), w.Size(), time.Since(start)
	return res, nil
}

// topologyName is the topology as people write it.
func topologyName(t string) string {
	switch t {
	case "spsc":
		return "single-producer (SPSC)"
	case "mpsc":
		return "multi-producer (MPSC)"
	case "workqueue":
		return "work-queue"
	case "broadcast":
		return "broadcast"
	}
	return t
}
