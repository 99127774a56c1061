// Command pipeline is the high-throughput pipeline shmchan is made for:
// separate processes, each doing one stage, connected by shared-memory
// channels.
//
//	go run ./examples/pipeline [-n 2000000] [-transforms 2]
//
//	                ┌──▶ transform 1 ──┐
//	source ──(SPSC)─┤                  ├──(MPSC)──▶ sink
//	                └──▶ transform 2 ──┘
//
// The program starts itself again once per stage. The source deals values
// 0..n-1 round-robin into one SPSC channel per transform (a channel has
// one receiver, so fan-out is one channel per consumer). Each transform
// computes a result and sends it into one MPSC channel that all transforms
// share (WithMultiProducer: fan-in). The sink receives the results, checks
// each one, and marks it in a bitmap so that it can tell at the end that
// every value arrived exactly once. Stages move values in batches
// (SendBatch, RecvBatch): one index store and at most one wake-up per
// batch.
//
// Ending: the source closes its channels when done (CloseSend); each
// transform drains its input and exits; when all have exited the parent
// closes the shared output channel (closing an MPSC channel closes it for
// every sender, so no transform may do it while the others still send);
// the sink drains it and reports. The parent exits 0 if every stage
// succeeded and the sink saw every value exactly once. The sink prints its
// rate once a second and at the end.
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

// Item goes from the source to a transform.
type Item struct {
	Seq uint64
	X   uint64
}

// Result goes from a transform to the sink.
type Result struct {
	Seq uint64
	Y   uint64 // f(X)
	By  uint64 // which transform computed it
}

// x is the source's input for seq; f is the transform's work. The sink
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

func inName(base string, i int) string { return fmt.Sprintf("%s-in%d", base, i) }
func outName(base string) string       { return base + "-out" }

func main() {
	n := flag.Uint64("n", 2_000_000, "values to push through the pipeline")
	k := flag.Int("transforms", 2, "transform processes")
	base := flag.String("base", "", "channel name prefix (internal: set by the parent)")
	idx := flag.Int("i", 0, "transform index (internal)")
	flag.Parse()
	if *k < 1 || *k > 64 {
		fmt.Fprintln(os.Stderr, "pipeline: -transforms must be in [1, 64]")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch role := os.Getenv(roleEnv); role {
	case "":
		err = parent(ctx, *n, *k)
	case "source":
		err = source(ctx, *base, *n, *k)
	case "transform":
		err = transform(ctx, *base, *idx)
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
// channel once every transform is done, and removes the channels at the
// end.
func parent(ctx context.Context, n uint64, k int) error {
	base := "shmchan-pipeline-" + strconv.Itoa(os.Getpid())
	names := []string{outName(base)}
	for i := range k {
		names = append(names, inName(base, i))
	}
	defer func() {
		for _, nm := range names {
			shmchan.Unlink(nm)
		}
	}()

	// Create every channel before any stage starts, so that every stage
	// can simply Open.
	for i := range k {
		c, err := shmchan.Create[Item](inName(base, i), shmchan.WithCapacity(capacity))
		if err != nil {
			return err
		}
		c.Close()
	}
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
		args = append([]string{"-base", base, "-n", fmt.Sprint(n), "-transforms", fmt.Sprint(k)}, args...)
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), roleEnv+"="+role)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd, cmd.Start()
	}
	fmt.Printf("pipeline: %d values: 1 source → %d transform%s → 1 sink, %d processes\n", n, k, map[bool]string{true: "", false: "s"}[k == 1], k+2)
	snk, err := start("sink")
	if err != nil {
		return err
	}
	var stages []*exec.Cmd
	for i := range k {
		t, err := start("transform", "-i", fmt.Sprint(i))
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
			errs = append(errs, fmt.Errorf("transform %d: %w", i, err))
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

// source deals x(0..n-1) round-robin, one batch per transform at a time,
// then closes every channel. Ctrl-C ends it early (it still closes).
func source(ctx context.Context, base string, n uint64, k int) error {
	outs := make([]*shmchan.Chan[Item], k)
	for i := range k {
		c, err := shmchan.Open[Item](inName(base, i))
		if err != nil {
			return err
		}
		defer c.Close()
		outs[i] = c
	}
	buf := make([]Item, batch)
	seq := uint64(0)
	for t := 0; seq < n && ctx.Err() == nil; t = (t + 1) % k {
		m := min(uint64(batch), n-seq)
		for j := range m {
			buf[j] = Item{Seq: seq + j, X: x(seq + j)}
		}
		if _, err := outs[t].SendBatch(ctx, buf[:m]); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		seq += m
	}
	for _, c := range outs {
		if err := c.CloseSend(); err != nil {
			return err
		}
	}
	return nil
}

// transform receives items until its input is closed and drained, and
// sends f of each into the shared output.
func transform(ctx context.Context, base string, i int) error {
	in, err := shmchan.Open[Item](inName(base, i))
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
	var done uint64
	for {
		m, err := in.RecvBatch(ctx, items)
		if errors.Is(err, shmchan.ErrClosed) {
			break // the source closed it and it is drained
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		for j, it := range items[:m] {
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
	fmt.Printf("transform %d (pid %d): %d values\n", i, os.Getpid(), done)
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
	fmt.Printf("sink: %d values in %v: %s values/s end to end; from the transforms: %v\n",
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
