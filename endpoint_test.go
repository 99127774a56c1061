package shmchan

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEndpoints(t *testing.T) {
	c, err := Create[rec](testName(t), WithCapacity(16))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Sender()
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := uint64(0); i < 100; i++ {
		if err := s.Send(ctx, mkrec(i)); err != nil {
			t.Fatal(err)
		}
		if v, err := r.Recv(ctx); err != nil || v != mkrec(i) {
			t.Fatalf("%+v %v", v, err)
		}
	}
	if _, err := r.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		s.Send(ctx, mkrec(1))
		r.Recv(ctx)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Send+Recv", allocs)
	}
	// While the Sender is held, the handle's own sends wait.
	sent := make(chan error, 1)
	go func() { sent <- c.TrySend(mkrec(5)) }()
	select {
	case err := <-sent:
		t.Fatalf("TrySend ran while the Sender was held: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	s.Release()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, mkrec(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Release: %v", err)
	}
	r.Release()
	if v, err := c.TryRecv(); err != nil || v != mkrec(5) {
		t.Fatalf("%+v %v", v, err)
	}
}

// TestCloseWaitsForEndpoint: Close wakes a blocked endpoint call, then waits
// for Release before unmapping.
func TestCloseWaitsForEndpoint(t *testing.T) {
	c, err := Create[rec](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := r.Recv(context.Background())
		got <- err
		time.Sleep(10 * time.Millisecond)
		r.Release()
	}()
	time.Sleep(10 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Recv: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func BenchmarkInProcessEndpoints16(b *testing.B) {
	c, err := Create[rec](testName(b), WithCapacity(4096))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, _ := c.Sender()
	defer s.Release()
	r, _ := c.Receiver()
	defer r.Release()
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			if v, err := r.Recv(ctx); err != nil || v.Seq != uint64(i) {
				b.Error(v, err)
				return
			}
		}
	}()
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Send(ctx, rec{Seq: uint64(i)})
	}
	<-done
}
