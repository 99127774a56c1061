package shmchan

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// In-process tests of the fan-out topologies through the public API (each
// handle is its own open file description, as another process's would be);
// the cross-process ones are in fanout_proc_test.go.

func TestWorkQueueInProcess(t *testing.T) {
	name := testName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const senders, receivers, per = 3, 3, 20000
	base, err := Create[rec](name, WithMultiConsumer(), WithMultiProducer(), WithCapacity(128), WithConsumers(receivers))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	var swg, rwg sync.WaitGroup
	got := make([][]rec, receivers)
	for k := 0; k < receivers; k++ {
		c, err := Open[rec](name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rwg.Add(1)
		go func(k int) {
			defer rwg.Done()
			for v, err := range c.All(ctx) {
				if err != nil {
					t.Error(err)
					return
				}
				got[k] = append(got[k], v)
			}
		}(k)
	}
	for p := 0; p < senders; p++ {
		c, err := Open[rec](name, WithMultiProducer(), WithMultiConsumer())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		swg.Add(1)
		go func(p uint64) {
			defer swg.Done()
			for i := uint64(0); i < per; i++ {
				if err := c.Send(ctx, mkrec(p<<32|i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(p))
	}
	swg.Wait()
	if err := base.CloseSend(); err != nil {
		t.Fatal(err)
	}
	rwg.Wait()
	seen := map[uint64]bool{}
	for k, vs := range got {
		last := map[uint64]int64{}
		for _, v := range vs {
			if !v.ok() || seen[v.Seq] {
				t.Fatalf("receiver %d: value %+v torn or twice", k, v)
			}
			seen[v.Seq] = true
			p, i := v.Seq>>32, int64(v.Seq&(1<<32-1))
			if l, ok := last[p]; ok && i <= l {
				t.Fatalf("receiver %d: sender %d's %d after %d", k, p, i, l)
			}
			last[p] = i
		}
	}
	if len(seen) != senders*per {
		t.Fatalf("%d values, want %d", len(seen), senders*per)
	}
}

func TestFanOutOptions(t *testing.T) {
	name := testName(t)
	if _, err := Create[rec](name, WithMultiConsumer(), WithBroadcast(DropOldest)); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("work queue and broadcast together: %v", err)
	}
	c, err := Create[rec](name, WithBroadcast(DropOldest), WithConsumers(2), WithCapacity(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, o := range []Option{WithBroadcast(WaitForSlowest), WithConsumers(3), WithMultiConsumer(), WithMultiProducer()} {
		if _, err := Open[rec](name, o); !errors.Is(err, ErrIncompatible) {
			t.Fatalf("Open with a mismatched fan-out option: %v", err)
		}
	}
	a, _ := Open[rec](name, WithBroadcast(DropOldest), WithConsumers(2))
	defer a.Close()
	b, _ := Open[rec](name)
	defer b.Close()
	d, _ := Open[rec](name)
	defer d.Close()
	if _, err := a.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatal(err)
	}
	if _, err := b.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatal(err)
	}
	if _, err := d.TryRecv(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third receiver of two entries: %v", err)
	}
	// Senders never wait with DropOldest; a receiver that fell behind gets
	// one LagError with the exact count, then the oldest intact values.
	for i := uint64(0); i < 10; i++ {
		if err := c.TrySend(mkrec(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := a.Len(); n != 4 {
		t.Fatalf("Len of a lagging receiver = %d, want 4", n)
	}
	_, err = a.TryRecv()
	var lag *LagError
	if !errors.As(err, &lag) || lag.Missed != 6 {
		t.Fatalf("lagging receiver: %v", err)
	}
	for i := uint64(6); i < 10; i++ {
		if v, err := a.TryRecv(); err != nil || v != mkrec(i) {
			t.Fatalf("after the lag: %+v, %v; want %d", v, err, i)
		}
	}
	c.CloseSend()
	if _, err := a.TryRecv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed and drained: %v", err)
	}
	// b lagged too: All yields the LagError and goes on to the end.
	var n, lags int
	for v, err := range b.All(context.Background()) {
		if errors.As(err, &lag) {
			lags++
			continue
		}
		if err != nil || !v.ok() {
			t.Fatal(v, err)
		}
		n++
	}
	if lags != 1 || n != 4 {
		t.Fatalf("All on a lagging receiver: %d lags, %d values", lags, n)
	}
}

func TestBroadcastInProcess(t *testing.T) {
	name := testName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Create[rec](name, WithBroadcast(WaitForSlowest), WithCapacity(64), WithConsumers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const subs, n = 3, 50000
	var wg sync.WaitGroup
	ready := make(chan struct{}, subs)
	for k := 0; k < subs; k++ {
		s, err := Open[rec](name)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.TryRecv(); !errors.Is(err, ErrEmpty) { // joins
			t.Fatal(err)
		}
		ready <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := uint64(0)
			for v, err := range s.All(ctx) {
				if err != nil || v != mkrec(i) {
					t.Errorf("subscriber got %+v, %v; want %d", v, err, i)
					return
				}
				i++
			}
			if i != n {
				t.Errorf("subscriber got %d values, want %d", i, n)
			}
		}()
	}
	for i := uint64(0); i < n; i++ {
		if err := c.Send(ctx, mkrec(i)); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseSend()
	wg.Wait()
}
