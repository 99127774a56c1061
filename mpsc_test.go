package shmchan

// MPSC tests of the public API: many producer processes (or handles) into
// one consumer, producers that die or stop between claim and commit, role
// entries, CloseSend, and throughput next to SPSC. Helper processes are
// registered in extraHelpers (see helper_test.go) under "mpsc-*" modes.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
)

// mrec is the value of the MPSC tests: the producer, its sequence number,
// and a check word over both, so a torn value or one from the wrong
// producer is detected.
type mrec struct {
	P, Seq, Sum uint64
}

func mkmrec(p, seq uint64) mrec {
	return mrec{P: p, Seq: seq, Sum: (p<<40^seq)*0x9E3779B97F4A7C15 ^ 0xc2b2ae3d27d4eb4f}
}

func (r mrec) ok() bool { return r == mkmrec(r.P, r.Seq) }

// mpscOrder checks a consumer's view: each producer's values whole, in
// order, without a gap or a repeat.
type mpscOrder struct {
	next  map[uint64]uint64
	total uint64
}

func newMPSCOrder() *mpscOrder { return &mpscOrder{next: map[uint64]uint64{}} }

func (o *mpscOrder) check(v mrec) error {
	if !v.ok() {
		return fmt.Errorf("torn or corrupt value %+v", v)
	}
	if want := o.next[v.P]; v.Seq != want {
		return fmt.Errorf("producer %d: got seq %d, want %d", v.P, v.Seq, want)
	}
	o.next[v.P]++
	o.total++
	return nil
}

// mpscHow is how a producer sends: each producer of a test uses one of
// these, so every send path goes through the MPSC claim.
var mpscHow = []string{"send", "batch", "func", "try"}

// mpscBatch is the batch size of the "batch" producers.
const mpscBatch = 16

// mpscProduce sends values id/start .. id/start+n-1 through c the way how
// says. It returns how many it sent (all, or fewer with an error).
func mpscProduce(ctx context.Context, c *Chan[mrec], id, start, n uint64, how string) (uint64, error) {
	end := start + n
	i := start
	switch how {
	case "batch":
		var buf [mpscBatch]mrec
		for i < end {
			k := min(end-i, mpscBatch)
			for j := range k {
				buf[j] = mkmrec(id, i+j)
			}
			sent, err := c.SendBatch(ctx, buf[:k])
			i += uint64(sent)
			if err != nil {
				return i - start, err
			}
		}
	case "func":
		for ; i < end; i++ {
			seq := i
			if err := c.SendFunc(ctx, func(p *mrec) { *p = mkmrec(id, seq) }); err != nil {
				return i - start, err
			}
		}
	case "try": // TrySend, and Send when the channel is full
		for ; i < end; i++ {
			err := c.TrySend(mkmrec(id, i))
			if errors.Is(err, ErrFull) {
				err = c.Send(ctx, mkmrec(id, i))
			}
			if err != nil {
				return i - start, err
			}
		}
	case "slow": // SendFunc, with a fill that takes a while between claim and commit
		for ; i < end; i++ {
			seq := i
			err := c.SendFunc(ctx, func(p *mrec) {
				for t := time.Now(); time.Since(t) < 20*time.Microsecond; {
				}
				*p = mkmrec(id, seq)
			})
			if err != nil {
				return i - start, err
			}
		}
	default:
		for ; i < end; i++ {
			if err := c.Send(ctx, mkmrec(id, i)); err != nil {
				return i - start, err
			}
		}
	}
	return n, nil
}

// waitFile waits until path exists ("-": forever).
func waitFile(path string, poll time.Duration) {
	for {
		if path != "-" {
			if _, err := os.Stat(path); err == nil {
				return
			}
		}
		time.Sleep(poll)
	}
}

func init() {
	fail := testutil.HelperFailed
	num := func(args []string, i int) uint64 {
		if i >= len(args) {
			return 0
		}
		if args[i] == "inf" {
			return 1 << 62
		}
		n, _ := strconv.ParseUint(args[i], 10, 64)
		return n
	}
	arg := func(args []string, i int) string {
		if i < len(args) {
			return args[i]
		}
		return "-"
	}

	// mpsc-send name id count how gofile: send id/0..count-1, then print
	// "done"; if the channel is closed first, print "closed <sent>".
	// It starts once gofile exists ("-": at once).
	extraHelpers["mpsc-send"] = func(args []string) int {
		c, err := Open[mrec](arg(args, 0))
		if err != nil {
			return fail("mpsc-send", err)
		}
		defer c.Close()
		say("ready")
		if g := arg(args, 4); g != "-" {
			waitFile(g, 100*time.Microsecond)
		}
		sent, err := mpscProduce(context.Background(), c, num(args, 1), 0, num(args, 2), arg(args, 3))
		if errors.Is(err, ErrClosed) {
			say("closed %d", sent)
			return 0
		}
		if err != nil {
			return fail("mpsc-send", err)
		}
		say("done")
		return 0
	}

	// mpsc-claim name id gofile: claim one slot with SendFunc, print
	// "claimed", then hold the claim, uncommitted, until gofile exists
	// ("-": forever); then fill in id/0 and commit, print "committed".
	extraHelpers["mpsc-claim"] = func(args []string) int {
		c, err := Open[mrec](arg(args, 0))
		if err != nil {
			return fail("mpsc-claim", err)
		}
		defer c.Close()
		id, gofile := num(args, 1), arg(args, 2)
		err = c.SendFunc(context.Background(), func(p *mrec) {
			say("claimed")
			waitFile(gofile, time.Millisecond)
			*p = mkmrec(id, 0)
		})
		if err != nil {
			return fail("mpsc-claim", err)
		}
		say("committed")
		return 0
	}

	// mpsc-hold name id: take a sender entry (by sending id/0) and keep it
	// until killed; print "holding", or "busy" (and exit) if every entry
	// is held.
	extraHelpers["mpsc-hold"] = func(args []string) int {
		c, err := Open[mrec](arg(args, 0))
		if err != nil {
			return fail("mpsc-hold", err)
		}
		defer c.Close()
		err = c.TrySend(mkmrec(num(args, 1), 0))
		if errors.Is(err, ErrBusy) {
			say("busy")
			return 0
		}
		if err != nil {
			return fail("mpsc-hold", err)
		}
		say("holding")
		waitFile("-", time.Hour)
		return 0
	}

	// mpsc-bench name size count gofile: send count values of size 16 or
	// 256 bytes once gofile exists.
	extraHelpers["mpsc-bench"] = func(args []string) int {
		var err error
		if arg(args, 1) == "256" {
			err = benchProduce(arg(args, 0), num(args, 2), arg(args, 3), func(i uint64) rec256 { return rec256{Seq: i} })
		} else {
			err = benchProduce(arg(args, 0), num(args, 2), arg(args, 3), func(i uint64) rec { return rec{Seq: i} })
		}
		if err != nil {
			return fail("mpsc-bench", err)
		}
		return 0
	}
}

func benchProduce[T any](name string, n uint64, gofile string, mk func(uint64) T) error {
	c, err := Open[T](name)
	if err != nil {
		return err
	}
	defer c.Close()
	say("ready")
	waitFile(gofile, 100*time.Microsecond)
	ctx := context.Background()
	for i := range n {
		if err := c.Send(ctx, mk(i)); err != nil {
			return err
		}
	}
	return nil
}

// mpscEntries describes the sender entries of c's region (pid, claim,
// committed count), for failure messages.
func mpscEntries(c *Chan[mrec]) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stats %+v; head %d tail %#x", c.Stats(),
		binary.LittleEndian.Uint64(c.mem[layout.OffHead:]), binary.LittleEndian.Uint64(c.mem[layout.OffTail:]))
	for i := 1; i <= int(c.hdr.Producers); i++ {
		e := c.mem[layout.RoleOffset(i):]
		pid := binary.LittleEndian.Uint32(e[layout.RolePID:])
		lo := binary.LittleEndian.Uint64(e[layout.RoleClaimLo:])
		hi := binary.LittleEndian.Uint64(e[layout.RoleClaimHi:])
		sent := binary.LittleEndian.Uint64(e[layout.RoleSent:])
		if pid == 0 && hi == 0 && sent == 0 {
			continue
		}
		alive, _ := c.alive(i)
		fmt.Fprintf(&b, "; entry %d: pid %d alive %v claim [%d,%d) sent %d", i, pid, alive, lo, hi, sent)
	}
	return b.String()
}

// nextLine returns the helper's next line other than "ready" ("" if it
// exited), waiting up to a minute.
func nextLine(h *helper) string {
	l, _ := h.Await(`a line other than "ready"`, func(l string) bool { return l != "ready" })
	return l
}

// drainClosed receives until ErrClosed, checking each value, under ctx.
func drainClosed(ctx context.Context, c *Chan[mrec], o *mpscOrder) error {
	for {
		v, err := recvWithin(ctx, c)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := o.check(v); err != nil {
			return err
		}
	}
}

// mpscCount is the number of values per producer of the big stream tests.
func mpscCount() uint64 {
	if raceEnabled || testing.Short() {
		return 20_000
	}
	return 100_000
}

// TestMPSCCrossProcess: 4 and 8 producer processes each send their values
// (through Send, SendBatch, SendFunc or TrySend) into one consumer, this
// process, which checks every value, per-producer order and the totals;
// then a producer handle closes the channel and the consumer drains to
// ErrClosed.
func TestMPSCCrossProcess(t *testing.T) {
	n := mpscCount()
	for _, wait := range crossWaits {
		for _, procs := range []int{4, 8} {
			t.Run(fmt.Sprintf("%s/%d", wait, procs), func(t *testing.T) {
				if wait == "spin" && procs > 4 && runtime.NumCPU() < procs {
					// 9 spinning processes on a 2-core machine take 1 s when it
					// is idle, 20 s when it is loaded: futex and mq cover 8.
					t.Skipf("spin with %d producer processes on %d cores", procs, runtime.NumCPU())
				}
				name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait))
				gofile := filepath.Join(t.TempDir(), "go")
				hs := make([]*helper, procs)
				for p := range hs {
					hs[p] = spawn(t, "mpsc-send", name, p, n, mpscHow[p%len(mpscHow)], gofile)
				}
				for _, h := range hs {
					h.Expect("ready")
				}
				if err := os.WriteFile(gofile, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				o := newMPSCOrder()
				total := n * uint64(procs)
				for o.total < total {
					v, err := recvWithin(ctx, c)
					if err != nil {
						t.Fatalf("after %d values: %v (%s)", o.total, err, mpscEntries(c))
					}
					if err := o.check(v); err != nil {
						t.Fatalf("after %d values: %v", o.total, err)
					}
				}
				elapsed := time.Since(start)
				for p, h := range hs {
					if err := h.Wait(); err != nil {
						t.Fatalf("producer %d: %v", p, err)
					}
				}
				for p := range procs {
					if got := o.next[uint64(p)]; got != n {
						t.Errorf("producer %d: %d values, want %d", p, got, n)
					}
				}
				if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
					t.Fatalf("after every value: %v, want ErrEmpty", err)
				}
				closer, err := Open[mrec](name)
				if err != nil {
					t.Fatal(err)
				}
				defer closer.Close()
				if err := closer.CloseSend(); err != nil {
					t.Fatal(err)
				}
				if err := drainClosed(ctx, c, o); err != nil || o.total != total {
					t.Fatalf("drain: %v, %d values, want %d", err, o.total, total)
				}
				st := c.Stats()
				if st.Sent != total || st.Received != total || st.Abandoned != 0 || !st.Closed {
					t.Fatalf("stats %+v, want %d sent and received, none abandoned, closed", st, total)
				}
				t.Logf("%d producers × %d values in %v (%.0f values/s); receiver slept %d, senders %d",
					procs, n, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), st.RecvSleeps, st.SendSleeps)
			})
		}
	}
}

// TestMPSCInProcess: N goroutines, each with its own handle (so its own
// sender entry), send into one consumer handle, in every wait mode; the
// consumer uses each receive call in turn.
func TestMPSCInProcess(t *testing.T) {
	n := uint64(50_000)
	if raceEnabled || testing.Short() {
		n = 10_000
	}
	for _, wait := range crossWaits {
		for _, producers := range []int{1, 4, 8} {
			t.Run(fmt.Sprintf("%s/%d", wait, producers), func(t *testing.T) {
				name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(256))
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				var wg sync.WaitGroup
				errs := make(chan error, producers)
				for p := range producers {
					h, err := Open[mrec](name)
					if err != nil {
						t.Fatal(err)
					}
					defer h.Close()
					wg.Add(1)
					go func() {
						defer wg.Done()
						how := mpscHow[p%len(mpscHow)]
						if _, err := mpscProduce(ctx, h, uint64(p), 0, n, how); err != nil {
							errs <- fmt.Errorf("producer %d (%s): %w", p, how, err)
						}
					}()
				}
				o := newMPSCOrder()
				total := n * uint64(producers)
				var batch [4]mrec
				for i := 0; o.total < total; i++ {
					var got []mrec
					var err error
					switch i % 4 {
					case 0:
						var v mrec
						v, err = c.Recv(ctx)
						got = []mrec{v}
					case 1:
						var v mrec
						err = c.RecvFunc(ctx, func(p *mrec) { v = *p })
						got = []mrec{v}
					case 2:
						var k int
						k, err = c.RecvBatch(ctx, batch[:])
						got = batch[:k]
					case 3:
						var v mrec
						v, err = c.TryRecv()
						if errors.Is(err, ErrEmpty) {
							continue
						}
						got = []mrec{v}
					}
					if err != nil {
						select {
						case e := <-errs:
							t.Fatalf("after %d values: %v; %v", o.total, err, e)
						default:
						}
						t.Fatalf("after %d values: %v (%s)", o.total, err, mpscEntries(c))
					}
					for _, v := range got {
						if err := o.check(v); err != nil {
							t.Fatalf("after %d values: %v", o.total, err)
						}
					}
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				if st := c.Stats(); st.Sent != total || st.Received != total || st.Abandoned != 0 {
					t.Fatalf("stats %+v, want %d sent and received, none abandoned", st, total)
				}
			})
		}
	}
}

// mpscStall is how long one receive may take in the tests where values
// are known to be on their way: longer is a lost wake-up (a receive woken
// only by its context's deadline may still return a value, so the time is
// checked, not just the error).
const mpscStall = 10 * time.Second

// recvWithin receives one value within mpscStall (and before ctx ends).
func recvWithin(ctx context.Context, c *Chan[mrec]) (mrec, error) {
	ctx, cancel := context.WithTimeout(ctx, mpscStall)
	defer cancel()
	start := time.Now()
	v, err := c.Recv(ctx)
	if d := time.Since(start); err == nil && d >= mpscStall {
		return v, fmt.Errorf("receive stalled for %v (woken by its deadline, not by the ring)", d.Round(time.Millisecond))
	}
	return v, err
}

// mpscRecvN receives want values (checked) under a deadline.
func mpscRecvN(t *testing.T, c *Chan[mrec], o *mpscOrder, want uint64, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for range want {
		v, err := recvWithin(ctx, c)
		if err != nil {
			t.Fatalf("after %d values: %v (%s)", o.total, err, mpscEntries(c))
		}
		if err := o.check(v); err != nil {
			t.Fatalf("after %d values: %v", o.total, err)
		}
	}
}

// mpscStuck is the stuck-check interval of the dead and stopped writer
// tests: short, so that they are quick.
const mpscStuck = 5 * time.Millisecond

// TestMPSCDeadWriter: producer A claims a slot and is SIGKILLed before it
// commits; producers B and C, which claimed after it and fill the ring
// behind it, are not wedged: the consumer skips the dead slot (one
// abandoned), receives every B and C value in order, and the channel goes
// on working.
func TestMPSCDeadWriter(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) {
			const k = 2000
			name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(64), withStuckCheck(mpscStuck))
			a := spawn(t, "mpsc-claim", name, 0, "-")
			a.Expect("claimed")
			b := spawn(t, "mpsc-send", name, 1, k, "send", "-")
			cc := spawn(t, "mpsc-send", name, 2, k, "batch", "-")
			// B and C fill the ring behind A's slot and block.
			waitFor(t, func() bool { return c.Len() == c.Cap() }, "the ring to fill")
			if got := c.Stats().Abandoned; got != 0 {
				t.Fatalf("%d slots abandoned while their writer lives", got)
			}
			a.Cmd.Process.Signal(syscall.SIGKILL)
			a.Wait()
			o := newMPSCOrder()
			mpscRecvN(t, c, o, 2*k, time.Minute)
			for _, h := range []*helper{b, cc} {
				if err := h.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			if o.next[0] != 0 || o.next[1] != k || o.next[2] != k {
				t.Fatalf("per producer: %v", o.next)
			}
			if st := c.Stats(); st.Abandoned != 1 || st.Received != 2*k+1 {
				t.Fatalf("stats %+v, want 1 abandoned and %d received", st, 2*k+1)
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryRecv after all: %v, want ErrEmpty", err)
			}
			// The channel goes on: a new producer (it may take A's entry).
			d := spawn(t, "mpsc-send", name, 3, 100, "func", "-")
			mpscRecvN(t, c, o, 100, time.Minute)
			if err := d.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := drainClosed(ctx, c, o); err != nil {
				t.Fatal(err)
			}
			if st := c.Stats(); st.Abandoned != 1 {
				t.Fatalf("stats %+v, want 1 abandoned", st)
			}
		})
	}
}

// TestMPSCDeadWriterQueueBehind: producer A claims a slot and is
// SIGKILLed; producer B's values, claimed after it, are all committed and B
// has exited, so no further send will wake the consumer. The consumer must
// skip the dead slot and deliver B's values right after, within a few
// stuck-check intervals: a receiver that skips a slot in the re-check before
// it sleeps must look at the next slot instead of sleeping (until the next
// send, or the sleep's upper bound, ring.MaxSleep). The best of three
// attempts is taken, so that a loaded machine does not fail it.
func TestMPSCDeadWriterQueueBehind(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) {
			const k = 10
			limit := 20 * mpscStuck // a fixed receiver takes 1 to 2 intervals
			best := time.Duration(1<<63 - 1)
			for attempt := 0; attempt < 3 && best >= limit; attempt++ {
				name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(64), withStuckCheck(mpscStuck))
				a := spawn(t, "mpsc-claim", name, 0, "-")
				a.Expect("claimed")
				b := spawn(t, "mpsc-send", name, 1, k, "send", "-")
				b.Expect("done")
				if err := b.Wait(); err != nil {
					t.Fatal(err)
				}
				a.Cmd.Process.Signal(syscall.SIGKILL)
				a.Wait()
				o := newMPSCOrder()
				start := time.Now()
				v, err := recvWithin(context.Background(), c)
				if err != nil {
					t.Fatalf("first value: %v (%s)", err, mpscEntries(c))
				}
				best = min(best, time.Since(start))
				if err := o.check(v); err != nil {
					t.Fatal(err)
				}
				mpscRecvN(t, c, o, k-1, time.Minute)
				if st := c.Stats(); st.Abandoned != 1 || o.next[1] != k {
					t.Fatalf("stats %+v, per producer %v; want 1 abandoned, %d values", st, o.next, k)
				}
			}
			if best >= limit {
				t.Fatalf("the first value behind a dead writer's slot took %v at best (stuck check %v): "+
					"the receiver skipped the slot, then slept instead of taking the next, committed one",
					best.Round(time.Millisecond), mpscStuck)
			}
		})
	}
}

// TestMPSCStaleClaim races two senders for the last free slot, on the ring
// of a real region with a liveness function the test controls. The winner
// then "dies" between claim and commit; the loser, which got ErrFull, is
// alive and holds no claim, so the receiver must skip the dead slot. A
// loser whose claim CAS failed must not leave its intended claim recorded:
// a stale claim covering the winner's slot makes the receiver believe a
// live writer owns it, and the ring is wedged for good (the receiver waits
// on the slot, the live loser waits for space).
func TestMPSCStaleClaim(t *testing.T) {
	trials, budget := 5000, 3*time.Second
	if raceEnabled || testing.Short() {
		trials, budget = 1000, time.Second
	}
	_, c := testChan[mrec](t, WithMultiProducer(), WithCapacity(1), WithWait(WaitSpin))
	var dead [3]atomic.Bool
	r, err := ring.New(c.mem, c.hdr, ring.Config{
		Spin:       -1,
		StuckCheck: 50 * time.Microsecond,
		Alive:      func(i int) (bool, error) { return i < 1 || i > 2 || !dead[i].Load(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.NewReceiver(ring.Identity{PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	claim := func(i int) (uint64, uint64) {
		e := c.mem[layout.RoleOffset(i):]
		return atomic.LoadUint64((*uint64)(unsafe.Pointer(&e[layout.RoleClaimLo]))),
			atomic.LoadUint64((*uint64)(unsafe.Pointer(&e[layout.RoleClaimHi])))
	}
	// The racer goroutine spins on the other processor; each time the gun
	// (the trial number) changes it reserves with sender 0 of that trial.
	// This goroutine reserves with sender 1 after a random short delay, so
	// that over the trials the two land at every offset from each other.
	var senders [2]*ring.Sender
	var errs [2]error
	var gun, fired atomic.Int64
	var stop atomic.Bool
	gun.Store(-1)
	fired.Store(-1)
	stopped := make(chan struct{})
	defer func() {
		stop.Store(true)
		<-stopped
	}()
	go func() {
		defer close(stopped)
		last := int64(-1)
		for i := 1; !stop.Load(); i++ {
			if g := gun.Load(); g != last {
				last = g
				_, errs[0] = senders[0].TryReserve()
				fired.Store(g)
			} else if i%(1<<16) == 0 {
				runtime.Gosched()
			}
		}
	}()
	start := time.Now()
	trial := 0
	for ; trial < trials && time.Since(start) < budget; trial++ {
		s := &senders
		for i := range s {
			if s[i], err = r.NewSender(i+1, ring.Identity{PID: uint32(100 + i)}); err != nil {
				t.Fatal(err)
			}
			dead[i+1].Store(false)
		}
		pos := r.Stats().Sent
		delay := rand.IntN(64)
		gun.Store(int64(trial))
		for i := 0; i < delay; i++ {
			_ = gun.Load()
		}
		_, errs[1] = s[1].TryReserve()
		spinUntil(func() bool { return fired.Load() == int64(trial) })
		winner := 0
		if errs[0] != nil {
			winner = 1
		}
		loser := 1 - winner
		if errs[winner] != nil || !errors.Is(errs[loser], ring.ErrFull) {
			t.Fatalf("trial %d: TryReserve: %v, %v; want one success and one ErrFull", trial, errs[0], errs[1])
		}
		// The winner dies holding slot pos; the loser lives on.
		dead[winner+1].Store(true)
		deadline := time.Now().Add(time.Second)
		for r.Stats().Received == pos {
			_, err := rc.TryPeek()
			if err == nil || !errors.Is(err, ring.ErrEmpty) {
				t.Fatalf("trial %d: TryPeek on a slot nobody committed: %v", trial, err)
			}
			if time.Now().After(deadline) {
				lo, hi := claim(loser + 1)
				t.Fatalf("trial %d: the dead winner's slot %d is not skipped after 1s: the live loser (entry %d), "+
					"whose TryReserve returned ErrFull, still records the claim [%d,%d) (stats %+v)",
					trial, pos, loser+1, lo, hi, r.Stats())
			}
			runtime.Gosched()
		}
	}
	t.Logf("%d trials in %v", trial, time.Since(start).Round(time.Millisecond))
}

// spinUntil busy-waits for cond, yielding the processor now and then (not
// often: the racer of TestMPSCStaleClaim should get the other one).
func spinUntil(cond func() bool) {
	for i := 1; !cond(); i++ {
		if i%(1<<16) == 0 {
			runtime.Gosched()
		}
	}
}

// TestMPSCStoppedWriter: producer A claims a slot and is SIGSTOPped before
// it commits. Values claimed before A's slot are received; the consumer
// then waits at A's slot, far longer than the stuck check, without
// skipping it, and delivers nothing claimed after it. After SIGCONT, A
// commits, and its value arrives first, then everything behind it.
func TestMPSCStoppedWriter(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) {
			const before, after = 100, 300
			name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(1024), withStuckCheck(mpscStuck))
			// Producer 9 (this process, its own handle) sends before A claims.
			p9, err := Open[mrec](name)
			if err != nil {
				t.Fatal(err)
			}
			defer p9.Close()
			ctx := context.Background()
			if _, err := mpscProduce(ctx, p9, 9, 0, before, "send"); err != nil {
				t.Fatal(err)
			}
			gofile := filepath.Join(t.TempDir(), "go")
			a := spawn(t, "mpsc-claim", name, 0, gofile)
			// Whatever happens, A is continued (spawn's cleanup kills it;
			// SIGKILL ends a stopped process too).
			t.Cleanup(func() { a.Cmd.Process.Signal(syscall.SIGCONT) })
			a.Expect("claimed")
			if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			b := spawn(t, "mpsc-send", name, 1, after, "send", "-")
			b.Expect("done")
			if err := b.Wait(); err != nil {
				t.Fatal(err)
			}
			o := newMPSCOrder()
			mpscRecvN(t, c, o, before, time.Minute)
			// Now the consumer is at A's slot: it must wait, however long.
			stopped := 40 * mpscStuck
			wctx, cancel := context.WithTimeout(ctx, stopped)
			v, err := c.Recv(wctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("with A stopped: got %+v, %v; want DeadlineExceeded (%s)", v, err, mpscEntries(c))
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("TryRecv with A stopped: %v, want ErrEmpty", err)
			}
			if st := c.Stats(); st.Abandoned != 0 {
				t.Fatalf("a stopped writer's slot was skipped: stats %+v", st)
			}
			if got := c.Len(); got != after+1 {
				t.Fatalf("Len %d with A stopped, want %d", got, after+1)
			}
			// Let A go: its value comes first, then B's.
			if err := os.WriteFile(gofile, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := a.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			v, err = c.Recv(rctx)
			if err != nil || v != mkmrec(0, 0) {
				t.Fatalf("after SIGCONT: got %+v, %v; want A's value", v, err)
			}
			o.check(v)
			a.Expect("committed")
			if err := a.Wait(); err != nil {
				t.Fatal(err)
			}
			mpscRecvN(t, c, o, after, time.Minute)
			if o.next[9] != before || o.next[0] != 1 || o.next[1] != after {
				t.Fatalf("per producer: %v", o.next)
			}
			if st := c.Stats(); st.Abandoned != 0 {
				t.Fatalf("stats %+v, want none abandoned", st)
			}
			if err := p9.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := drainClosed(rctx, c, o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMPSCRandomKill: rounds of 4 producer processes, one of which is
// SIGKILLed at a random moment: at a random time after the start (possibly
// before it opened the channel), or once the consumer has seen a random
// number of its values. In half the rounds the victim takes a while between
// claim and commit, so that it often dies holding a claimed slot. The
// survivors' values all arrive; the killed one's arrive as an in-order
// prefix with no torn value; at most one claim's slots are abandoned;
// nothing hangs (every receive has a deadline).
func TestMPSCRandomKill(t *testing.T) {
	rounds, n := 100, uint64(3000)
	if raceEnabled || testing.Short() {
		rounds = 20
	}
	if raceEnabled {
		n = 1000
	}
	waits := []string{"futex", "mq"}
	caps := []int{4, 64, 1024}
	start := time.Now()
	abandoned, slowest := 0, time.Duration(0)
	for round := range rounds {
		wait, capacity := waits[round%len(waits)], caps[(round/len(waits))%len(caps)]
		victim := rand.IntN(4)
		how := make([]string, 4)
		for p := range how {
			how[p] = mpscHow[rand.IntN(len(mpscHow))]
		}
		if rand.IntN(2) == 0 {
			how[victim] = "slow"
		}
		var when string
		delay, after := time.Duration(-1), uint64(n+1)
		if rand.IntN(2) == 0 {
			delay = time.Duration(rand.IntN(30_000)) * time.Microsecond
			when = fmt.Sprintf("%v after the start", delay)
		} else {
			after = rand.Uint64N(n)
			when = fmt.Sprintf("after its value %d arrived", after)
		}
		desc := fmt.Sprintf("round %d (%s, capacity %d, producers %v, victim %d killed %s)", round, wait, capacity, how, victim, when)
		roundStart := time.Now()
		ok := t.Run(strconv.Itoa(round), func(t *testing.T) {
			name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(capacity), withStuckCheck(mpscStuck))
			hs := make([]*helper, 4)
			for p := range hs {
				hs[p] = spawn(t, "mpsc-send", name, p, n, how[p], "-")
			}
			var once sync.Once
			killed := make(chan struct{})
			kill := func() {
				once.Do(func() {
					hs[victim].Cmd.Process.Signal(syscall.SIGKILL)
					close(killed)
				})
			}
			if delay >= 0 {
				time.AfterFunc(delay, kill)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := newMPSCOrder()
			survivors := func() bool {
				for p := range 4 {
					if p != victim && o.next[uint64(p)] < n {
						return false
					}
				}
				return true
			}
			for !survivors() {
				v, err := recvWithin(ctx, c)
				if err != nil {
					t.Fatalf("%s: after %d values: %v (%s)", desc, o.total, err, mpscEntries(c))
				}
				if err := o.check(v); err != nil {
					t.Fatalf("%s: %v", desc, err)
				}
				if v.P == uint64(victim) && v.Seq == after {
					kill()
				}
			}
			kill() // if the victim sent everything first
			<-killed
			for p, h := range hs {
				err := h.Wait()
				if p != victim && err != nil {
					t.Fatalf("%s: producer %d: %v", desc, p, err)
				}
			}
			// Every producer has exited: close, and drain what the victim
			// committed before it died.
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := drainClosed(ctx, c, o); err != nil {
				t.Fatalf("%s: drain: %v (%s)", desc, err, mpscEntries(c))
			}
			if got := o.next[uint64(victim)]; got > n {
				t.Fatalf("%s: victim sent %d values of %d", desc, got, n)
			}
			st := c.Stats()
			maxLost := uint64(1)
			if how[victim] == "batch" {
				maxLost = mpscBatch
			}
			if st.Abandoned > maxLost || st.Sent != st.Received || st.Received != o.total+st.Abandoned {
				t.Fatalf("%s: stats %+v, %d values received", desc, st, o.total)
			}
			abandoned += int(st.Abandoned)
		})
		if d := time.Since(roundStart); d > 2*time.Second {
			t.Logf("%s took %v", desc, d)
		}
		slowest = max(slowest, time.Since(roundStart))
		if !ok {
			break
		}
	}
	t.Logf("%d rounds in %v (slowest %v); %d slots abandoned by killed writers",
		rounds, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), abandoned)
}

// TestMPSCBusy: with two sender entries, two live producer processes hold
// both; a third producer, in another process or this one, gets ErrBusy;
// when a holder is killed, its entry is taken by the next producer.
func TestMPSCBusy(t *testing.T) {
	name, c := testChan[mrec](t, WithMultiProducer(), WithProducers(2))
	h1 := spawn(t, "mpsc-hold", name, 1)
	h1.Expect("holding")
	h2 := spawn(t, "mpsc-hold", name, 2)
	h2.Expect("holding")
	if err := c.TrySend(mkmrec(0, 0)); !errors.Is(err, ErrBusy) {
		t.Fatalf("third producer in this process: %v, want ErrBusy", err)
	}
	h3 := spawn(t, "mpsc-hold", name, 3)
	h3.Expect("busy")
	if err := h3.Wait(); err != nil {
		t.Fatal(err)
	}
	h1.Kill()
	// The dead holder's entry is free: this process's producer takes it.
	if err := c.TrySend(mkmrec(0, 0)); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	h4 := spawn(t, "mpsc-hold", name, 4)
	h4.Expect("busy")
	h4.Wait()
	h2.Kill()
	other, err := Open[mrec](name)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.TrySend(mkmrec(5, 0)); err != nil {
		t.Fatalf("after the second holder died: %v", err)
	}
	// A handle that closes gives its entry back at once.
	other.Close()
	h6 := spawn(t, "mpsc-hold", name, 6)
	h6.Expect("holding")
	o := newMPSCOrder()
	mpscRecvN(t, c, o, 5, time.Minute)
	for _, p := range []uint64{0, 1, 2, 5, 6} {
		if o.next[p] != 1 {
			t.Fatalf("per producer: %v", o.next)
		}
	}
	if st := c.Stats(); st.Abandoned != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestMPSCCloseSend: CloseSend by one producer closes the channel for all
// of them, like close(ch): the others' sends get ErrClosed, a producer that
// attaches later too, and the consumer drains every value sent before,
// then gets ErrClosed.
func TestMPSCCloseSend(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) {
			name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(64))
			hs := []*helper{
				spawn(t, "mpsc-send", name, 0, "inf", "send", "-"),
				spawn(t, "mpsc-send", name, 1, "inf", "batch", "-"),
			}
			o := newMPSCOrder()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// Receive until both are sending.
			for o.next[0] < 100 || o.next[1] < 100 {
				v, err := recvWithin(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := o.check(v); err != nil {
					t.Fatal(err)
				}
			}
			// The consumer keeps draining while a third producer sends one
			// value and closes.
			drained := make(chan error, 1)
			go func() { drained <- drainClosed(ctx, c, o) }()
			closer, err := Open[mrec](name)
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			if err := closer.Send(ctx, mkmrec(7, 0)); err != nil {
				t.Fatal(err)
			}
			if err := closer.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if err := closer.TrySend(mkmrec(7, 1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("TrySend by the closer: %v, want ErrClosed", err)
			}
			if err := closer.Send(ctx, mkmrec(7, 1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send by the closer: %v, want ErrClosed", err)
			}
			late, err := Open[mrec](name)
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close()
			if err := late.Send(ctx, mkmrec(8, 0)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send by a later producer: %v, want ErrClosed", err)
			}
			if _, err := late.SendBatch(ctx, []mrec{mkmrec(8, 0)}); !errors.Is(err, ErrClosed) {
				t.Fatalf("SendBatch by a later producer: %v, want ErrClosed", err)
			}
			if err := late.SendFunc(ctx, func(*mrec) {}); !errors.Is(err, ErrClosed) {
				t.Fatalf("SendFunc by a later producer: %v, want ErrClosed", err)
			}
			if err := <-drained; err != nil {
				t.Fatal(err)
			}
			for p, h := range hs {
				var sent uint64
				l := nextLine(h)
				if _, err := fmt.Sscanf(l, "closed %d", &sent); err != nil {
					t.Fatalf("producer %d printed %q: %v", p, l, h.Wait())
				}
				if err := h.Wait(); err != nil {
					t.Fatal(err)
				}
				if got := o.next[uint64(p)]; got != sent {
					t.Fatalf("producer %d sent %d values before the close, %d arrived", p, sent, got)
				}
			}
			if o.next[7] != 1 {
				t.Fatalf("the closer's value: %v", o.next)
			}
			if _, err := c.Recv(ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("Recv after drain: %v", err)
			}
			if _, err := c.TryRecv(); !errors.Is(err, ErrClosed) {
				t.Fatalf("TryRecv after drain: %v", err)
			}
		})
	}
}

// TestMPSCCloseWakesBlockedSenders: producers asleep on a full channel,
// with nobody receiving, return ErrClosed when another producer closes it
// (close(ch) does not leave a blocked sender blocked either).
func TestMPSCCloseWakesBlockedSenders(t *testing.T) {
	for _, wait := range crossWaits[:2] {
		t.Run(wait, func(t *testing.T) {
			name, c := testChan[mrec](t, WithMultiProducer(), waitOpt(wait), WithCapacity(4))
			hs := []*helper{
				spawn(t, "mpsc-send", name, 0, "inf", "send", "-"),
				spawn(t, "mpsc-send", name, 1, "inf", "batch", "-"),
			}
			for _, h := range hs {
				h.Expect("ready")
			}
			waitFor(t, func() bool { return c.Stats().SendWaiters == 2 }, "both producers to sleep on the full channel")
			if err := c.CloseSend(); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(10 * time.Second)
			for p, h := range hs {
				select {
				case l := <-h.Lines:
					if !strings.HasPrefix(l, "closed ") {
						t.Fatalf("producer %d printed %q", p, l)
					}
				case <-deadline:
					t.Fatalf("producer %d still blocked 10s after CloseSend (stats %+v)", p, c.Stats())
				}
			}
		})
	}
}

// benchMPSC times producers processes sending b.N values (split among
// them) until this process, the consumer, has received them all. With
// producers == 0 it is the SPSC baseline: one producer process, an SPSC
// channel.
func benchMPSC[T any](b *testing.B, producers int, size string) {
	name := testName(b)
	opts := []Option{WithCapacity(4096)}
	procs := producers
	if producers > 0 {
		opts = append(opts, WithMultiProducer())
	} else {
		procs = 1
	}
	c, err := Create[T](name, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
		b.Fatal(err)
	}
	gofile := filepath.Join(b.TempDir(), "go")
	hs := make([]*helper, procs)
	for p := range hs {
		count := b.N / procs
		if p == 0 {
			count += b.N % procs
		}
		hs[p] = spawn(b, "mpsc-bench", name, size, count, gofile)
	}
	for _, h := range hs {
		h.Expect("ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	if err := os.WriteFile(gofile, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if _, err := c.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, h := range hs {
		if err := h.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	st := c.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(float64(st.RecvSleeps)/float64(b.N), "rsleeps/op")
	b.ReportMetric(float64(st.SendSleeps)/float64(b.N), "ssleeps/op")
}

// BenchmarkMPSC: 1, 2 and 4 producer processes into one consumer, next to
// SPSC with one producer process, for 16- and 256-byte values.
func BenchmarkMPSC(b *testing.B) {
	for _, size := range []string{"16", "256"} {
		for _, producers := range []int{0, 1, 2, 4} {
			label := fmt.Sprintf("mpsc-%d", producers)
			if producers == 0 {
				label = "spsc"
			}
			b.Run(size+"B/"+label, func(b *testing.B) {
				if size == "256" {
					b.SetBytes(256)
					benchMPSC[rec256](b, producers, size)
				} else {
					b.SetBytes(16)
					benchMPSC[rec](b, producers, size)
				}
			})
		}
	}
}
