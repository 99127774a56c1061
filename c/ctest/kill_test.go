package ctest_test

// A C peer killed with SIGKILL mid-stream: Go takes over its role exactly
// as from a Go peer (the kernel dropped the role lock), nothing committed
// is lost or duplicated, and an MPSC slot a dead C producer claimed and
// never committed is skipped, but only once the producer is dead.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
)

// TestKillCSender: a C sender killed while streaming; a Go handle takes
// the sender role and the stream goes on without a gap.
func TestKillCSender(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) {
			name, rx := testChan[rec](t, shmchan.WithCapacity(64), waitOpt(w))
			p := startPeer(t, "send", "name="+name, "kind=rec", "count=100000000")
			p.ExpectPrefix("ready")
			ctx := ctxFor(t)
			next := uint64(0)
			recv := func(ctx context.Context) error {
				var v rec
				var err error
				if ctx == nil {
					v, err = rx.TryRecv()
				} else {
					v, err = rx.Recv(ctx)
				}
				if err != nil {
					return err
				}
				if !v.ok() || v.Seq != next {
					t.Fatalf("got %+v, want seq %d", v, next)
				}
				next++
				return nil
			}
			for next < 5000 {
				if err := recv(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// While the C sender lives, its role is busy.
			other, err := shmchan.Open[rec](name)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.TrySend(mkrec(0)); !errors.Is(err, shmchan.ErrBusy) {
				t.Fatalf("send while the C sender lives: %v, want ErrBusy", err)
			}
			p.Kill()
			// Drain what it committed before it died.
			for {
				err := recv(nil)
				if errors.Is(err, shmchan.ErrEmpty) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			// Go takes over: it resumes at the tail the dead sender left.
			for range 1000 {
				if err := other.Send(ctx, mkrec(next)); err != nil {
					t.Fatalf("Go sender after the takeover: %v", err)
				}
				if err := recv(ctx); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("C sender killed after %d values; Go went on from there", next-1000)
		})
	}
}

// TestKillCReceiver: a C receiver killed while a Go sender streams into a
// full ring; a Go handle takes the receiver role and goes on from the C
// receiver's head: it has lost at most the value the C receiver had taken
// but not yet printed, and nothing is duplicated.
func TestKillCReceiver(t *testing.T) {
	for _, w := range []string{"futex", "mq"} {
		t.Run(w, func(t *testing.T) {
			name, tx := testChan[rec](t, shmchan.WithCapacity(64), waitOpt(w))
			p := startPeer(t, "report", "name="+name, "kind=rec")
			p.ExpectPrefix("ready")
			ctx, cancel := context.WithCancel(ctxFor(t))
			sent := make(chan uint64, 1)
			go func() {
				var i uint64
				for ; ; i++ {
					if err := tx.Send(ctx, mkrec(i)); err != nil {
						break
					}
				}
				sent <- i
			}()
			last := int64(-1)
			for last < 5000 {
				l := p.ExpectPrefix("got ")
				v, _ := strconv.ParseInt(strings.TrimPrefix(l, "got "), 10, 64)
				if v != last+1 {
					t.Fatalf("C receiver got %d after %d", v, last)
				}
				last = v
			}
			p.Kill()
			for l := range p.Lines { // what it printed before it died
				if v, err := strconv.ParseInt(strings.TrimPrefix(l, "got "), 10, 64); err == nil {
					if v != last+1 {
						t.Fatalf("C receiver got %d after %d", v, last)
					}
					last = v
				}
			}
			rx, err := shmchan.Open[rec](name)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			v, err := rx.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if int64(v.Seq) != last+1 && int64(v.Seq) != last+2 {
				t.Fatalf("Go receiver's first value is %d; the C receiver printed up to %d", v.Seq, last)
			}
			for i := 0; i < 2000; i++ {
				w, err := rx.Recv(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !w.ok() || w.Seq != v.Seq+1 {
					t.Fatalf("after %d: %+v", v.Seq, w)
				}
				v = w
			}
			cancel()
			<-sent
			t.Logf("C receiver killed after printing %d; Go resumed at %d", last, v.Seq-2000)
		})
	}
}

// TestKillCProducerMidClaim: an MPSC producer in C claims a position and
// never commits it. The Go receiver waits for it while it lives (however
// long), and skips exactly that slot once it is killed.
func TestKillCProducerMidClaim(t *testing.T) {
	name, rx := testChan[rec](t, shmchan.WithMultiProducer(), shmchan.WithProducers(4), shmchan.WithCapacity(64))
	tx, err := shmchan.Open[rec](name)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx := ctxFor(t)
	for i := range 10 {
		if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	p := startPeer(t, "claimhang", "name="+name, "id=2", "count=5")
	claimed := p.ExpectPrefix("claimed ")
	if claimed != "claimed 15" {
		t.Fatalf("C producer: %q, want position 15", claimed)
	}
	for i := 10; i < 20; i++ {
		if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 15 {
		if _, err := rx.Recv(ctx); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	// The claimer lives: the receiver waits, past many stuck checks.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if v, err := rx.Recv(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the claimer alive, Recv gave %+v, %v; want it to wait", v, err)
	}
	p.Kill()
	start := time.Now()
	for i := 10; i < 20; i++ {
		v, err := rx.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v.Seq != seqOf(1, uint64(i)) {
			t.Fatalf("after the skip: %+v, want producer 1's value %d", v, i)
		}
	}
	if st := rx.Stats(); st.Abandoned != 1 {
		t.Fatalf("Abandoned = %d, want 1", st.Abandoned)
	}
	t.Logf("the dead C producer's slot was skipped %v after the kill", time.Since(start))
	// The dead producer's entry is free for a new sender.
	late := startPeer(t, "send", "name="+name, "kind=rec", "id=3", "count=1")
	late.ExpectPrefix("done")
	late.Finish()
	if v, err := rx.Recv(ctx); err != nil || v.Seq != seqOf(3, 0) {
		t.Fatalf("from the late C producer: %+v, %v", v, err)
	}
}

// TestCReceiverSkipsDeadClaim: the mirror image, with a C receiver. A C
// producer claims two positions and dies; the C receiver waits while it
// lives, then skips both (the second at once, without a second stuck
// check) and goes on with the Go producer's values.
func TestCReceiverSkipsDeadClaim(t *testing.T) {
	name, tx := testChan[rec](t, shmchan.WithMultiProducer(), shmchan.WithProducers(4), shmchan.WithCapacity(64))
	rx := startPeer(t, "report", "name="+name, "kind=rec")
	rx.ExpectPrefix("ready")
	ctx := ctxFor(t)
	for i := range 10 {
		if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	p := startPeer(t, "claimhang", "name="+name, "id=2", "count=5", "claims=2")
	if claimed := p.ExpectPrefix("claimed "); claimed != "claimed 15" {
		t.Fatalf("C producer: %q, want position 15", claimed)
	}
	for i := 10; i < 20; i++ {
		if err := tx.Send(ctx, mkrec(seqOf(1, uint64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	want := func(seq uint64) {
		t.Helper()
		if l := rx.ExpectPrefix("got "); l != fmt.Sprint("got ", seq) {
			t.Fatalf("C receiver: %q, want seq %d", l, seq)
		}
	}
	for i := range 10 {
		want(seqOf(1, uint64(i)))
	}
	for i := range 5 {
		want(seqOf(2, uint64(i)))
	}
	select {
	case l := <-rx.Lines:
		t.Fatalf("with the claimer alive, the C receiver printed %q", l)
	case <-time.After(300 * time.Millisecond):
	}
	p.Kill()
	start := time.Now()
	for i := 10; i < 20; i++ {
		want(seqOf(1, uint64(i)))
	}
	took := time.Since(start)
	if st := tx.Stats(); st.Abandoned != 2 || st.Received != 27 {
		t.Fatalf("stats after the skip: %+v, want 2 abandoned of 27", st)
	}
	t.Logf("the C receiver skipped the dead producer's two slots %v after the kill", took)
}
