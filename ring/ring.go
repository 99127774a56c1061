package ring

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/layout"
)

// DefaultSpin is how long a blocked call spins, re-checking the ring, before
// it goes to sleep. It is longer than a futex wake-up takes on the machines we
// measured (a few microseconds to tens under load): a shorter window makes
// "sleep convoys", where each side keeps finding the other asleep.
const DefaultSpin = 50 * time.Microsecond

// MaxSleep bounds one sleep of a blocked call; it then re-checks the ring
// (and goes back to sleep). An idle side so wakes a few times a second,
// which costs nothing measurable, and a wake-up that can never arrive (see
// block) costs at most this much.
const MaxSleep = 200 * time.Millisecond

// FirstSleep bounds the first sleep of a blocked call, which is taken
// without the cross-process barrier (see block).
const FirstSleep = 100 * time.Microsecond

// DefaultStuckCheck is how long an MPSC receiver waits on a claimed but
// uncommitted slot before it checks whether the slot's writer is alive.
const DefaultStuckCheck = 10 * time.Millisecond

// Doorbell is how one side sleeps, and is woken, in WaitMQ mode.
type Doorbell interface {
	// Ring makes the sleeper's current or next Wait return. It never blocks;
	// a ring that finds the bell already rung may be dropped.
	Ring()
	// Wait blocks until Ring is called (possibly before Wait began), ctx is
	// done, or timeout passes (timeout < 0: no limit). Spurious returns are
	// allowed: the caller always re-checks.
	Wait(ctx context.Context, timeout time.Duration) error
}

// Config holds what a handle adds to the region's own parameters.
type Config struct {
	// Spin: how long a blocked call spins before sleeping (futex and mq
	// modes); 0 means DefaultSpin, a negative value means do not spin.
	Spin time.Duration
	// RecvBell and SendBell are the receiver's and the senders' doorbells,
	// required in WaitMQ mode and unused otherwise.
	RecvBell, SendBell Doorbell
	// Alive reports whether the holder of role entry i (1..Producers) is
	// alive. The MPSC receiver asks it about the writer of a stuck slot. A
	// nil Alive treats every writer as alive, so no slot is ever skipped.
	Alive func(entry int) (bool, error)
	// StuckCheck: how long an MPSC receiver waits on an uncommitted slot
	// before asking Alive; 0 means DefaultStuckCheck.
	StuckCheck time.Duration
}

// side is one direction's sleeping state in the region.
type side struct {
	seq     *uint32 // futex word the sleepers wait on; any waker bumps it
	waiting *uint32 // single: 0, or 1 + the seq the sleeper sleeps on; else: number of sleepers that may be asleep
	sleeps  *uint64 // statistics: how often a sleeper went to sleep
	bell    Doorbell
	single  bool // one sleeper at most (the receiver's side)
}

// Ring is one handle's view of the ring inside a mapped region. The methods
// of Ring are safe for concurrent use; Sender and Receiver are not (a handle
// serialises its own calls).
type Ring struct {
	mem      []byte // the whole mapping
	data     []byte // mem[DataOffset:TotalSize]
	hdr      layout.Header
	mask     uint64
	capacity uint64
	stride   uint64
	maxMsg   uint64
	mpsc     bool
	wait     uint32
	spin     time.Duration
	stuck    time.Duration
	alive    func(int) (bool, error)

	tail, head                 *uint64
	senderWakes, receiverWakes *uint64
	abandoned                  *uint64
	recv, send                 side

	// life is cancelled by Shutdown: blocked calls of this handle return
	// ErrClosed at once.
	life     context.Context
	shutdown context.CancelFunc
}

// New returns a view of the ring in mem, whose header h was validated by
// layout.Validate against mem (so mem holds h.TotalSize bytes).
func New(mem []byte, h layout.Header, cfg Config) (*Ring, error) {
	if uint64(len(mem)) < h.TotalSize || h.TotalSize < uint64(h.DataOffset) {
		return nil, fmt.Errorf("%w: mapping of %d bytes, region needs %d", ErrCorrupt, len(mem), h.TotalSize)
	}
	if h.Wait == layout.WaitMQ && (cfg.RecvBell == nil || cfg.SendBell == nil) {
		return nil, fmt.Errorf("ring: WaitMQ needs two doorbells")
	}
	r := &Ring{
		mem:      mem,
		data:     mem[h.DataOffset:h.TotalSize],
		hdr:      h,
		mask:     h.Capacity - 1,
		capacity: h.Capacity,
		stride:   uint64(h.SlotSize),
		maxMsg:   uint64(h.MaxMsg),
		mpsc:     h.Mode == layout.ModeMPSC,
		wait:     h.Wait,
		spin:     cfg.Spin,
		stuck:    cfg.StuckCheck,
		alive:    cfg.Alive,

		tail:          word64(mem, layout.OffTail),
		head:          word64(mem, layout.OffHead),
		senderWakes:   word64(mem, layout.OffSenderWakes),
		receiverWakes: word64(mem, layout.OffReceiverWakes),
		abandoned:     word64(mem, layout.OffAbandoned),
		recv: side{
			seq:     word32(mem, layout.OffRecvSeq),
			waiting: word32(mem, layout.OffRecvWaiting),
			sleeps:  word64(mem, layout.OffRecvSleeps),
			bell:    cfg.RecvBell,
			single:  true,
		},
		send: side{
			seq:     word32(mem, layout.OffSendSeq),
			waiting: word32(mem, layout.OffSendWaiters),
			sleeps:  word64(mem, layout.OffSendSleeps),
			bell:    cfg.SendBell,
			single:  h.Mode == layout.ModeSPSC,
		},
	}
	r.life, r.shutdown = context.WithCancel(context.Background())
	if r.spin == 0 {
		r.spin = DefaultSpin
	}
	if r.stuck <= 0 {
		r.stuck = DefaultStuckCheck
	}
	return r, nil
}

// Shutdown makes every call of this handle blocked in the ring, now or
// later, return ErrClosed. It is how closing a handle unblocks its own
// sleepers. The wake-ups it sends reach the peer's sleepers too, which
// treat them as spurious.
func (r *Ring) Shutdown() {
	r.shutdown()
	if r.wait == layout.WaitFutex {
		r.ring(&r.recv, nil)
		r.ring(&r.send, nil)
	}
}

// Header returns the validated header the ring was built from.
func (r *Ring) Header() layout.Header { return r.hdr }

// Cap returns the number of slots.
func (r *Ring) Cap() int { return int(r.capacity) }

// Len returns the number of values claimed or committed and not yet
// consumed, clamped to [0, Cap] whatever a peer wrote.
func (r *Ring) Len() int {
	h := atomic.LoadUint64(r.head)
	t := atomic.LoadUint64(r.tail) &^ layout.ClosedBit
	if t <= h {
		return 0
	}
	return int(min(t-h, r.capacity))
}

// Closed reports whether the closed bit is set in the tail word.
func (r *Ring) Closed() bool { return atomic.LoadUint64(r.tail)&layout.ClosedBit != 0 }

// Stats are the region's counters. They are read without a lock, each word
// atomically, so they are a consistent picture only of a quiet channel.
type Stats struct {
	Sent          uint64 // values claimed (MPSC) or committed (SPSC) by senders
	Received      uint64 // values consumed (including abandoned slots)
	Abandoned     uint64 // MPSC slots skipped because their writer died
	Closed        bool
	SenderWakes   uint64 // wake-ups senders issued to a sleeping receiver
	ReceiverWakes uint64 // wake-ups the receiver issued to sleeping senders
	RecvSleeps    uint64 // times the receiver slept
	SendSleeps    uint64 // times a sender slept
	RecvWaiting   uint32 // 1 while the receiver may be asleep
	SendWaiters   uint32 // senders that may be asleep
}

// Stats returns the counters.
func (r *Ring) Stats() Stats {
	t := atomic.LoadUint64(r.tail)
	return Stats{
		Sent:          t &^ layout.ClosedBit,
		Closed:        t&layout.ClosedBit != 0,
		Received:      atomic.LoadUint64(r.head),
		Abandoned:     atomic.LoadUint64(r.abandoned),
		SenderWakes:   atomic.LoadUint64(r.senderWakes),
		ReceiverWakes: atomic.LoadUint64(r.receiverWakes),
		RecvSleeps:    atomic.LoadUint64(r.recv.sleeps),
		SendSleeps:    atomic.LoadUint64(r.send.sleeps),
		RecvWaiting:   min(atomic.LoadUint32(r.recv.waiting), 1),
		SendWaiters:   r.sendWaiters(),
	}
}

func (r *Ring) sendWaiters() uint32 {
	w := atomic.LoadUint32(r.send.waiting)
	if r.send.single {
		return min(w, 1)
	}
	return w
}

// slot returns the whole slot for position pos.
func (r *Ring) slot(pos uint64) []byte {
	off := (pos & r.mask) * r.stride
	return r.data[off : off+r.stride : off+r.stride]
}

// wakeReceiver is called by a sender after it published. The fast path is
// one plain load of a word that stays in the sender's cache while the
// receiver is awake: no system call, no write to shared memory.
//
// The receiver's waiting word holds 1 + the futex value it sleeps on, and
// only the waker whose CAS moves seq off that value makes the system call:
// while a woken receiver is on its way back, later sends see seq already
// moved and skip the wake, instead of each paying a FUTEX_WAKE. No wake is
// lost by skipping: the sleeper's FUTEX_WAIT compares against the old value,
// which is gone, and a receiver that sleeps again stores a new value first
// (see block).
func (r *Ring) wakeReceiver() {
	if w := atomic.LoadUint32(r.recv.waiting); w != 0 {
		if atomic.CompareAndSwapUint32(r.recv.seq, w-1, w) {
			r.notify(&r.recv, r.senderWakes)
		}
	}
}

// wakeSenders is called by the receiver after it released slots.
func (r *Ring) wakeSenders() {
	if w := atomic.LoadUint32(r.send.waiting); w != 0 {
		if !r.send.single {
			r.ring(&r.send, r.receiverWakes) // MPSC: a count of sleepers, wake them all
		} else if atomic.CompareAndSwapUint32(r.send.seq, w-1, w) {
			r.notify(&r.send, r.receiverWakes) // SPSC: once per sleep, as for the receiver
		}
	}
}

// ring wakes every sleeper of s. The futex word is bumped before the wake so
// that a sleeper that loaded the old value but has not yet entered
// FUTEX_WAIT gets EAGAIN instead of sleeping through the wake.
func (r *Ring) ring(s *side, wakes *uint64) {
	atomic.AddUint32(s.seq, 1)
	r.notify(s, wakes)
}

// notify wakes the sleepers of s, whose seq the caller has just moved.
func (r *Ring) notify(s *side, wakes *uint64) {
	if wakes != nil {
		atomic.AddUint64(wakes, 1)
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

// block waits until check reports ready or an error, or ctx is done.
// The futex contract applies throughout: any wake-up may be spurious, so the
// condition is re-checked after every one.
//
// Proof sketch of "no lost wake-up" (futex mode): the sleeper loads seq,
// then increments waiting, then (after a full barrier, see store_*.go)
// re-checks the ring, then FUTEX_WAITs on seq. A waker publishes, then loads
// waiting. Either the waker sees waiting != 0, bumps seq and wakes: the
// sleeper either is in FUTEX_WAIT (woken) or has not reached it yet (the
// kernel sees seq changed and returns at once); or the waker saw 0, which by
// the barrier means its publish precedes the sleeper's re-check, which then
// sees it. Nobody but the sleeper decrements waiting, so no waker can
// suppress a later wake.
//
// mark, if not nil, is the caller's role-entry flag word: RoleSleeping is set
// in it exactly while the caller is counted in s.waiting (set after the
// increment, cleared before the decrement), so whoever takes over the entry
// of a holder that died asleep knows to take it out of the count.
func (r *Ring) block(ctx context.Context, s *side, mark *uint32, check func() (readiness, error)) error {
	done, dead := ctx.Done(), r.life.Done()
	spinUntil := time.Now().Add(r.spin)
	for i := 1; ; i++ {
		st, err := check()
		if err != nil || st == ready {
			return err
		}
		if i&63 == 0 {
			select {
			case <-done:
				return ctx.Err()
			case <-dead:
				return ErrClosed
			default:
			}
			if r.wait != layout.WaitSpin && (r.spin < 0 || time.Now().After(spinUntil)) {
				break
			}
			if i&1023 == 0 {
				runtime.Gosched()
			}
		}
	}

	switch r.wait {
	case layout.WaitFutex:
		// Context cancellation wakes a sleeper at once: the callback bumps
		// the futex word and wakes every sleeper on it; each re-checks its
		// own context. Shutdown does the same for this handle's sleepers.
		if done != nil {
			stop := context.AfterFunc(ctx, func() { protected(func() { r.ring(s, nil) }) })
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
		seq := atomic.LoadUint32(s.seq)
		if s.single {
			if seq == math.MaxUint32 { // 1+seq must not be 0, "nobody waits"
				atomic.CompareAndSwapUint32(s.seq, seq, 0)
				continue
			}
			atomic.StoreUint32(s.waiting, seq+1)
		} else {
			atomic.AddUint32(s.waiting, 1)
		}
		if mark != nil {
			atomic.StoreUint32(mark, layout.RoleSleeping)
		}
		// The first sleep of a call goes without the barrier: a waker's
		// plain store can then, rarely, still sit in its store buffer when
		// we re-check, and the wake-up be lost; so that sleep is bounded by
		// FirstSleep, after which every sleep pays the barrier and cannot
		// miss one. A membarrier interrupts every CPU running a registered
		// process and waits for each (a descheduled virtual CPU makes that
		// tens of microseconds), which a ping-pong would otherwise pay per
		// message.
		if barrier && !first {
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
		if barrier && first {
			timeout = min(timeout, FirstSleep)
		}
		if d, ok := ctx.Deadline(); ok {
			timeout = max(min(timeout, time.Until(d)), 0)
		}
		atomic.AddUint64(s.sleeps, 1)
		if r.wait == layout.WaitMQ {
			s.bell.Wait(ctx, timeout) //nolint:errcheck // re-checked below
		} else {
			futex.Wait(s.seq, seq, timeout) //nolint:errcheck // spurious wake-ups and timeouts are re-checked
		}
		leave(s, mark)
		// Look before announcing again: after a real wake-up the ring is
		// ready, and going round the loop first would pay a barrier (an
		// interrupt to every CPU) for nothing.
		if st, err := check(); err != nil || st == ready {
			return err
		}
	}
}

func leave(s *side, mark *uint32) {
	if mark != nil {
		atomic.StoreUint32(mark, 0)
	}
	if s.single {
		atomic.StoreUint32(s.waiting, 0)
		return
	}
	atomic.AddUint32(s.waiting, ^uint32(0))
}
