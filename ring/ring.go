package ring

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// DefaultSpin is how long a blocked call spins, re-checking the ring, before
// it goes to sleep. It is longer than a futex wake-up takes on the machines we
// measured (a few microseconds to tens under load): a shorter window makes
// "sleep convoys", where each side keeps finding the other asleep.
const DefaultSpin = 50 * time.Microsecond

// MaxSleep bounds one sleep of a blocked call; it then re-checks the ring
// (and goes back to sleep). An idle side so wakes a few times a second,
// which costs nothing measurable, and a wake-up that can never arrive (a
// peer truncated the region, see await) costs at most this much. No
// wake-up of a live peer's value relies on it.
const MaxSleep = 200 * time.Millisecond

// FirstSleep bounds the first sleep of a blocked call in futex mode, which
// is taken without the cross-process barrier (see await).
const FirstSleep = 100 * time.Microsecond

// DefaultStuckCheck is how long an MPSC receiver waits on a claimed but
// uncommitted slot before it checks whether the slot's writer is alive.
const DefaultStuckCheck = 10 * time.Millisecond

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
	// before asking Alive; 0 means DefaultStuckCheck. Broadcast senders and
	// work-queue receivers wait as long on a peer that may be dead.
	StuckCheck time.Duration
	// Rescue takes the work queue's rescue lock without waiting (ok false:
	// another process holds it) and returns its unlock. Nil: no rescues.
	Rescue func() (unlock func(), ok bool, err error)
	// WatchExit calls onExit once the process pid, started at start (a
	// role entry's RolePID and RoleStart), exits, until stop; an error
	// means no watch. A side about to sleep watches the other role
	// holders with it, so that one that dies between publishing and
	// waking (or mid-hand-over) wakes the sleepers at once instead of at
	// the end of their bounded sleep. Nil: no watches (sleeps stay
	// bounded by MaxSleep).
	WatchExit func(pid int, start uint64, onExit func()) (stop func(), err error)
	// Hit is the mapping's bus-error trap word (shm.Object.Hit): non-zero
	// once a peer's truncation was answered with zero pages. A blocked
	// call checks it each time round its wait loop and returns ErrCorrupt,
	// instead of waiting on zero pages nobody else sees. Nil: not trapped
	// (the caller's fault guard turns the fault into ErrCorrupt).
	Hit *uint32
}

// Ring is one handle's view of the ring inside a mapped region: the shared
// words, the validated geometry (a private copy: nothing here is re-read
// from the header), and the two wait sides. The methods of Ring are safe for
// concurrent use; a Sender or Receiver is used by one goroutine at a time.
//
// The topology (layout.Mode) is decided once, here: NewSender and
// NewReceiver pick its producer and consumer halves (spsc.go, mpsc.go), and
// no later call asks which topology it is in.
type Ring struct {
	mem      []byte // the whole mapping
	data     []byte // mem[DataOffset:TotalSize]
	hdr      layout.Header
	mask     uint64
	capacity uint64
	stride   uint64
	maxMsg   uint64
	wait     layout.Wait
	spin     time.Duration
	stuck    time.Duration
	alive    func(int) (bool, error)
	rescue   func() (func(), bool, error)
	exits    exitWatches
	hit      *uint32 // Config.Hit

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
	if h.Capacity == 0 || h.Capacity&(h.Capacity-1) != 0 || h.SlotSize < layout.SlotHeaderSize ||
		uint64(h.MaxMsg) > uint64(h.SlotSize)-layout.SlotHeaderSize ||
		h.Capacity > (h.TotalSize-uint64(h.DataOffset))/uint64(h.SlotSize) {
		// Every slot offset the fast paths compute, (pos&mask)*stride plus
		// at most stride, stays inside data: they rely on it.
		return nil, fmt.Errorf("%w: ring: %d slots of %d bytes (payload %d) do not fit %d bytes", ErrCorrupt, h.Capacity, h.SlotSize, h.MaxMsg, h.TotalSize-uint64(h.DataOffset))
	}
	if h.Mode > layout.ModeBroadcast {
		return nil, fmt.Errorf("%w: ring: no protocol for topology %v", ErrCorrupt, h.Mode)
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
		wait:     h.Wait,
		spin:     cfg.Spin,
		stuck:    cfg.StuckCheck,
		alive:    cfg.Alive,
		rescue:   cfg.Rescue,
		exits:    exitWatches{watch: cfg.WatchExit},
		hit:      cfg.Hit,

		tail:          word64(mem, layout.OffTail),
		head:          word64(mem, layout.OffHead),
		senderWakes:   word64(mem, layout.OffSenderWakes),
		receiverWakes: word64(mem, layout.OffReceiverWakes),
		abandoned:     word64(mem, layout.OffAbandoned),
		recv: side{
			seq:        word32(mem, layout.OffRecvSeq),
			waiting:    word32(mem, layout.OffRecvWaiting),
			sleeps:     word64(mem, layout.OffRecvSleeps),
			wakes:      word64(mem, layout.OffSenderWakes),
			bell:       cfg.RecvBell,
			oneSleeper: !h.Mode.FanOut(),
		},
		send: side{
			seq:        word32(mem, layout.OffSendSeq),
			waiting:    word32(mem, layout.OffSendWaiters),
			sleeps:     word64(mem, layout.OffSendSleeps),
			wakes:      word64(mem, layout.OffReceiverWakes),
			bell:       cfg.SendBell,
			oneSleeper: h.Mode == layout.ModeSPSC,
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
	r.exits.close()
	if r.wait == layout.WaitFutex {
		r.wakeAll(&r.recv, false)
		r.wakeAll(&r.send, false)
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

// Backlog returns how many values broadcast receiver entry i has still to
// read: the tail count less its cursor, clamped to [0, Cap].
func (r *Ring) Backlog(i int) int {
	t := atomic.LoadUint64(r.tail) &^ layout.ClosedBit
	c := atomic.LoadUint64(word64(r.mem, layout.RoleOffset(i)+layout.RoleCursor))
	if t <= c {
		return 0
	}
	return int(min(t-c, r.capacity))
}

// Closed reports whether the closed bit is set in the tail word.
func (r *Ring) Closed() bool { return atomic.LoadUint64(r.tail)&layout.ClosedBit != 0 }

// slot returns the whole slot for position pos.
func (r *Ring) slot(pos uint64) []byte {
	off := (pos & r.mask) * r.stride
	return r.data[off : off+r.stride : off+r.stride]
}

// indices reads head and tail for a side that joins the ring, in an order
// that a legitimate race cannot make look corrupt: head (h0), then tail,
// then head again (h1). head <= count(tail) holds at every instant and tail
// only grows, so h0 <= count(tail) whatever other processes do between the
// loads; count(tail) <= head + capacity holds at the instant of the tail
// load and head only grows, so count(tail) <= h1 + capacity. A violation of
// either, or a head that went back, is a peer's doing: ErrCorrupt. (Reading
// tail first and then head, as version 1 of FORMAT.md said, lets a busy
// ring move head past the stale tail: a healthy channel looked corrupt.)
//
// h0 is a safe head for a sender (head only grows, so an old value is
// conservative); a receiver, the only writer of head, sees h0 == h1.
func (r *Ring) indices() (h0, h1, count uint64, closed bool, err error) {
	h0 = atomic.LoadUint64(r.head)
	if joinHook != nil {
		joinHook()
	}
	t := atomic.LoadUint64(r.tail)
	if joinHook != nil {
		joinHook()
	}
	h1 = atomic.LoadUint64(r.head)
	count = t &^ layout.ClosedBit
	if h0 > count || h1 < h0 || count > h1+r.capacity {
		return 0, 0, 0, false, fmt.Errorf("%w: head %d then %d, tail %d, capacity %d", ErrCorrupt, h0, h1, count, r.capacity)
	}
	return h0, h1, count, t&layout.ClosedBit != 0, nil
}

// joinHook, when set by a test, runs between the index loads of indices.
var joinHook func()
