package ring

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/layout"
)

// Waiting and waking.
//
// Each direction has a side: a futex word (seq) its sleepers wait on, a
// waiting word, and a sleep counter. The receiver's side has one sleeper at
// most, and so has the sender's side of an SPSC region ("single"); MPSC
// senders are many.
//
// A single sleeper's waiting word is 0 (nobody asleep) or 1 + the seq value
// it sleeps on. A waker that finds it non-zero moves seq from w-1 to w with
// a CAS; the one whose CAS wins makes the wake call and then marks the wake
// delivered by moving waiting from w back to 0 (a CAS, so it never clears a
// later sleep's announcement). Later wakers see 0 and make no system call.
// A waker whose CAS lost and that still finds seq == w and waiting == w knows
// a wake was claimed but not delivered: the winner may have died or been
// stopped between its CAS and its system call, so this waker makes the call
// itself. No wake-up of a live sleeper therefore depends on any other
// process staying alive.
//
// Many sleepers count themselves in waiting; a waker bumps seq and wakes
// them all.
//
// Proof of "no lost wake-up" (futex mode). The sleeper: (1) s = load(seq);
// (2) announce (store waiting = s+1, or add 1); (3) full barrier (see
// sleeperBarrier); (4) re-check the ring; (5) FUTEX_WAIT(seq, s). The waker:
// (a) publish (SYNC POINT "publish"); (b) load waiting. By the barrier, either
// (b) sees the announcement, or (a) happened before (4) and the re-check
// sees the value. In the first case the waker (or, if it died, the next
// waker; or the sleeper's own bounded sleep if no one else ever publishes)
// moves seq off s before FUTEX_WAKE: a sleeper that has not reached (5) yet
// finds seq != s and returns at once, one that has is woken. Nobody but the
// sleeper itself and the waker that delivered its wake clears its
// announcement, so no waker can suppress a later wake. Spurious wake-ups are
// allowed everywhere: every return from a sleep is followed by a re-check.

// Doorbell is how one side sleeps, and is woken, in WaitMQ mode.
type Doorbell interface {
	// Ring makes the sleeper's current or next Wait return. It never blocks;
	// a ring that finds the bell already rung may be dropped.
	Ring()
	// Wait blocks until Ring is called (possibly before Wait began), woken
	// reports true (the sleeper's futex word moved: a waker moves it before
	// it rings), ctx is done, or timeout passes (timeout < 0: no limit). One
	// Ring must end the Wait of every handle sleeping on the bell at the
	// time, in every process (the sides with many sleepers rely on it).
	// Spurious returns are allowed: the caller always re-checks.
	Wait(ctx context.Context, timeout time.Duration, woken func() bool) error
}

// side is one direction's sleeping state in the region.
type side struct {
	seq        *uint32 // futex word the sleepers wait on; any waker moves it
	waiting    *uint32 // single: 0, or 1 + the seq the sleeper sleeps on; else: number of sleepers that may be asleep
	sleeps     *uint64 // statistics: how often a sleeper went to sleep
	wakes      *uint64 // statistics: wake calls made to this side's sleepers
	bell       Doorbell
	oneSleeper bool // one sleeper at most (else waiting counts sleepers)
}

// wake is called by the other side after it published. The fast path is
// one load of a word that stays in the waker's cache while nobody sleeps:
// no system call, no write to shared memory. It inlines; the rest is out of
// line.
func (r *Ring) wake(s *side) {
	// SYNC POINT "announce" (waker half): this load is ordered after the
	// caller's publish (see sleeperBarrier).
	if w := atomic.LoadUint32(s.waiting); w != 0 {
		r.wakeSlow(s, w)
	}
}

func (r *Ring) wakeSlow(s *side, w uint32) {
	if !s.oneSleeper {
		r.wakeAll(s, true)
		return
	}
	if atomic.CompareAndSwapUint32(s.seq, w-1, w) {
		hookWakeClaimed()
		r.notify(s, true)
		atomic.CompareAndSwapUint32(s.waiting, w, 0) // delivered
		return
	}
	// seq moved already. For this very sleep (seq == w) and not delivered
	// (waiting still w): the winner of the CAS has not made its call, and
	// may never make it. Make it.
	if atomic.LoadUint32(s.seq) == w && atomic.LoadUint32(s.waiting) == w {
		r.notify(s, true)
	}
}

// wakeAll wakes every sleeper of s. The futex word is bumped before the
// wake so that a sleeper that loaded the old value but has not yet entered
// FUTEX_WAIT gets EAGAIN instead of sleeping through the wake.
func (r *Ring) wakeAll(s *side, count bool) {
	atomic.AddUint32(s.seq, 1)
	r.notify(s, count)
}

// notify wakes the sleepers of s, whose seq the caller has just moved.
func (r *Ring) notify(s *side, count bool) {
	if count {
		atomic.AddUint64(s.wakes, 1)
	}
	if r.wait == layout.WaitMQ {
		s.bell.Ring()
		return
	}
	futex.Wake(s.seq, math.MaxInt32) //nolint:errcheck // a failed wake is retried by the sleeper's own re-check
}

// readiness is what a blocked call checks.
type readiness uint8

const (
	notReady readiness = iota
	ready
	stuck   // not ready, and waiting on a peer that may have died: sleep with a timeout
	skipped // the slot at head was abandoned and head moved past it: look again at once
)

// await waits until check reports ready or an error, or ctx is done (see
// the proof at the top of this file).
//
// mark, if not nil, is the caller's role-entry flag word: RoleSleeping is set
// in it exactly while the caller is counted in s.waiting (set after the
// increment, cleared before the decrement), so whoever takes over the entry
// of a holder that died asleep knows to take it out of the count.
func (r *Ring) await(ctx context.Context, s *side, mark *uint32, check func() (readiness, error)) error {
	if err := r.spinFor(ctx, check); err != errSleep {
		return err
	}
	switch r.wait {
	case layout.WaitFutex:
		// Context cancellation wakes a sleeper at once: the callback bumps
		// the futex word and wakes every sleeper on it; each re-checks its
		// own context. Shutdown does the same for this handle's sleepers.
		if ctx.Done() != nil {
			stop := context.AfterFunc(ctx, func() { protected(func() { r.wakeAll(s, false) }) })
			defer stop()
		}
	case layout.WaitMQ:
		// The doorbell's Wait watches one context: merge ours in.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(r.life, cancel)
		defer stop()
	}
	barrier, mustPoll := sleeperBarrier()
	for first := true; ; first = false {
		// Watch the other role holders before announcing (exits.go): a
		// peer that dies after this is seen by the watch; one that died
		// before it had published whatever it published before the
		// re-check below.
		r.watchPeers()
		if r.trapped() {
			return ErrTrapped
		}
		seq := atomic.LoadUint32(s.seq)
		if s.oneSleeper {
			if seq == math.MaxUint32 { // 1+seq must not be 0, "nobody waits"
				atomic.CompareAndSwapUint32(s.seq, seq, 0)
				continue
			}
			// SYNC POINT "announce" (sleeper half).
			atomic.StoreUint32(s.waiting, seq+1)
		} else {
			atomic.AddUint32(s.waiting, 1)
		}
		if mark != nil {
			atomic.OrUint32(mark, layout.RoleSleeping)
		}
		// In futex mode the first sleep of a call goes without the barrier:
		// a waker's plain store can then, rarely, still sit in its store
		// buffer when we re-check, and the wake-up be lost; so that sleep is
		// bounded by FirstSleep, after which every sleep pays the barrier and
		// cannot miss one. A membarrier interrupts every CPU running a
		// registered process and waits for each (a descheduled virtual CPU
		// makes that tens of microseconds), which a ping-pong would otherwise
		// pay per message. In WaitMQ mode a sleep cannot be bounded that
		// finely (the poller rounds timeouts up to a millisecond), so every
		// sleep pays the barrier.
		unbarriered := barrier && first && r.wait == layout.WaitFutex
		if barrier && !unbarriered {
			if err := futex.Barrier(); err != nil {
				mustPoll = true
			}
		}
		st, err := check()
		if err == nil && st != ready {
			if r.life.Err() != nil {
				err = ErrClosed
			} else {
				err = ctx.Err()
			}
		}
		if err != nil || st == ready {
			leave(s, mark)
			return err
		}
		// Sleeps are bounded. A wake-up may never come: a peer that
		// truncated the region makes the futex word unreachable for every
		// waker (FUTEX_WAKE faults), including our own context callback;
		// the next re-check then faults here and the call reports
		// ErrCorrupt instead of sleeping forever.
		timeout := MaxSleep
		if st == stuck {
			timeout = min(timeout, r.stuck)
		}
		if mustPoll {
			timeout = min(timeout, time.Millisecond)
		}
		if unbarriered {
			timeout = min(timeout, FirstSleep)
		}
		if d, ok := ctx.Deadline(); ok {
			timeout = max(min(timeout, time.Until(d)), 0)
		}
		atomic.AddUint64(s.sleeps, 1)
		if r.wait == layout.WaitMQ {
			// One token wakes every sleeper of the side: each has its own
			// descriptor of the doorbell and waits for an arrival, not for
			// the token (see Doorbell).
			s.bell.Wait(ctx, timeout, func() bool { return atomic.LoadUint32(s.seq) != seq }) //nolint:errcheck // re-checked below
			leave(s, mark)
		} else {
			futex.Wait(s.seq, seq, timeout) //nolint:errcheck // spurious wake-ups and timeouts are re-checked
			leave(s, mark)
		}
		// Look before announcing again: after a real wake-up the ring is
		// ready, and going round the loop first would pay a barrier (an
		// interrupt to every CPU) for nothing.
		if st, err := check(); err != nil || st == ready {
			return err
		}
	}
}

// trapped reports whether the mapping's trap word is set (Config.Hit).
func (r *Ring) trapped() bool { return r.hit != nil && atomic.LoadUint32(r.hit) != 0 }

// errSleep is spinFor's "go to sleep now".
var errSleep = &sleepSignal{}

type sleepSignal struct{}

func (*sleepSignal) Error() string { return "ring: sleep" }

// YieldAfter is how long a blocked call spins back to back before it starts
// yielding the processor between checks. A peer running on another core
// answers far sooner (a cross-core round trip is a fraction of a
// microsecond), so a spin that lasts longer suggests the peer is waiting
// for a core, maybe this one.
const YieldAfter = 20 * time.Microsecond

// SpinYieldAfter is YieldAfter in WaitSpin mode, whose users asked for the
// lowest latency at the cost of a busy core: it yields only once a spin
// has lasted this long (a peer that long silent is not about to answer).
const SpinYieldAfter = 100 * time.Microsecond

// spinFor re-checks the ring for the spin window and returns errSleep when
// the caller should sleep (WaitSpin never does). Every 64 checks it looks
// at the contexts and the clock, and once it has spun for YieldAfter it also
// yields the processor to the operating system there (futex.Yield,
// sched_yield), so that a spinning side never keeps the side it waits for
// off a CPU: on a machine with more busy processes than cores (four
// producers and a receiver on two), the peer that must move first runs
// instead of waiting for the spinner's time slice to end. A yield with
// nothing else runnable returns at once, so on an idle core this is still a
// spin; on a loaded one a yield can last a time slice, and the clock and
// the contexts are looked at right after each.
func (r *Ring) spinFor(ctx context.Context, check func() (readiness, error)) error {
	done, dead := ctx.Done(), r.life.Done()
	start := time.Now()
	spinUntil, yieldFrom := start.Add(r.spin), start.Add(YieldAfter)
	if r.wait == layout.WaitSpin {
		yieldFrom = start.Add(SpinYieldAfter)
	}
	yielding := false
	for i := 1; ; i++ {
		st, err := check()
		if err != nil || st == ready {
			return err
		}
		if i&63 != 0 {
			continue
		}
		if yielding {
			futex.Yield()
		}
		if i&1023 == 0 {
			runtime.Gosched() // other goroutines of this process, too
		}
		select {
		case <-done:
			return ctx.Err()
		case <-dead:
			return ErrClosed
		default:
		}
		now := time.Now()
		if r.wait != layout.WaitSpin && (r.spin < 0 || now.After(spinUntil)) {
			return errSleep
		}
		yielding = yielding || now.After(yieldFrom)
	}
}

func leave(s *side, mark *uint32) {
	if mark != nil {
		atomic.AndUint32(mark, ^uint32(layout.RoleSleeping))
	}
	if s.oneSleeper {
		atomic.StoreUint32(s.waiting, 0)
		return
	}
	atomic.AddUint32(s.waiting, ^uint32(0))
}

// protected runs f with memory faults turned into a dropped error: for
// callbacks on other goroutines (context wake-ups), where there is no caller
// to report to. The caller's own next access reports the fault. (The fault
// guard for calls, with an error to report, is internal/region's.)
func protected(f func()) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if p := recover(); p != nil {
			if _, ok := p.(interface{ Addr() uintptr }); !ok {
				panic(p)
			}
		}
	}()
	f()
}
