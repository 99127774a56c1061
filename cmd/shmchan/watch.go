package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
)

const watchUsage = `usage: shmchan watch [-interval 1s] [-n N] NAME

Shows one region live: every interval it prints one line with the rates in
and out (values sent and received per second), the fill, the sleeps of each
side and the wake-ups per second, the totals, and which roles are alive.
Plain lines, no cursor movement: it works in any terminal, over ssh, and
into a file. It stops on Ctrl-C, after N lines with -n, or when the region
cannot be read any more. The region is only read.

  -interval d   time between lines (default 1s)
  -n N          stop after N lines (default 0: until interrupted)
`

func runWatch(args []string) int {
	fset := flag.NewFlagSet("shmchan watch", flag.ContinueOnError)
	interval := fset.Duration("interval", time.Second, "time between lines")
	count := fset.Int("n", 0, "stop after this many lines (0: never)")
	operands, ok, code := parseArgs(fset, args, watchUsage)
	if !ok {
		return code
	}
	if len(operands) != 1 {
		fmt.Fprintf(os.Stderr, "shmchan watch: want one region name, got %d arguments\n%s", len(operands), watchUsage)
		return 2
	}
	if *interval <= 0 || *count < 0 {
		fmt.Fprintf(os.Stderr, "shmchan watch: -interval must be positive and -n not negative\n%s", watchUsage)
		return 2
	}
	arg := operands[0]
	name, err := cleanArg(arg)
	if err != nil {
		errf("watch", "%s: %v", arg, err)
		return 1
	}
	v, err := region.OpenView(name)
	if err != nil {
		errf("watch", "%s: %s", arg, describeOpenError(err))
		return 1
	}
	defer v.Close()
	snap, err := v.Snapshot()
	if err != nil {
		errf("watch", "%s: %v", arg, err)
		return 1
	}
	if !snap.Valid() {
		errf("watch", "%s: %v", arg, snap.Err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := &watcher{v: v, hdr: snap.Header}
	prev, err := w.sample()
	if err != nil {
		errf("watch", "%s: %v", arg, err)
		return 1
	}
	fmt.Printf("%-8s  %9s %9s  %*s  %8s %8s %8s  %12s %12s  %s\n",
		"TIME", "IN/s", "OUT/s", fillWidth(snap.Header.Capacity), "FILL", "RSLEEP/s", "SSLEEP/s", "WAKES/s", "SENT", "RECEIVED", "ROLES")
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for n := 0; *count == 0 || n < *count; n++ {
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
		cur, err := w.sample()
		if err != nil {
			errf("watch", "%s: %v", arg, err)
			return 1
		}
		fmt.Println(w.line(prev, cur))
		prev = cur
	}
	return 0
}

// watcher samples one open region.
type watcher struct {
	v   *region.View
	hdr layout.Header
}

type sample struct {
	at       time.Time
	c        ring.Stats
	live     int // live role holders
	recv     bool
	unlinked bool
}

// sample reads the counters and the live roles once. A file cut shorter
// than the part the View maps is reported before any read could fault; a
// cut that races with the read faults, and View.Stats reports that too.
func (w *watcher) sample() (s sample, err error) {
	if size, cut, err := w.v.Truncated(); err != nil {
		return s, err
	} else if cut {
		return s, fmt.Errorf("the region was truncated to %d bytes under its users", size)
	}
	s.at = time.Now()
	if s.c, err = w.v.Stats(w.hdr.Mode == layout.ModeSPSC); err != nil {
		return s, err
	}
	held, err := w.v.Held(1 + int(w.hdr.Producers))
	if err != nil {
		return s, err
	}
	for i, h := range held {
		switch {
		case !h:
		case i == 0:
			s.recv = true
		default:
			s.live++
		}
	}
	linked, err := w.v.Linked()
	s.unlinked = err != nil || !linked
	return s, nil
}

func (w *watcher) line(prev, cur sample) string {
	secs := cur.at.Sub(prev.at).Seconds()
	rate := func(a, b uint64) string {
		if b < a || secs <= 0 {
			return "?"
		}
		return humanCount(float64(b-a) / secs)
	}
	fill := "bad"
	if n, ok := region.Fill(cur.c, w.hdr.Capacity); ok {
		fill = fmt.Sprint(n)
	}
	wakes := rate(prev.c.SenderWakes+prev.c.ReceiverWakes, cur.c.SenderWakes+cur.c.ReceiverWakes)
	roles := fmt.Sprintf("recv %s, %d sender%s", ifThen(cur.recv, "alive", "-"), cur.live, ifThen(cur.live == 1, "", "s"))
	if cur.c.Closed {
		roles += ", closed"
	}
	if cur.unlinked {
		roles += ", unlinked"
	}
	return fmt.Sprintf("%-8s  %9s %9s  %*s  %8s %8s %8s  %12d %12d  %s",
		cur.at.Format("15:04:05"),
		rate(prev.c.Sent, cur.c.Sent), rate(prev.c.Received, cur.c.Received),
		fillWidth(w.hdr.Capacity), fill,
		rate(prev.c.RecvSleeps, cur.c.RecvSleeps), rate(prev.c.SendSleeps, cur.c.SendSleeps), wakes,
		cur.c.Sent, cur.c.Received, roles)
}

// fillWidth fits "capacity" in the FILL column.
func fillWidth(capacity uint64) int { return max(4, len(fmt.Sprint(capacity))) }
