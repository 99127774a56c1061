package mq_test

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/mq"
)

// TestAwaitArrivalWakesAll: one message wakes every goroutine waiting in
// AwaitArrival on its own descriptor of the queue, though only one can take
// it; a message already there ends a wait at once.
func TestAwaitArrivalWakesAll(t *testing.T) {
	name, q := create(t, &mq.Attr{MaxMsg: 4, MsgSize: 1})
	const n = 4
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	// gen plays the part of the sleepers' futex word: the sender moves it
	// before it sends, and a waiter that saw the old value passes a done
	// function that notices the move (a message that arrived before a
	// waiter's poll was armed may have been taken by another waiter).
	var gen atomic.Uint32
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		started := make(chan struct{}, n)
		woke := make(chan time.Duration, n)
		for i := 0; i < n; i++ {
			w := open(t, name, os.O_RDWR)
			wg.Add(1)
			g := gen.Load()
			go func() {
				defer wg.Done()
				started <- struct{}{}
				t0 := time.Now()
				if err := w.AwaitArrival(ctx, func() bool { return gen.Load() != g }); err != nil {
					t.Error(err)
				}
				woke <- time.Since(t0)
				buf := make([]byte, 1)
				w.TryReceive(buf)
			}()
		}
		for i := 0; i < n; i++ {
			<-started
		}
		time.Sleep(20 * time.Millisecond) // most parked in the poller
		gen.Add(1)
		if err := q.TrySend([]byte{1}, 0); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(woke)
		for d := range woke {
			if d > 2*time.Second {
				t.Fatalf("round %d: a waiter woke after %v", round, d)
			}
		}
	}
	// A message already there: at once.
	if err := q.TrySend([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitArrival(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	buf := make([]byte, 1)
	q.TryReceive(buf)
	if err := q.AwaitArrival(context.Background(), func() bool { return true }); err != nil {
		t.Fatalf("AwaitArrival with done true: %v", err)
	}
	if err := q.AwaitArrival(c, nil); err == nil {
		// a spurious return is allowed, but not a second one in a row on an empty queue
		if err := q.AwaitArrival(context.Background(), func() bool { return true }); err != nil {
			t.Fatalf("AwaitArrival with done true: %v", err)
		}
		if err := q.AwaitArrival(c, nil); err == nil {
			t.Fatal("AwaitArrival returned twice on an empty queue")
		}
	}
}
