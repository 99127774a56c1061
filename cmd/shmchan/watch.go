package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
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
into a file.

For a work queue or broadcast, ROLES also lists each receiver entry in
use by its number (#0, #1, ...) with its position: in a work queue
"claim P" (the position it holds, taken but not yet received) or "idle";
in a broadcast "lag N" (values sent that it has still to read), or
"left" once it stopped; "dead" marks an entry whose holder died. For a
broadcast, OUT/s and RECEIVED count the values every receiver got,
summed over them, and FILL is the backlog of the slowest live receiver. It stops on Ctrl-C, after N lines with -n, or when the region
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
	live     int // live senders
	recv     bool
	unlinked bool

	// A work queue's or broadcast's receiver entries.
	consumers []consumerSample
	liveRecv  int    // live receivers
	received  uint64 // broadcast: values received, summed over the entries
}

// consumerSample is one receiver entry of a work queue or broadcast.
type consumerSample struct {
	k     int // among the consumer entries
	alive bool
	e     ring.Entry
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
	held, err := w.v.Held(w.hdr.Entries())
	if err != nil {
		return s, err
	}
	for i, h := range held {
		switch {
		case !h:
		case i == 0:
			s.recv = true
		case i <= int(w.hdr.Producers):
			s.live++
		default:
			s.liveRecv++
		}
	}
	for k := range int(w.hdr.Consumers) {
		i := w.hdr.ConsumerEntry(k)
		e, err := w.v.Entry(i)
		if err != nil {
			return s, err
		}
		s.received += e.Sent
		if held[i] || e.PID != 0 {
			s.consumers = append(s.consumers, consumerSample{k: k, alive: held[i], e: e})
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
	if n, ok := w.fill(cur); ok {
		fill = fmt.Sprint(n)
	}
	wakes := rate(prev.c.SenderWakes+prev.c.ReceiverWakes, cur.c.SenderWakes+cur.c.ReceiverWakes)
	roles := fmt.Sprintf("recv %s, %d sender%s", ifThen(cur.recv, "alive", "-"), cur.live, ifThen(cur.live == 1, "", "s"))
	recvd, prevRecvd := cur.c.Received, prev.c.Received
	if w.hdr.Mode.FanOut() {
		roles = fmt.Sprintf("%d/%d recv alive, %d sender%s", cur.liveRecv, w.hdr.Consumers, cur.live, ifThen(cur.live == 1, "", "s"))
		if len(cur.consumers) > 0 {
			var each []string
			for _, c := range cur.consumers {
				each = append(each, w.position(c, cur.c.Sent))
			}
			roles += " [" + strings.Join(each, ", ") + "]"
		}
		if w.hdr.Mode == layout.ModeBroadcast {
			recvd, prevRecvd = cur.received, prev.received
		}
	}
	if cur.c.Closed {
		roles += ", closed"
	}
	if cur.unlinked {
		roles += ", unlinked"
	}
	return fmt.Sprintf("%-8s  %9s %9s  %*s  %8s %8s %8s  %12d %12d  %s",
		cur.at.Format("15:04:05"),
		rate(prev.c.Sent, cur.c.Sent), rate(prevRecvd, recvd),
		fillWidth(w.hdr.Capacity), fill,
		rate(prev.c.RecvSleeps, cur.c.RecvSleeps), rate(prev.c.SendSleeps, cur.c.SendSleeps), wakes,
		cur.c.Sent, recvd, roles)
}

// fill is what the FILL column shows: the values queued, and for a
// broadcast the backlog of the slowest live joined receiver (as ls).
func (w *watcher) fill(s sample) (uint64, bool) {
	if w.hdr.Mode != layout.ModeBroadcast {
		return region.Fill(s.c, w.hdr.Capacity)
	}
	var most uint64
	for _, c := range s.consumers {
		if !c.alive || !region.Joined(c.e) {
			continue
		}
		lag, ok := region.Lag(c.e.ClaimLo, s.c.Sent)
		if !ok || lag > w.hdr.Capacity && w.hdr.Overflow == layout.OverflowWait {
			return 0, false
		}
		most = max(most, min(lag, w.hdr.Capacity))
	}
	return most, true
}

// position is one receiver entry for the ROLES column: "#0 claim 17",
// "#1 idle", "#2 lag 5", "#3 left", with "dead" after the number when its
// holder died.
func (w *watcher) position(c consumerSample, tail uint64) string {
	s := fmt.Sprintf("#%d ", c.k)
	if !c.alive {
		s += "dead "
	}
	if w.hdr.Mode == layout.ModeWorkQueue {
		if p, ok := region.WorkClaim(c.e); ok {
			return s + fmt.Sprintf("claim %d", p)
		}
		return s + "idle"
	}
	if !region.Joined(c.e) {
		return s + "left"
	}
	if lag, ok := region.Lag(c.e.ClaimLo, tail); ok {
		return s + fmt.Sprintf("lag %d", lag)
	}
	return s + "lag ?"
}

// fillWidth fits "capacity" in the FILL column.
func fillWidth(capacity uint64) int { return max(4, len(fmt.Sprint(capacity))) }
