// Command pipeline is the high-throughput pipeline shmchan is made for:
// separate processes, each doing one stage, connected by shared-memory
// channels.
//
//	go run ./examples/pipeline [-n 2000000] [-workers 3]
//
//	                      ┌──▶ worker 1 ──┐
//	source ──(work queue)─┼──▶ worker 2 ──┼──(MPSC)──▶ sink
//	                      └──▶ worker 3 ──┘
//
// The program starts itself again once per stage. The source sends the
// inputs 0..n-1 into one work-queue channel (WithMultiConsumer): every
// worker receives from it, and each value goes to exactly one of them,
// the one that is free, as goroutines receiving from one Go chan. Each
// worker computes a result and sends it into one MPSC channel that all
// workers share (WithMultiProducer: fan-in). The sink receives the
// results, checks each one, and marks it in a bitmap so that it can tell
// at the end that every value arrived exactly once. Each worker also
// checks that the values it gets come in the order the source sent them
// (a work queue keeps each sender's order for every receiver). Stages
// move values in batches (SendBatch, RecvBatch).
//
// Ending: the source closes the work queue when done (CloseSend); the
// workers drain it together, and each gets ErrClosed once every value
// has been received by someone, and exits; when all have exited the
// parent closes the shared output channel (closing an MPSC channel closes
// it for every sender, so no worker may do it while the others still
// send); the sink drains it and reports. The parent exits 0 if every
// stage succeeded and the sink saw every value exactly once. The sink
// prints its rate once a second and at the end, and how the values were
// shared among the workers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmchan/shmchan"
)

// Item goes from the source to a worker.
type Item struct {
	Seq uint64
	X   uint64
}

// Result goes from a worker to the sink.
type Result struct {
	Seq uint64
	Y   uint64 // f(X)
	By  uint64 // which worker computed it
}

// x is the source's input for seq; f is the worker's work. The sink
// recomputes f(x(seq)) to check a result.
func x(seq uint64) uint64 { return seq*0x9E3779B97F4A7C15 + 1 }

func f(v uint64) uint64 {
	for range 4 {
		hi, lo := bits.Mul64(v, 0xff51afd7ed558ccd)
		v = hi ^ lo ^ v>>29
	}
	return v
}

const (
	capacity = 8192
	batch    = 256
	roleEnv  = "SHMCHAN_PIPELINE_ROLE" // set in the re-started stages
)

func inName(base string) string  { return base + "-in" }
func outName(base string) string { return base + "-out" }

func main() {
	n := flag.Uint64("n", 2_000_000, "values to push through the pipeline")
	k := flag.Int("workers", 3, "worker processes")
	base := flag.String("base", "", "channel name prefix (internal: set by the parent)")
	idx := flag.Int("i", 0, "worker index (internal)")
	flag.Parse()
	if *k < 1 || *k > 64 || *n == 0 {
		fmt.Fprintln(os.Stderr, "pipeline: -workers must be in [1, 64] and -n positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch role := os.Getenv(roleEnv); role {
	case "":
		err = parent(ctx, *n, *k)
	case "source":
		err = source(ctx, *base, *n)
	case "worker":
		err = worker(ctx, *base, *idx)
	case "sink":
		err = sink(ctx, *base, *n, *k)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipeline: %v\n", err)
		os.Exit(1)
	}
}

// parent creates the channels, starts the stages, closes the output
// channel once every worker is done, and removes the channels at the end.
func parent(ctx context.Context, n uint64, k int) error {
	base := "shmchan-pipeline-" + strconv.Itoa(os.Getpid())
	defer shmchan.Unlink(inName(base))
	defer shmchan.Unlink(outName(base))

	// Create both channels before any stage starts, so that every stage
	// can simply Open. The work queue has one receiver entry per worker.
	in, err := shmchan.Create[Item](inName(base), shmchan.WithCapacity(capacity),
		shmchan.WithMultiConsumer(), shmchan.WithConsumers(k))
	if err != nil {
		return err
	}
	in.Close()
	out, err := shmchan.Create[Result](outName(base), shmchan.WithCapacity(capacity),
		shmchan.WithMultiProducer(), shmchan.WithProducers(k+1)) // +1: the parent closes it
	if err != nil {
		return err
	}
	defer out.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := func(role string, args ...string) (*exec.Cmd, error) {
		args = append([]string{"-base", base, "-n", fmt.Sprint(n), "-workers", fmt.Sprint(k)}, args...)
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), roleEnv+"="+role)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd, cmd.Start()
	}
	fmt.Printf("pipeline: %d values: 1 source → work queue → %d worker%s → MPSC → 1 sink, %d processes\n", n, k, map[bool]string{true: "", false: "s"}[k == 1], k+2)
	snk, err := start("sink")
	if err != nil {
		return err
	}
	var stages []*exec.Cmd
	for i := range k {
		t, err := start("worker", "-i", fmt.Sprint(i))
		if err != nil {
			return err
		}
		stages = append(stages, t)
	}
	src, err := start("source")
	if err != nil {
		return err
	}

	var errs []error
	if err := src.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
	}
	for i, t := range stages {
		if err := t.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", i, err))
		}
	}
	// Every sender is gone: now the output can be closed for all.
	if err := out.CloseSend(); err != nil {
		errs = append(errs, fmt.Errorf("closing the output: %w", err))
	}
	if err := snk.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("sink: %w", err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if ctx.Err() != nil {
		fmt.Println("pipeline: interrupted")
		return nil
	}
	fmt.Println("pipeline: done")
	return nil
}

// source sends x(0..n-1) into the work queue, then closes it. Ctrl-C
// ends it early (it still closes).
func source(ctx context.Context, base string, n uint64) error {
	out, err := shmchan.Open[Item](inName(base))
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]Item, batch)
	for seq := uint64(0); seq < n && ctx.Err() == nil; {
		m := min(uint64(batch), n-seq)
		for j := range m {
			buf[j] = Item{Seq: seq + j, X: x(seq + j)}
		}
		sent, err := out.SendBatch(ctx, buf[:m])
		seq += uint64(sent)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	return out.CloseSend()
}

// worker receives items from the work queue, as the other workers do,
// until it is closed and drained, and sends f of each into the shared
// output. It checks that its items come in the order the source sent
// them.
func worker(ctx context.Context, base string, i int) error {
	in, err := shmchan.Open[Item](inName(base))
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := shmchan.Open[Result](outName(base))
	if err != nil {
		return err
	}
	defer out.Close()

	items := make([]Item, batch)
	results := make([]Result, batch)
	var done, last uint64
	for {
		m, err := in.RecvBatch(ctx, items)
		if errors.Is(err, shmchan.ErrClosed) {
			break // the source closed it and every value was received
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		for j, it := range items[:m] {
			if done+uint64(j) > 0 && it.Seq <= last {
				return fmt.Errorf("worker %d: item %d after item %d: out of the source's order", i, it.Seq, last)
			}
			last = it.Seq
			results[j] = Result{Seq: it.Seq, Y: f(it.X), By: uint64(i)}
		}
		sent, err := out.SendBatch(ctx, results[:m])
		done += uint64(sent)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
	}
	fmt.Printf("worker %d (pid %d): %d values\n", i, os.Getpid(), done)
	return nil
}

// sink receives results until the output is closed, checks each, and
// reports the rate and whether every value 0..n-1 came exactly once.
func sink(ctx context.Context, base string, n uint64, k int) error {
	in, err := shmchan.Open[Result](outName(base))
	if err != nil {
		return err
	}
	defer in.Close()

	seen := make([]uint64, (n+63)/64)
	var got atomic.Uint64
	var dup, bad, outside uint64
	perT := make([]uint64, k)

	stopTick := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := uint64(0), time.Now()
		for {
			select {
			case <-stopTick:
				return
			case now := <-tick.C:
				g := got.Load()
				fmt.Printf("sink: %10d values  %s values/s\n", g, rate(g-last, now.Sub(lastAt)))
				last, lastAt = g, now
			}
		}
	}()

	buf := make([]Result, batch)
	var start time.Time
	var total uint64
	interrupted := false
	for {
		m, err := in.RecvBatch(ctx, buf)
		if errors.Is(err, shmchan.ErrClosed) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			close(stopTick)
			return err
		}
		if total == 0 {
			start = time.Now()
		}
		for _, r := range buf[:m] {
			switch {
			case r.Seq >= n || r.By >= uint64(k):
				outside++
				continue
			case r.Y != f(x(r.Seq)):
				bad++
			}
			w, b := r.Seq/64, uint64(1)<<(r.Seq%64)
			if seen[w]&b != 0 {
				dup++
			}
			seen[w] |= b
			perT[r.By]++
		}
		total += uint64(m)
		got.Store(total)
	}
	close(stopTick)
	<-ticked
	el := time.Since(start)
	interrupted = interrupted || ctx.Err() != nil

	var missing uint64
	for i, w := range seen {
		want := ^uint64(0)
		if rest := n - uint64(i)*64; rest < 64 {
			want = 1<<rest - 1
		}
		missing += uint64(bits.OnesCount64(want &^ w))
	}
	fmt.Printf("sink: %d values in %v: %s values/s end to end; from each worker: %v\n",
		total, el.Round(time.Millisecond), rate(total, el), perT)
	if interrupted {
		fmt.Printf("sink: interrupted; %d values had not arrived\n", missing)
		return nil
	}
	if missing != 0 || dup != 0 || bad != 0 || outside != 0 {
		return fmt.Errorf("sink: %d missing, %d duplicated, %d wrong results, %d impossible", missing, dup, bad, outside)
	}
	fmt.Printf("sink: every value 0..%d arrived exactly once, every result checked\n", n-1)
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
