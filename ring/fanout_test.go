package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// fanRegion builds a work-queue or broadcast region image on Go memory.
func fanRegion(t testing.TB, mode layout.Mode, overflow layout.Overflow, capacity uint64, producers, consumers uint32) ([]byte, layout.Header) {
	t.Helper()
	return regionOf(t, layout.Header{Mode: mode, Wait: layout.WaitFutex, Capacity: capacity, MaxMsg: 16, Producers: producers,
		Consumers: consumers, Overflow: overflow, Flags: layout.FlagRaw})
}

// fanRing builds a fan-out ring on fanRegion whose liveness (Alive and
// Rescue) the test sets.
func fanRing(t testing.TB, mode layout.Mode, overflow layout.Overflow, capacity uint64, producers, consumers uint32) ([]byte, layout.Header, *Ring, *liveness) {
	t.Helper()
	mem, h := fanRegion(t, mode, overflow, capacity, producers, consumers)
	l := new(liveness)
	return mem, h, newRing(t, mem, h, l.config()), l
}

// liveness is a test's Alive and Rescue: entries marked dead are dead.
type liveness struct {
	dead sync.Map // entry -> true
	mu   sync.Mutex
}

func (l *liveness) alive(i int) (bool, error) { _, d := l.dead.Load(i); return !d, nil }
func (l *liveness) rescue() (func(), bool, error) {
	if !l.mu.TryLock() {
		return nil, false, nil
	}
	return l.mu.Unlock, true, nil
}
func (l *liveness) config() Config {
	return Config{StuckCheck: time.Millisecond, Alive: l.alive, Rescue: l.rescue}
}

// pv packs a producer number and a sequence into a value.
func pv(p, i uint64) uint64 { return p<<40 | i }

// TestWorkQueueExactlyOnce: 3 producers, 4 consumers, every value exactly
// once, each producer's values in order within each consumer.
func TestWorkQueueExactlyOnce(t *testing.T) {
	const producers, consumers, per = 3, 4, 20000
	_, h, r, _ := fanRing(t, layout.ModeWorkQueue, 0, 64, producers, consumers)
	ctx := context.Background()
	var wg sync.WaitGroup
	for p := 1; p <= producers; p++ {
		s, err := r.NewSender(p, Identity{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(p uint64) {
			defer wg.Done()
			for i := uint64(0); i < per; i++ {
				if err := put(s, ctx, pv(p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(p))
	}
	got := make([][]uint64, consumers)
	var cwg sync.WaitGroup
	for k := 0; k < consumers; k++ {
		c, err := r.NewConsumer(h.ConsumerEntry(k), Identity{})
		if err != nil {
			t.Fatal(err)
		}
		cwg.Add(1)
		go func(k int) {
			defer cwg.Done()
			for {
				v, err := get(c, ctx)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				got[k] = append(got[k], v)
			}
		}(k)
	}
	wg.Wait()
	closer, _ := r.NewSender(1, Identity{}) // any sender may close
	closer.Close()
	cwg.Wait()
	seen := map[uint64]bool{}
	for k, vs := range got {
		last := map[uint64]int64{1: -1, 2: -1, 3: -1}
		for _, v := range vs {
			if seen[v] {
				t.Fatalf("value %#x delivered twice", v)
			}
			seen[v] = true
			p, i := v>>40, int64(v&(1<<40-1))
			if i <= last[p] {
				t.Fatalf("consumer %d got producer %d's %d after %d", k, p, i, last[p])
			}
			last[p] = i
		}
	}
	if len(seen) != producers*per {
		t.Fatalf("%d distinct values, want %d", len(seen), producers*per)
	}
}

// TestWorkQueueRescue: a consumer that dies holding a value (peeked, not
// released) has it delivered to another consumer; a producer that dies
// between claim and commit has its slot consumed as abandoned.
func TestWorkQueueRescue(t *testing.T) {
	_, h, r, l := fanRing(t, layout.ModeWorkQueue, 0, 8, 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _ := r.NewSender(1, Identity{})
	dying, _ := r.NewSender(2, Identity{})
	a, _ := r.NewConsumer(h.ConsumerEntry(0), Identity{})
	b, _ := r.NewConsumer(h.ConsumerEntry(1), Identity{})
	for i := uint64(0); i < 3; i++ {
		put(s, ctx, 10+i)
	}
	if p, err := a.TryPeek(); err != nil || binary.LittleEndian.Uint64(p) != 10 {
		t.Fatalf("a's peek: %v", err)
	}
	// b gets the next ones; the one a holds is not b's while a lives.
	for _, want := range []uint64{11, 12} {
		if v, err := get(b, ctx); err != nil || v != want {
			t.Fatalf("b got %d, %v; want %d", v, err, want)
		}
	}
	if _, err := b.TryPeek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("b took a live consumer's value: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := b.TryPeek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("b took a live consumer's value after the stuck check: %v", err)
	}
	l.dead.Store(h.ConsumerEntry(0), true) // a dies holding 10
	if v, err := get(b, ctx); err != nil || v != 10 {
		t.Fatalf("rescued %d, %v; want 10", v, err)
	}
	// A producer dies inside its claim.
	if _, err := dying.TryReserve(); err != nil {
		t.Fatal(err)
	}
	put(s, ctx, 20)
	l.dead.Store(2, true)
	if v, err := get(b, ctx); err != nil || v != 20 {
		t.Fatalf("after a dead claim got %d, %v; want 20", v, err)
	}
	if st := r.Stats(); st.Abandoned != 1 || st.Received != 5 {
		t.Fatalf("stats %+v, want 1 abandoned, 5 consumed", st)
	}
	s.Close()
	if _, err := b.TryPeek(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close and drain: %v", err)
	}
}

// TestBroadcastWaitForSlowest: every receiver gets every value in order; a
// slow one gates senders; a dead one stops gating.
func TestBroadcastWaitForSlowest(t *testing.T) {
	_, h, r, l := fanRing(t, layout.ModeBroadcast, layout.OverflowWait, 8, 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := r.NewSender(1, Identity{})
	cs := make([]*Receiver, 3)
	for k := range cs {
		cs[k], _ = r.NewConsumer(h.ConsumerEntry(k), Identity{})
	}
	for i := uint64(0); i < 8; i++ {
		if err := put(s, ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TryReserve(); !errors.Is(err, ErrFull) {
		t.Fatalf("a ring's worth ahead of every receiver: %v", err)
	}
	for _, c := range cs[:2] {
		for i := uint64(0); i < 8; i++ {
			if v, err := get(c, ctx); err != nil || v != i {
				t.Fatalf("got %d, %v; want %d", v, err, i)
			}
		}
	}
	if _, err := s.TryReserve(); !errors.Is(err, ErrFull) {
		t.Fatalf("the slowest receiver did not gate: %v", err)
	}
	l.dead.Store(h.ConsumerEntry(2), true)
	done := make(chan error, 1)
	go func() {
		for i := uint64(8); i < 100; i++ {
			if err := put(s, ctx, i); err != nil {
				done <- err
				return
			}
		}
		done <- s.Close()
	}()
	var rwg sync.WaitGroup
	for _, c := range cs[:2] {
		rwg.Add(1)
		go func(c *Receiver) {
			defer rwg.Done()
			for i := uint64(8); i < 100; i++ {
				if v, err := get(c, ctx); err != nil || v != i {
					t.Errorf("got %d, %v; want %d", v, err, i)
					return
				}
			}
			if _, err := c.Peek(ctx); !errors.Is(err, ErrClosed) {
				t.Errorf("after close: %v", err)
			}
		}(c)
	}
	rwg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A late joiner of a closed, drained channel gets ErrClosed.
	late, _ := r.NewConsumer(h.ConsumerEntry(2), Identity{})
	if _, err := late.TryPeek(); !errors.Is(err, ErrClosed) {
		t.Fatalf("late joiner: %v", err)
	}
}

// TestBroadcastDropOldest: senders never wait; a receiver that fell behind
// gets one LagError with the exact count, then intact values in order; a
// late joiner sees only what is sent after it joined.
func TestBroadcastDropOldest(t *testing.T) {
	mem, h, r, _ := fanRing(t, layout.ModeBroadcast, layout.OverflowDrop, 8, 1, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _ := r.NewSender(1, Identity{})
	c, _ := r.NewConsumer(h.ConsumerEntry(0), Identity{})
	for i := uint64(0); i < 30; i++ {
		b, err := s.TryReserve()
		if err != nil {
			t.Fatalf("DropOldest sender blocked at %d: %v", i, err)
		}
		binary.LittleEndian.PutUint64(b, i)
		binary.LittleEndian.PutUint64(b[8:], ^i)
		s.Commit(16)
	}
	late, _ := r.NewConsumer(h.ConsumerEntry(1), Identity{})
	_, err := c.TryPeek()
	var lag *LagError
	if !errors.As(err, &lag) || lag.Missed != 22 || !errors.Is(err, ErrLagged) {
		t.Fatalf("lagging receiver: %v, want a LagError of 22", err)
	}
	for i := uint64(22); i < 30; i++ {
		if v, err := get(c, ctx); err != nil || v != i {
			t.Fatalf("got %d, %v; want %d", v, err, i)
		}
	}
	if _, err := late.TryPeek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("late joiner saw old values: %v", err)
	}
	put(s, ctx, 30)
	for _, x := range []*Receiver{c, late} {
		if v, err := get(x, ctx); err != nil || v != 30 {
			t.Fatalf("got %d, %v; want 30", v, err)
		}
	}
	if got := atomic.LoadUint64(word64(mem, layout.OffLagged)); got != 22 {
		t.Fatalf("lagged counter %d, want 22", got)
	}
}

// TestBroadcastSenderJoinsBehindHead: in broadcast, head is the lowest
// bound some sender computed lately, and two senders raising it race (the
// lower may win), so it can trail the tail by more than a ring. A sender
// joining then is not looking at corruption.
func TestBroadcastSenderJoinsBehindHead(t *testing.T) {
	mem, _, r, _ := fanRing(t, layout.ModeBroadcast, layout.OverflowDrop, 8, 2, 1)
	s, _ := r.NewSender(1, Identity{})
	for i := uint64(0); i < 30; i++ {
		if _, err := s.TryReserve(); err != nil {
			t.Fatal(err)
		}
		s.Commit(16)
	}
	// Head 12 behind the tail: a sender raised it to 18 and won the race
	// against another raising it to 26, which then claimed up to 26 + 8.
	atomic.StoreUint64(word64(mem, layout.OffHead), 18)
	s2, err := r.NewSender(2, Identity{})
	if err != nil {
		t.Fatalf("joining with head a ring behind: %v", err)
	}
	for i := 0; i < 20; i++ {
		if _, err := s2.TryReserve(); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		s2.Commit(16)
	}
}

// TestBroadcastDropOldestRace: a reader racing a writer that laps it never
// returns a torn value, and its lag counts add up to what it missed.
func TestBroadcastDropOldestRace(t *testing.T) {
	if raceEnabled {
		t.Skip("the torn-read check races by design with the writer's plain stores; cross-process tests cover it")
	}
	_, h, r, _ := fanRing(t, layout.ModeBroadcast, layout.OverflowDrop, 4, 1, 1)
	ctx := context.Background()
	s, _ := r.NewSender(1, Identity{})
	c, _ := r.NewConsumer(h.ConsumerEntry(0), Identity{})
	const n = 200000
	go func() {
		for i := uint64(0); i < n; i++ {
			put(s, ctx, i)
		}
		s.Close()
	}()
	var got, missed, next uint64
	for {
		b, err := c.Peek(ctx)
		var lag *LagError
		if errors.As(err, &lag) {
			missed += lag.Missed
			next += lag.Missed
			continue
		}
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		v, w := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		c.Release()
		if w != ^v || v != next {
			t.Fatalf("value %d/%x at %d: torn or out of order", v, w, next)
		}
		next++
		got++
	}
	if got+missed != n {
		t.Fatalf("got %d + missed %d != %d", got, missed, n)
	}
}
