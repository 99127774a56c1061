package ring

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// fakeExits stands in for shm.WatchExit: it records the watches the ring
// asks for, lets the test fire their onExit, and refuses pid 4242.
type fakeExits struct {
	mu      sync.Mutex
	watches []*fakeWatch
	asked   int
}

type fakeWatch struct {
	pid     int
	start   uint64
	onExit  func()
	stopped bool
}

func (f *fakeExits) watch(pid int, start uint64, onExit func()) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if pid == 4242 {
		return nil, errors.New("refused")
	}
	w := &fakeWatch{pid: pid, start: start, onExit: onExit}
	f.watches = append(f.watches, w)
	return func() { f.mu.Lock(); w.stopped = true; f.mu.Unlock() }, nil
}

// live returns the pids watched and not stopped, and how many watches were
// asked for in all.
func (f *fakeExits) live() (pids []int, asked int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watches {
		if !w.stopped {
			pids = append(pids, w.pid)
		}
	}
	return pids, f.asked
}

// TestExitWatches: a receiver about to sleep watches the holders of the
// other role entries, once per holder (not itself, not an empty entry, not
// again after a refusal); a changed entry replaces its watch; an exit wakes
// a receiver asleep on a value published without a wake-up, far below
// MaxSleep; Shutdown stops every watch and no new one is made after it.
func TestExitWatches(t *testing.T) {
	for _, w := range []layout.Wait{layout.WaitFutex, layout.WaitMQ} {
		f := &fakeExits{}
		mem, h := region(t, layout.ModeSPSC, w, 8, 16, 1)
		r := newRing(t, mem, h, Config{WatchExit: f.watch})
		s, err := r.NewSender(1, Identity{PID: 777, Start: 5})
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.NewReceiver(Identity{PID: uint32(os.Getpid()), Start: 1})
		if err != nil {
			t.Fatal(err)
		}
		sleepOnce := func() {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			if _, err := c.Peek(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Peek on an empty ring: %v", err)
			}
		}
		sleepOnce()
		sleepOnce()
		if pids, asked := f.live(); len(pids) != 1 || pids[0] != 777 || asked != 1 {
			t.Fatalf("%v: watching %v after %d asks; want [777] after 1 (the sender, once; not this process)", w, pids, asked)
		}
		pidWord := word32(mem, layout.RoleOffset(1)+layout.RolePID)
		atomic.StoreUint32(pidWord, 4242) // another holder, whose watch is refused
		sleepOnce()
		sleepOnce()
		if pids, asked := f.live(); len(pids) != 0 || asked != 2 {
			t.Fatalf("%v: watching %v after %d asks; want none after 2 (777 stopped, 4242 refused once)", w, pids, asked)
		}
		atomic.StoreUint32(pidWord, 778)
		sleepOnce()
		pids, _ := f.live()
		if len(pids) != 1 || pids[0] != 778 {
			t.Fatalf("%v: watching %v, want [778]", w, pids)
		}
		// The sender publishes and "dies" before waking: only the exit
		// wakes the receiver.
		got := make(chan time.Duration, 1)
		go func() {
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.Peek(ctx); err != nil {
				t.Error(err)
			}
			c.Release()
			got <- time.Since(t0)
		}()
		for deadline := time.Now().Add(5 * time.Second); r.Stats().RecvWaiting == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the receiver did not sleep")
			}
		}
		time.Sleep(20 * time.Millisecond) // well into its sleep
		b, ok := s.Fast(16)
		if !ok {
			t.Fatal("no room")
		}
		copy(b, "sixteen bytes!!!")
		s.tail++
		publish64(r.tail, s.tail) // no wake-up
		f.mu.Lock()
		exit := f.watches[len(f.watches)-1].onExit
		f.mu.Unlock()
		t1 := time.Now()
		exit()
		select {
		case d := <-got:
			t.Logf("%v: %v after the exit, %v in all", w, time.Since(t1), d)
			if since := time.Since(t1); since > MaxSleep/2 {
				t.Errorf("%v: the receiver got the value %v after the exit (asleep %v in all)", w, since, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: the receiver never got the value", w)
		}
		r.Shutdown()
		if pids, _ := f.live(); len(pids) != 0 {
			t.Fatalf("%v: watching %v after Shutdown", w, pids)
		}
		atomic.StoreUint32(pidWord, 779)
		r.watchPeers()
		if pids, _ := f.live(); len(pids) != 0 {
			t.Fatalf("%v: a new watch (%v) after Shutdown", w, pids)
		}
	}
}
