package shmchan

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

// TestEndpointTruncated: a peer truncates the region under live exclusive
// endpoints. Every endpoint method returns ErrCorrupt (the trap's hit word,
// or the fault guard where there is no trap, turns the memory fault into an
// error; the process does not crash), also when the endpoint is used from
// another goroutine than the one that took it, and Release puts back the
// goroutine's panic-on-fault setting.
func TestEndpointTruncated(t *testing.T) {
	skipUnderRace(t)
	for _, used := range []string{"same goroutine", "other goroutine"} {
		t.Run(used, func(t *testing.T) {
			name := testName(t)
			c, err := Create[rec](name, WithCapacity(1024))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			before := debug.SetPanicOnFault(false)
			defer debug.SetPanicOnFault(before)
			tx, err := c.Sender()
			if err != nil {
				t.Fatal(err)
			}
			rx, err := c.Receiver()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// Warm both fast paths (cached indices, the slot lengths), so
			// the calls below fault inside them and not in a slow path.
			for i := uint64(0); i < 8; i++ {
				if err := tx.Send(ctx, mkrec(i)); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := rx.Recv(ctx); err != nil || v != mkrec(0) {
				t.Fatal(v, err)
			}
			if err := os.Truncate(shmPath(name), 0); err != nil {
				t.Fatal(err)
			}
			calls := func() {
				d := 200 * time.Millisecond
				allow(t, "Sender.Send", bounded(t, "Send", d, func(ctx context.Context) error { return tx.Send(ctx, mkrec(9)) }), ErrCorrupt)
				allow(t, "Sender.TrySend", tx.TrySend(mkrec(9)), ErrCorrupt)
				allow(t, "Sender.SendBatch", func() error { _, err := tx.SendBatch(ctx, []rec{mkrec(1), mkrec(2)}); return err }(), ErrCorrupt)
				allow(t, "Sender.SendFunc", tx.SendFunc(ctx, func(v *rec) { *v = mkrec(3) }), ErrCorrupt)
				allow(t, "Receiver.Recv", bounded(t, "Recv", d, func(ctx context.Context) error { _, err := rx.Recv(ctx); return err }), ErrCorrupt)
				allow(t, "Receiver.TryRecv", func() error { _, err := rx.TryRecv(); return err }(), ErrCorrupt)
				allow(t, "Receiver.RecvBatch", func() error { _, err := rx.RecvBatch(ctx, make([]rec, 4)); return err }(), ErrCorrupt)
				allow(t, "Receiver.RecvFunc", rx.RecvFunc(ctx, func(*rec) {}), ErrCorrupt)
			}
			if used == "same goroutine" {
				calls()
			} else {
				done := make(chan struct{})
				go func() {
					defer close(done)
					calls()
				}()
				<-done
			}
			tx.Release()
			rx.Release()
			if used == "same goroutine" {
				if on := debug.SetPanicOnFault(false); on {
					t.Error("panic-on-fault still on after Release; it was off when Sender was called")
				}
			}
		})
	}
}

// TestEndpointTrappedFastPaths: on a trapped mapping the endpoints' fast
// paths run without the guard, so each must read the hit word itself. After
// a truncation, the sender's calls write into the zero pages that replaced
// the lost ones (only this process sees them) and fail; a receiver whose
// cached tail then covers those slots would find whole values there on its
// fast path. Every one of those calls must fail too: a value from a page no
// peer can see was never sent.
func TestEndpointTrappedFastPaths(t *testing.T) {
	name, c, tx, rx := testEndpoints[rec](t, WithCapacity(1024))
	if c.hit == nil {
		t.Skip("the mapping is not trapped on this platform")
	}
	ctx := context.Background()
	for i := uint64(0); i < 4; i++ { // warm both sides; everything received
		if err := tx.Send(ctx, mkrec(i)); err != nil {
			t.Fatal(err)
		}
		if v, err := rx.Recv(ctx); err != nil || v != mkrec(i) {
			t.Fatal(v, err)
		}
	}
	if err := os.Truncate(shmPath(name), 0); err != nil {
		t.Fatal(err)
	}
	for i := uint64(4); i < 12; i++ {
		allow(t, "Send after the cut", tx.Send(ctx, mkrec(i)), ErrCorrupt)
	}
	for i := 0; i < 12; i++ {
		v, err := rx.Recv(ctx)
		allow(t, "Recv after the cut", err, ErrCorrupt)
		if err == nil {
			t.Fatalf("Recv after the cut returned %+v from a page only this process sees", v)
		}
	}
	if atomic.LoadUint32(c.hit) == 0 {
		t.Fatal("the hit word was not set")
	}
}

// TestTruncateUnderLoad: the file is cut while a sender and a receiver
// goroutine move values as fast as they can (in futex mode, so either may
// also be asleep), and a third goroutine reads Stats and Len. Faults then
// arrive on several threads at once, in the fast paths and the slow ones.
// Every goroutine must end with ErrCorrupt within a second: no crash, no
// hang, and no value after the cut that was not sent before it.
func TestTruncateUnderLoad(t *testing.T) {
	skipUnderRace(t)
	for _, cut := range []int64{0, 4096} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			name, c, tx, rx := testEndpoints[rec](t, WithCapacity(256))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var sent, got atomic.Uint64
			errs := make(chan error, 3)
			stop := make(chan struct{})
			go func() {
				for i := uint64(0); ; i++ {
					if err := tx.Send(ctx, mkrec(i)); err != nil {
						errs <- fmt.Errorf("Send: %w", err)
						return
					}
					sent.Store(i + 1)
				}
			}()
			go func() {
				for i := uint64(0); ; i++ {
					v, err := rx.Recv(ctx)
					if err != nil {
						errs <- fmt.Errorf("Recv: %w", err)
						return
					}
					if v != mkrec(i) {
						errs <- fmt.Errorf("Recv: value %d is %+v", i, v)
						return
					}
					got.Store(i + 1)
				}
			}()
			go func() {
				for {
					select {
					case <-stop:
						errs <- nil
						return
					default:
						c.Stats()
						c.Len()
					}
				}
			}()
			for got.Load() < 10000 {
				time.Sleep(time.Millisecond)
			}
			if err := os.Truncate(shmPath(name), cut); err != nil {
				t.Fatal(err)
			}
			at := time.Now()
			for i := 0; i < 2; i++ {
				select {
				case err := <-errs:
					allow(t, "a loop after the cut", err, ErrCorrupt)
				case <-time.After(time.Second):
					t.Fatalf("a loop still running 1 s after the cut (sent %d, received %d)", sent.Load(), got.Load())
				}
			}
			t.Logf("cut at %d bytes: both loops ended %v after it; %d sent, %d received", cut, time.Since(at), sent.Load(), got.Load())
			close(stop)
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			if got.Load() > sent.Load()+1 {
				t.Errorf("received %d, sent %d", got.Load(), sent.Load())
			}
		})
	}
}
