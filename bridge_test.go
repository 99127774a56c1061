package shmchan

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRecvChanSelect: two shmchan channels, fed by two helper processes,
// are read in one select through RecvChan; both drain completely.
func TestRecvChanSelect(t *testing.T) {
	const n = 2000
	var ins [2]<-chan rec
	var errs [2]func() error
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range ins {
		name, c := testChan[rec](t, WithCapacity(64))
		ins[i], errs[i] = RecvChan(ctx, c, 0)
		spawn(t, "send", name, "futex", 0, n, 1)
	}
	next := [2]uint64{}
	for ins[0] != nil || ins[1] != nil {
		select {
		case v, ok := <-ins[0]:
			if !ok {
				ins[0] = nil
				continue
			}
			if v != mkrec(next[0]) {
				t.Fatalf("channel 0: %+v, want %d", v, next[0])
			}
			next[0]++
		case v, ok := <-ins[1]:
			if !ok {
				ins[1] = nil
				continue
			}
			if v != mkrec(next[1]) {
				t.Fatalf("channel 1: %+v, want %d", v, next[1])
			}
			next[1]++
		}
	}
	for i := range errs {
		if err := errs[i](); err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		if next[i] != n {
			t.Fatalf("channel %d: %d values", i, next[i])
		}
	}
}

func TestRecvChanCancel(t *testing.T) {
	c, err := Create[rec](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out, wait := RecvChan(ctx, c, 1)
	cancel()
	for range out {
	}
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

// TestSendChan: values written to the bridge reach a receiving process in
// order, and closing the bridge closes the shmchan channel for sending.
func TestSendChan(t *testing.T) {
	const n = 3000
	name, c := testChan[rec](t, WithCapacity(16))
	h := spawn(t, "recv", name, "futex", 0, n)
	in, wait := SendChan(context.Background(), c, 8, true)
	for i := uint64(0); i < n; i++ {
		in <- mkrec(i)
	}
	close(in)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.TrySend(mkrec(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the bridge closed: %v", err)
	}
}

// TestSendChanError: after an error the bridge keeps draining, so the
// writer never blocks, and reports the error.
func TestSendChanError(t *testing.T) {
	c, err := Create[rec](testName(t), WithCapacity(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	in, wait := SendChan(ctx, c, 0, false)
	for i := uint64(0); i < 10; i++ { // the second send blocks until the deadline, then fails
		in <- mkrec(i)
	}
	close(in)
	if err := wait(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
}

// bigValue is larger than a Go channel element may be: Chan[bigValue] must
// still compile (the bridges are functions, not methods).
type bigValue [1 << 17]uint64

var _ = func() { _, _ = Create[bigValue]("x") }
