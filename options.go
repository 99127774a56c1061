package shmchan

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/layout"
)

// WaitMode is how a blocked call sleeps and is woken.
type WaitMode int

const (
	// WaitFutex (the default) spins briefly, then sleeps on a shared futex
	// in the region. A busy channel makes no system call.
	WaitFutex WaitMode = WaitMode(layout.WaitFutex)
	// WaitMQ spins briefly, then sleeps on a POSIX message queue used as a
	// doorbell: /<name>.rx for the receiver, /<name>.tx for senders,
	// created with the region's mode and removed by Unlink. A blocked call
	// then waits in Go's network poller (a parked goroutine, not a thread
	// stuck in FUTEX_WAIT). Choose it where cross-process futexes are not
	// allowed (a seccomp profile or sandbox that forbids futex on shared
	// mappings), or where you want the wake-ups visible as ordinary kernel
	// objects (mq_getattr shows pending rings). It costs a system call per
	// sleep and per wake, like futex; a busy channel makes none either way.
	WaitMQ WaitMode = WaitMode(layout.WaitMQ)
	// WaitSpin never sleeps: a blocked call spins (yielding the processor
	// now and then) until it can go on. Lowest latency, one busy core per
	// blocked side.
	WaitSpin WaitMode = WaitMode(layout.WaitSpin)
)

func (w WaitMode) String() string {
	switch w {
	case WaitFutex:
		return "futex"
	case WaitMQ:
		return "mq"
	case WaitSpin:
		return "spin"
	}
	return fmt.Sprintf("WaitMode(%d)", int(w))
}

// Defaults.
const (
	DefaultCapacity  = 1024 // slots
	DefaultMaxMsg    = 4096 // bytes, for types that are not raw
	DefaultProducers = 64   // MPSC sender entries
	DefaultConsumers = 64   // work-queue and broadcast receiver entries
)

// Overflow is what a broadcast sender does when the slowest receiver is a
// whole ring behind.
type Overflow int

const (
	// WaitForSlowest: a sender waits while the slowest live receiver is
	// Cap() behind. A receiver that dies stops gating (within the stuck
	// check); a stopped or slow one gates, as in MPSC.
	WaitForSlowest Overflow = Overflow(layout.OverflowWait)
	// DropOldest: a sender never waits for receivers; a receiver that fell
	// more than Cap() behind gets a *LagError with the count it missed,
	// once, and goes on with the oldest value still intact. (With many
	// senders, a sender does wait for another sender that is still writing
	// the very slot it would overwrite a lap later: two writers never share
	// a slot. Such a writer that died stops gating within the stuck check.)
	DropOldest Overflow = Overflow(layout.OverflowDrop)
)

func (o Overflow) String() string { return layout.Overflow(o).String() }

// An Option configures Create, Open and OpenOrCreate. Layout options
// (capacity, message size, multi-producer, wait mode, producers) given to
// Open must agree with the region, else ErrIncompatible; the region's own
// values are used when they are not given.
type Option func(*options)

type options struct {
	capacity, maxMsg, producers int
	multi, multiSet             bool
	wait                        WaitMode
	waitSet                     bool
	codec                       any
	perm                        fs.FileMode
	spin                        time.Duration
	stuck                       time.Duration
	foreign                     bool
	adopt                       bool // OpenRaw: take the region's type, whatever it is

	multiConsumer, multiConsumerSet bool
	consumers                       int
	broadcastSet                    bool
	overflow                        Overflow
}

// WithCapacity sets the number of slots, rounded up to a power of two.
func WithCapacity(n int) Option { return func(o *options) { o.capacity = n } }

// WithMaxMessageSize sets the largest encoded value in bytes (framing not
// counted: a []byte or string of length n fits). Raw types always use
// their size.
func WithMaxMessageSize(n int) Option { return func(o *options) { o.maxMsg = n } }

// WithMultiProducer makes the channel MPSC: many senders (in any number of
// processes, up to WithProducers of them at once), one receiver.
func WithMultiProducer() Option { return func(o *options) { o.multi, o.multiSet = true, true } }

// WithMultiConsumer makes the channel a work queue: many receivers (in any
// number of processes, up to WithConsumers of them at once) compete for the
// values, like goroutines receiving from one chan. Each committed value is
// returned by exactly one receive; a receiver that dies holding a value it
// had not returned yet has it delivered to another. With WithMultiProducer,
// many senders too (MPMC). It is a layout option.
func WithMultiConsumer() Option {
	return func(o *options) { o.multiConsumer, o.multiConsumerSet = true, true }
}

// WithConsumers sets how many receivers may be attached at once to a work
// queue or broadcast channel (default 64; not rounded). Senders do not
// count against it. It is a layout option.
func WithConsumers(n int) Option { return func(o *options) { o.consumers = n } }

// WithBroadcast makes the channel a broadcast (pub-sub): every live
// receiver sees every value sent after it joined (its first receive call),
// in order. The overflow policy says what a sender does when the slowest
// receiver is a ring behind. With WithMultiProducer, many publishers. It is
// a layout option; WithMultiConsumer and WithBroadcast together are
// refused with ErrIncompatible.
func WithBroadcast(p Overflow) Option {
	return func(o *options) { o.broadcastSet, o.overflow = true, p }
}

// WithProducers sets how many senders may be attached at once to an MPSC
// channel (default 64).
func WithProducers(n int) Option { return func(o *options) { o.producers = n } }

// WithCodec sets how values of T are encoded. T must be the channel's type.
func WithCodec[T any](c codec.Codec[T]) Option { return func(o *options) { o.codec = c } }

// WithWait sets how blocked calls wait (WaitFutex by default).
func WithWait(w WaitMode) Option { return func(o *options) { o.wait, o.waitSet = w, true } }

// WithPerm sets the permission bits of a region this call creates (default
// 0600), applied exactly: the umask does not change them.
func WithPerm(p fs.FileMode) Option { return func(o *options) { o.perm = p } }

// WithSpin sets how long a blocked call spins before it sleeps (default 50µs;
// negative: do not spin). It is a per-handle setting, not part of the region.
func WithSpin(d time.Duration) Option { return func(o *options) { o.spin = d } }

// WithAllowForeignOwner lets Open use a region owned by another user. By
// default such a region is refused: its owner controls every byte of it.
func WithAllowForeignOwner() Option { return func(o *options) { o.foreign = true } }

// withStuckCheck sets how long an MPSC receiver waits on an uncommitted slot
// before checking its writer (tests use a short one).
func withStuckCheck(d time.Duration) Option { return func(o *options) { o.stuck = d } }
