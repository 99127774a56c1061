// Command broadcast is one publisher feeding several subscriber
// processes through one broadcast channel: every subscriber gets every
// value, in order, like a market-data feed or frames going to several
// sinks.
//
//	go run ./examples/broadcast [-n 50000] [-subscribers 3] [-drop]
//
//	               ┌──▶ subscriber 0
//	publisher ─────┼──▶ subscriber 1
//	  (broadcast)  └──▶ subscriber 2 (slow)
//
// The program starts itself again once per subscriber and once as the
// publisher. The last subscriber is slow: it sleeps a millisecond every
// -every values.
//
// By default the channel is WithBroadcast(WaitForSlowest): the publisher
// may not lap the slowest live subscriber, so it waits whenever the slow
// one is a whole ring (Cap values) behind. It counts how often it found
// the ring full (TrySend gave ErrFull before it waited with Send): the
// slow subscriber gates the publisher, and with it the fast subscribers.
// Every subscriber gets all n values.
//
// With -drop the channel is WithBroadcast(DropOldest): the publisher never
// waits. A subscriber that falls more than a ring behind gets a
// *LagError (errors.Is(err, ErrLagged)) saying how many values it missed,
// and goes on with the oldest value still intact. The slow subscriber
// misses values; the publisher runs at full speed.
//
// Each subscriber checks every value it gets: it must be the next one
// after the last it got plus whatever the lag errors said it missed, and
// its check word must match. At the end, received + missed must be n for
// every subscriber (missed is 0 with WaitForSlowest).
//
// Joining: a broadcast receiver sees the values sent after its first
// receive call. Each subscriber makes one (a TryRecv, which finds the
// channel empty) and then tells the parent it is ready; the parent starts
// the publisher only once every subscriber is. Ending: the publisher
// closes the channel (CloseSend) after n values; every subscriber drains
// what it has still to read and then gets ErrClosed.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shmchan/shmchan"
)

// Tick is the value that travels: raw, 16 bytes.
type Tick struct {
	Seq   uint64
	Check uint64 // check(Seq): a subscriber can tell a wrong or torn value
}

func check(seq uint64) uint64 { return (seq ^ 0x5bd1e9955bd1e995) * 0x9E3779B97F4A7C15 }

const (
	capacity = 1024
	roleEnv  = "SHMCHAN_BROADCAST_ROLE" // set in the re-started processes
)

func main() {
	n := flag.Uint64("n", 50_000, "values to publish")
	subs := flag.Int("subscribers", 3, "subscriber processes (the last one is slow)")
	every := flag.Int("every", 50, "the slow subscriber sleeps 1ms every this many values")
	drop := flag.Bool("drop", false, "DropOldest instead of WaitForSlowest")
	name := flag.String("name", "", "channel name (internal: set by the parent)")
	idx := flag.Int("i", 0, "subscriber index (internal)")
	flag.Parse()
	if *subs < 1 || *subs > 64 || *every < 1 {
		fmt.Fprintln(os.Stderr, "broadcast: -subscribers must be in [1, 64], -every positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch role := os.Getenv(roleEnv); role {
	case "":
		err = parent(ctx, *n, *subs, *every, *drop)
	case "publisher":
		err = publisher(ctx, *name, *n)
	case "subscriber":
		slow := 0
		if *idx == *subs-1 && *subs > 1 || *subs == 1 {
			slow = *every
		}
		err = subscriber(ctx, *name, *n, *idx, slow)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "broadcast: %v\n", err)
		os.Exit(1)
	}
}

// parent creates the channel, starts the subscribers, waits until each
// has joined, starts the publisher, waits for everyone, and removes the
// channel.
func parent(ctx context.Context, n uint64, subs, every int, drop bool) error {
	name := "shmchan-broadcast-" + strconv.Itoa(os.Getpid())
	policy := shmchan.WaitForSlowest
	if drop {
		policy = shmchan.DropOldest
	}
	c, err := shmchan.Create[Tick](name, shmchan.WithCapacity(capacity),
		shmchan.WithBroadcast(policy), shmchan.WithConsumers(subs))
	if err != nil {
		return err
	}
	defer shmchan.Unlink(name)
	c.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(role string, args ...string) (*exec.Cmd, io.Reader, error) {
		args = append([]string{"-name", name, "-n", fmt.Sprint(n), "-subscribers", fmt.Sprint(subs), "-every", fmt.Sprint(every)}, args...)
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), roleEnv+"="+role)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		return cmd, out, cmd.Start()
	}
	fmt.Printf("broadcast: %d values, 1 publisher → %d subscribers (the last one slow), %v, capacity %d\n", n, subs, policy, capacity)

	// Each subscriber's first line is "ready"; the rest is passed on.
	var copying sync.WaitGroup
	var procs []*exec.Cmd
	var errs []error
	defer func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				p.Process.Kill()
				p.Wait()
			}
		}
	}()
	for i := range subs {
		cmd, out, err := start("subscriber", "-i", fmt.Sprint(i))
		if err != nil {
			return err
		}
		procs = append(procs, cmd)
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "ready" {
			return fmt.Errorf("subscriber %d did not get ready: %q, %v", i, lines.Text(), cmd.Wait())
		}
		copying.Add(1)
		go func() {
			defer copying.Done()
			for lines.Scan() {
				fmt.Println(lines.Text())
			}
		}()
	}
	pub, out, err := start("publisher")
	if err != nil {
		return err
	}
	procs = append(procs, pub)
	copying.Add(1)
	go func() {
		defer copying.Done()
		io.Copy(os.Stdout, out)
	}()
	copying.Wait() // every pipe at EOF: the processes have exited or closed stdout
	if err := pub.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("publisher: %w", err))
	}
	for i, p := range procs[:subs] {
		if err := p.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("subscriber %d: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ctx.Err() != nil {
		fmt.Println("broadcast: interrupted")
		return nil
	}
	fmt.Println("broadcast: done")
	return nil
}

// publisher sends Ticks 0..n-1 and closes the channel. It tries TrySend
// first, so it can count how often the ring was full (only ever with
// WaitForSlowest), and then waits in Send.
func publisher(ctx context.Context, name string, n uint64) error {
	c, err := shmchan.Open[Tick](name)
	if err != nil {
		return err
	}
	defer c.Close()
	var full uint64
	var waited time.Duration
	begin := time.Now()
	for seq := uint64(0); seq < n; seq++ {
		v := Tick{Seq: seq, Check: check(seq)}
		err := c.TrySend(v)
		if errors.Is(err, shmchan.ErrFull) {
			full++
			t := time.Now()
			err = c.Send(ctx, v)
			waited += time.Since(t)
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	el := time.Since(begin)
	if err := c.CloseSend(); err != nil {
		return err
	}
	fmt.Printf("publisher: %d values in %v (%s values/s); found the ring full %d times, waited %v for the slowest subscriber\n",
		n, el.Round(time.Millisecond), rate(n, el), full, waited.Round(time.Millisecond))
	return nil
}

// subscriber joins, says "ready", and receives until the channel is
// closed and drained, checking every value and counting lag errors. A
// slow subscriber (slow > 0) sleeps a millisecond every slow values.
func subscriber(ctx context.Context, name string, n uint64, i, slow int) error {
	c, err := shmchan.Open[Tick](name)
	if err != nil {
		return err
	}
	defer c.Close()
	// The first receive call joins: from here on this subscriber sees
	// every value sent.
	if _, err := c.TryRecv(); !errors.Is(err, shmchan.ErrEmpty) {
		return fmt.Errorf("subscriber %d joining: %v", i, err)
	}
	fmt.Println("ready")

	var next, got, missed, lags uint64
	var begin time.Time
	for {
		v, err := c.Recv(ctx)
		var lag *shmchan.LagError
		if errors.As(err, &lag) {
			// Overwritten before we read them: skip them, go on with the
			// oldest intact value.
			lags++
			missed += lag.Missed
			next += lag.Missed
			continue
		}
		if errors.Is(err, shmchan.ErrClosed) {
			break // closed, and we read everything that was sent
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if got == 0 {
			begin = time.Now()
		}
		if v.Seq != next || v.Check != check(v.Seq) {
			return fmt.Errorf("subscriber %d: got value %d (check %#x), want %d", i, v.Seq, v.Check, next)
		}
		next++
		got++
		if slow > 0 && got%uint64(slow) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	el := time.Since(begin)
	if next != n && ctx.Err() == nil {
		return fmt.Errorf("subscriber %d: %d values received and %d missed, of %d sent", i, got, missed, n)
	}
	what := ""
	if slow > 0 {
		what = " (slow)"
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "subscriber %d%s: %d values in order, %s values/s", i, what, got, rate(got, el))
	if lags > 0 {
		fmt.Fprintf(&msg, "; %d missed, reported by %d lag errors", missed, lags)
	}
	fmt.Println(msg.String())
	return nil
}

// rate formats n per d as 950, 12.3k or 4.56M.
func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	v := float64(n) / d.Seconds()
	switch {
	case v < 1e3:
		return fmt.Sprintf("%.0f", v)
	case v < 1e6:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.2fM", v/1e6)
}
