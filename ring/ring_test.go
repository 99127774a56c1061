package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// chanBell is an in-process Doorbell for testing WaitMQ's protocol on plain
// memory. Like a message-queue doorbell, a ring ends the wait of every
// sleeper then waiting, and one ring that finds nobody waiting is kept for
// the next wait (further ones are dropped, as a full queue drops them).
type chanBell struct {
	mu      sync.Mutex
	arrived chan struct{} // closed by a ring, then replaced
	pending bool
}

func newChanBell() *chanBell { return &chanBell{arrived: make(chan struct{})} }

func (b *chanBell) Ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = true
	close(b.arrived)
	b.arrived = make(chan struct{})
}

func (b *chanBell) Wait(ctx context.Context, timeout time.Duration, woken func() bool) error {
	b.mu.Lock()
	if b.pending {
		b.pending = false
		b.mu.Unlock()
		return nil
	}
	arrived := b.arrived
	b.mu.Unlock()
	if woken() {
		return nil
	}
	var tc <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-arrived:
		b.mu.Lock()
		b.pending = false
		b.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-tc:
		return context.DeadlineExceeded
	}
}

// region builds a region image on plain Go memory.
func region(t testing.TB, mode layout.Mode, wait layout.Wait, capacity uint64, maxMsg uint32, producers uint32) ([]byte, layout.Header) {
	t.Helper()
	return regionOf(t, layout.Header{Mode: mode, Wait: wait, Capacity: capacity, MaxMsg: maxMsg, Producers: producers, Flags: layout.FlagRaw})
}

// regionOf builds the region of h (its geometry computed here) on plain
// Go memory, ready, and returns it with its validated header.
func regionOf(t testing.TB, h layout.Header) ([]byte, layout.Header) {
	t.Helper()
	if err := h.Geometry(); err != nil {
		t.Fatal(err)
	}
	buf := make([]uint64, (h.TotalSize+7)/8) // 8-byte aligned
	mem := unsafeBytes(buf)[:h.TotalSize]
	h.Encode(mem)
	binary.LittleEndian.PutUint32(mem[layout.OffReady:], layout.ReadyValue)
	got, err := layout.Validate(mem, int64(len(mem)))
	if err != nil {
		t.Fatal(err)
	}
	return mem, got
}

// spsc builds an SPSC ring of capacity 16-byte slots with cfg, and takes
// its sender and receiver roles.
func spsc(t testing.TB, wait layout.Wait, capacity uint64, cfg Config) (*Ring, *Sender, *Receiver) {
	t.Helper()
	mem, h := region(t, layout.ModeSPSC, wait, capacity, 16, 1)
	r := newRing(t, mem, h, cfg)
	s, _ := r.NewSender(1, Identity{})
	c, _ := r.NewReceiver(Identity{})
	return r, s, c
}

func newRing(t testing.TB, mem []byte, h layout.Header, cfg Config) *Ring {
	t.Helper()
	if h.Wait == layout.WaitMQ {
		cfg.RecvBell, cfg.SendBell = newChanBell(), newChanBell()
	}
	r, err := New(mem, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var waitModes = []struct {
	name string
	mode layout.Wait
}{{"futex", layout.WaitFutex}, {"mq", layout.WaitMQ}, {"spin", layout.WaitSpin}}

func put(s *Sender, ctx context.Context, v uint64) error {
	b, err := s.Reserve(ctx)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b, v)
	binary.LittleEndian.PutUint64(b[8:], ^v)
	s.Commit(16)
	return nil
}

func get(c *Receiver, ctx context.Context) (uint64, error) {
	b, err := c.Peek(ctx)
	if err != nil {
		return 0, err
	}
	if len(b) != 16 {
		return 0, fmt.Errorf("length %d", len(b))
	}
	v, w := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	c.Release()
	if w != ^v {
		return 0, fmt.Errorf("torn value %x/%x", v, w)
	}
	return v, nil
}

func TestSPSCStream(t *testing.T) {
	n := uint64(2_000_000)
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	for _, wm := range waitModes {
		t.Run(wm.name, func(t *testing.T) {
			mem, h := region(t, layout.ModeSPSC, wm.mode, 256, 16, 1)
			r := newRing(t, mem, h, Config{})
			s, err := r.NewSender(1, Identity{PID: 1})
			if err != nil {
				t.Fatal(err)
			}
			c, err := r.NewReceiver(Identity{PID: 2})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				for i := uint64(0); i < n; i++ {
					if err := put(s, ctx, i); err != nil {
						errc <- err
						return
					}
				}
				errc <- s.Close()
			}()
			for i := uint64(0); i < n; i++ {
				v, err := get(c, ctx)
				if err != nil {
					t.Fatalf("value %d: %v", i, err)
				}
				if v != i {
					t.Fatalf("got %d, want %d", v, i)
				}
			}
			if _, err := get(c, ctx); !errors.Is(err, ErrClosed) {
				t.Fatalf("after drain: %v, want ErrClosed", err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			st := r.Stats()
			if st.Sent != n || st.Received != n || !st.Closed {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestLostWakeup makes both sides sleep as often as possible (no spinning,
// a tiny ring, bursts with pauses) so that a wake-up protocol that can lose
// a wake deadlocks here; the context turns a deadlock into a failure.
func TestLostWakeup(t *testing.T) {
	rounds := 20000
	if testing.Short() || raceEnabled {
		rounds = 3000
	}
	for _, wm := range waitModes[:2] {
		t.Run(wm.name, func(t *testing.T) {
			r, s, c := spsc(t, wm.mode, 2, Config{Spin: -1})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() {
				v := uint64(0)
				for i := 0; i < rounds; i++ {
					for j := 0; j < i%5+1; j++ {
						if put(s, ctx, v) != nil {
							return
						}
						v++
					}
					if i%7 == 0 {
						time.Sleep(time.Microsecond)
					}
				}
				s.Close()
			}()
			want := uint64(0)
			for {
				v, err := get(c, ctx)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil {
					t.Fatalf("after %d values: %v (stats %+v)", want, err, r.Stats())
				}
				if v != want {
					t.Fatalf("got %d want %d", v, want)
				}
				want++
				if want%3 == 0 {
					time.Sleep(time.Microsecond)
				}
			}
			st := r.Stats()
			t.Logf("%d values, receiver slept %d times, senders %d; wakes %d/%d", want, st.RecvSleeps, st.SendSleeps, st.SenderWakes, st.ReceiverWakes)
			if st.RecvSleeps == 0 || st.SendSleeps == 0 {
				t.Errorf("the test did not make both sides sleep: %+v", st)
			}
		})
	}
}

func TestFullEmptyClosed(t *testing.T) {
	r, s, c := spsc(t, layout.WaitFutex, 4, Config{})
	if _, err := c.TryPeek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
	for i := 0; i < 4; i++ {
		b, err := s.TryReserve()
		if err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
		b[0] = byte(i)
		s.Commit(1)
	}
	if r.Len() != 4 || r.Cap() != 4 {
		t.Fatalf("len %d cap %d", r.Len(), r.Cap())
	}
	if _, err := s.TryReserve(); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
	s.Close()
	if _, err := s.TryReserve(); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	for i := 0; i < 4; i++ {
		b, err := c.TryPeek()
		if err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Fatalf("value %d: %v %v", i, b, err)
		}
		c.Release()
	}
	if _, err := c.TryPeek(); !errors.Is(err, ErrClosed) {
		t.Fatalf("drained: %v", err)
	}
}

func TestBatch(t *testing.T) {
	_, s, c := spsc(t, layout.WaitFutex, 8, Config{})
	ctx := context.Background()
	next, want := uint64(0), uint64(0)
	for round := 0; round < 1000; round++ {
		k, err := s.TryReserveN(round%11 + 1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < k; i++ {
			binary.LittleEndian.PutUint64(s.Slot(i), next)
			s.SetLen(i, 8)
			next++
		}
		s.CommitN(k)
		n, err := c.PeekN(ctx, round%5+1)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			b, err := c.Item(i)
			if err != nil || binary.LittleEndian.Uint64(b) != want {
				t.Fatalf("item %d: %x %v want %d", i, b, err, want)
			}
			want++
		}
		c.ReleaseN(n)
	}
	for want < next {
		n, err := c.TryPeekN(100)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			b, _ := c.Item(i)
			if binary.LittleEndian.Uint64(b) != want {
				t.Fatalf("tail item %d", want)
			}
			want++
		}
		c.ReleaseN(n)
	}
}

func TestCancelWakesSleeper(t *testing.T) {
	for _, wm := range waitModes {
		t.Run(wm.name, func(t *testing.T) {
			_, s, c := spsc(t, wm.mode, 1, Config{})
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { _, err := c.Peek(ctx); errc <- err }()
			time.Sleep(20 * time.Millisecond)
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Peek: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("cancel did not wake the receiver")
			}
			// A full ring: a sleeping sender.
			if _, err := s.TryReserve(); err != nil {
				t.Fatal(err)
			}
			s.Commit(0)
			ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			if _, err := s.Reserve(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Reserve: %v", err)
			}
		})
	}
}

// TestHostileIndices writes impossible indices and lengths, as a buggy or
// hostile peer could, and expects ErrCorrupt, not a panic or a hang.
func TestHostileIndices(t *testing.T) {
	set := func(mem []byte, off int, v uint64) { binary.LittleEndian.PutUint64(mem[off:], v) }
	t.Run("tail beyond capacity", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 4, 16, 1)
		r := newRing(t, mem, h, Config{})
		c, _ := r.NewReceiver(Identity{})
		set(mem, layout.OffTail, 5)
		if _, err := c.TryPeek(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("tail going back", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 4, 16, 1)
		r := newRing(t, mem, h, Config{})
		s, _ := r.NewSender(1, Identity{})
		c, _ := r.NewReceiver(Identity{})
		for i := 0; i < 3; i++ {
			s.TryReserve()
			s.Commit(1)
		}
		c.TryPeek()
		c.Release()
		set(mem, layout.OffTail, 0)
		c.TryPeek()
		c.Release()
		c.TryPeek()
		c.Release()
		if _, err := c.TryPeek(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("length", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 4, 16, 1)
		r := newRing(t, mem, h, Config{})
		s, _ := r.NewSender(1, Identity{})
		c, _ := r.NewReceiver(Identity{})
		s.TryReserve()
		s.Commit(1)
		binary.LittleEndian.PutUint32(mem[h.DataOffset+layout.SlotLen:], 17)
		if _, err := c.TryPeek(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("head beyond tail", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 4, 16, 1)
		r := newRing(t, mem, h, Config{})
		s, _ := r.NewSender(1, Identity{})
		for i := 0; i < 4; i++ {
			s.TryReserve()
			s.Commit(1)
		}
		set(mem, layout.OffHead, 9)
		if _, err := s.TryReserve(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("at takeover", func(t *testing.T) {
		mem, h := region(t, layout.ModeSPSC, layout.WaitFutex, 4, 16, 1)
		r := newRing(t, mem, h, Config{})
		set(mem, layout.OffTail, 100)
		if _, err := r.NewSender(1, Identity{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("sender: %v", err)
		}
		if _, err := r.NewReceiver(Identity{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("receiver: %v", err)
		}
	})
	t.Run("mpsc tail", func(t *testing.T) {
		mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 4, 16, 2)
		r := newRing(t, mem, h, Config{})
		s, _ := r.NewSender(1, Identity{})
		set(mem, layout.OffTail, 1000)
		if _, err := s.TryReserve(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v", err)
		}
	})
}

func TestMPSC(t *testing.T) {
	const producers = 4
	per := uint64(200_000)
	if testing.Short() || raceEnabled {
		per = 20_000
	}
	for _, wm := range waitModes {
		t.Run(wm.name, func(t *testing.T) {
			mem, h := region(t, layout.ModeMPSC, wm.mode, 64, 16, producers)
			r := newRing(t, mem, h, Config{})
			c, _ := r.NewReceiver(Identity{})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			for p := 1; p <= producers; p++ {
				s, err := r.NewSender(p, Identity{PID: uint32(p)})
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := uint64(0); i < per; i++ {
						// value: producer in the top byte, sequence below.
						if put(s, ctx, uint64(p)<<56|i) != nil {
							return
						}
					}
				}()
			}
			go func() {
				wg.Wait()
				s, _ := r.NewSender(1, Identity{}) // any producer may close
				s.Close()
			}()
			next := make([]uint64, producers+1)
			total := uint64(0)
			for {
				v, err := get(c, ctx)
				if errors.Is(err, ErrClosed) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				p, i := v>>56, v&(1<<56-1)
				if p < 1 || p > producers || i != next[p] {
					t.Fatalf("producer %d value %d, want %d", p, i, next[p])
				}
				next[p]++
				total++
			}
			if total != producers*per {
				t.Fatalf("got %d values, want %d", total, producers*per)
			}
		})
	}
}

// TestMPSCDeadWriter claims a slot and never commits it, as a producer that
// died between claim and commit would. The receiver skips it only when
// Alive says its writer is dead, and never while the writer is alive.
func TestMPSCDeadWriter(t *testing.T) {
	mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 8, 16, 2)
	var dead atomic.Bool
	r := newRing(t, mem, h, Config{StuckCheck: time.Millisecond, Alive: func(i int) (bool, error) {
		return i != 1 || !dead.Load(), nil
	}})
	c, _ := r.NewReceiver(Identity{})
	stuck, _ := r.NewSender(1, Identity{})
	other, _ := r.NewSender(2, Identity{})
	ctx := context.Background()
	if _, err := stuck.TryReserve(); err != nil { // claimed, never committed
		t.Fatal(err)
	}
	for i := uint64(0); i < 3; i++ {
		if err := put(other, ctx, 100+i); err != nil {
			t.Fatal(err)
		}
	}
	// Alive writer: nothing is skipped however long we wait.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := c.TryPeek(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("a live writer's slot was passed: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	dead.Store(true)
	for i := uint64(0); i < 3; i++ {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := get(c, tctx)
		cancel()
		if err != nil || v != 100+i {
			t.Fatalf("value %d: %d %v", i, v, err)
		}
	}
	if a := r.Stats().Abandoned; a != 1 {
		t.Fatalf("abandoned %d, want 1", a)
	}
}

func TestMPSCSlowWriterArrives(t *testing.T) {
	mem, h := region(t, layout.ModeMPSC, layout.WaitFutex, 8, 16, 2)
	r := newRing(t, mem, h, Config{StuckCheck: time.Millisecond, Alive: func(int) (bool, error) { return true, nil }})
	c, _ := r.NewReceiver(Identity{})
	s, _ := r.NewSender(1, Identity{})
	b, _ := s.TryReserve()
	go func() {
		time.Sleep(30 * time.Millisecond)
		binary.LittleEndian.PutUint64(b, 7)
		binary.LittleEndian.PutUint64(b[8:], ^uint64(7))
		s.Commit(16)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, err := get(c, ctx); err != nil || v != 7 {
		t.Fatalf("%d %v", v, err)
	}
	if a := r.Stats().Abandoned; a != 0 {
		t.Fatalf("abandoned %d", a)
	}
}

func TestZeroAllocs(t *testing.T) {
	_, s, c := spsc(t, layout.WaitFutex, 64, Config{})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		put(s, ctx, 1)
		get(c, ctx)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per send+receive", allocs)
	}
}

func BenchmarkSPSC16(b *testing.B) {
	mem, h := region(b, layout.ModeSPSC, layout.WaitFutex, 4096, 16, 1)
	r := newRing(b, mem, h, Config{})
	s, _ := r.NewSender(1, Identity{})
	c, _ := r.NewReceiver(Identity{})
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			if _, err := get(c, ctx); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		put(s, ctx, uint64(i))
	}
	<-done
}
