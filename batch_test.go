package shmchan

import (
	"context"
	"errors"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	c, err := Create[rec](testName(t), WithCapacity(64))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	next, want := uint64(0), uint64(0)
	out := make([]rec, 50)
	for round := 0; round < 200; round++ {
		vs := make([]rec, round%40+1)
		for i := range vs {
			vs[i] = mkrec(next)
			next++
		}
		if n, err := c.SendBatch(ctx, vs); err != nil || n != len(vs) {
			t.Fatalf("SendBatch: %d %v", n, err)
		}
		for want < next {
			n, err := c.RecvBatch(ctx, out[:round%50+1])
			if err != nil || n < 1 {
				t.Fatalf("RecvBatch: %d %v", n, err)
			}
			for _, v := range out[:n] {
				if v != mkrec(want) {
					t.Fatalf("got %+v want %d", v, want)
				}
				want++
			}
		}
	}
}

// TestSendBatchLargerThanRing: a batch longer than the capacity goes out
// in several publishes as the receiver makes room.
func TestSendBatchLargerThanRing(t *testing.T) {
	name, c := testChan[rec](t, WithCapacity(8))
	vs := make([]rec, 1000)
	for i := range vs {
		vs[i] = mkrec(uint64(i))
	}
	h := spawn(t, "recv", name, "futex", 0, 1000)
	if n, err := c.SendBatch(context.Background(), vs); err != nil || n != 1000 {
		t.Fatalf("%d %v", n, err)
	}
	if err := h.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestInPlace(t *testing.T) {
	c, err := Create[rec](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := uint64(0); i < 100; i++ {
		if err := c.SendFunc(ctx, func(r *rec) { *r = mkrec(i) }); err != nil {
			t.Fatal(err)
		}
		var got rec
		if err := c.RecvFunc(ctx, func(r *rec) { got = *r }); err != nil || got != mkrec(i) {
			t.Fatalf("%+v %v", got, err)
		}
	}
	// A panicking fill sends nothing.
	func() {
		defer func() { recover() }()
		c.SendFunc(ctx, func(r *rec) { panic("no") })
	}()
	if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("after a panicking fill: %v", err)
	}
	b, err := Create[[]byte](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SendFunc(ctx, func(*[]byte) {}); !errors.Is(err, ErrNotRaw) {
		t.Fatalf("SendFunc on []byte: %v", err)
	}
	if err := b.RecvFunc(ctx, func(*[]byte) {}); !errors.Is(err, ErrNotRaw) {
		t.Fatalf("RecvFunc on []byte: %v", err)
	}
}

func TestAll(t *testing.T) {
	name, c := testChan[rec](t)
	h := spawn(t, "send", name, "futex", 0, 500, 1)
	want := uint64(0)
	for v, err := range c.All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if v != mkrec(want) {
			t.Fatalf("%+v", v)
		}
		want++
	}
	if want != 500 {
		t.Fatalf("All stopped after %d values", want)
	}
	if err := h.Wait(); err != nil {
		t.Fatal(err)
	}
	// On a closed handle All yields the error.
	c.Close()
	for _, err := range c.All(context.Background()) {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%v", err)
		}
	}
}

func TestZeroAllocsRaw(t *testing.T) {
	c, err := Create[rec](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.Send(ctx, mkrec(0))
	c.Recv(ctx)
	allocs := testing.AllocsPerRun(10000, func() {
		c.Send(ctx, mkrec(1))
		c.Recv(ctx)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Send+Recv", allocs)
	}
	allocs = testing.AllocsPerRun(10000, func() {
		c.TrySend(mkrec(1))
		c.TryRecv()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per TrySend+TryRecv", allocs)
	}
}

// TestInPlacePanics: a fill that panics sends nothing and a read that
// panics still consumes its value, through the handle and the endpoints
// (whose in-place calls take the one-slot fast path).
func TestInPlacePanics(t *testing.T) {
	_, c := testChan[rec](t, WithCapacity(8))
	ctx := context.Background()
	panics := func(f func()) (p bool) {
		defer func() { p = recover() != nil }()
		f()
		return false
	}
	tx, err := c.Sender()
	if err != nil {
		t.Fatal(err)
	}
	if !panics(func() { tx.SendFunc(ctx, func(r *rec) { *r = mkrec(99); panic("fill") }) }) {
		t.Fatal("the fill's panic did not go on")
	}
	for i := uint64(0); i < 2; i++ {
		if err := tx.SendFunc(ctx, func(r *rec) { *r = mkrec(i) }); err != nil {
			t.Fatal(err)
		}
	}
	tx.Release()
	if !panics(func() { c.RecvFunc(ctx, func(*rec) { panic("read") }) }) {
		t.Fatal("the read's panic did not go on")
	}
	rx, err := c.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Release()
	var got rec
	if err := rx.RecvFunc(ctx, func(r *rec) { got = *r }); err != nil || got != mkrec(1) {
		t.Fatalf("after a panicking read: %+v, %v; want value 1 (value 0 consumed by the panicking read, none from the panicking fill)", got, err)
	}
	if _, err := rx.TryRecv(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("then: %v, want ErrEmpty", err)
	}
}
