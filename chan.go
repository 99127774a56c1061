package shmchan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmchan/shmchan/codec"
	"github.com/shmchan/shmchan/internal/region"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/ring"
)

// fastRawMax bounds the values moved by the inlined typed copy; larger
// ones go through the codec, which copies them in cache-friendly pieces.
const fastRawMax = 64 << 10

// Chan is one process's handle on a channel in shared memory: a typed
// channel between processes. A handle becomes the sender on its first send
// and the receiver on its first receive. Its methods are safe for
// concurrent use by goroutines; sends are serialised with sends, receives
// with receives.
type Chan[T any] struct {
	name  string
	reg   *region.Region
	hit   *uint32 // the mapping's bus-error trap word (region.Hit); nil: the guard alone
	mem   []byte  // reg.Mem()
	hdr   layout.Header
	ring  *ring.Ring
	codec codec.Codec[T]
	raw   *codec.RawCodec[T] // codec as its concrete type when T is raw: no interface call, no escape
	// fast: T is raw, has no bool fields and is smaller than fastRawMax, so a
	// value is moved with an inlined typed copy (putRaw/getRaw) of wire bytes.
	fast bool
	wire int
	life sync.RWMutex // held for reading by Len and Stats, for writing by Close
	dead atomic.Bool  // Close was called; checked under smu, rmu or life

	smu       sync.Mutex // guards snd
	snd       *ring.Sender
	sendEntry atomic.Int32 // role entry of snd, 0 before the first send; set under smu
	recvEntry atomic.Int32 // fan-out: consumer entry of rcv, 0 before the first receive; set under rmu

	rmu sync.Mutex // guards rcv
	rcv *ring.Receiver
}

// Create makes a new channel region named name; fs.ErrExist if one exists.
func Create[T any](name string, opts ...Option) (*Chan[T], error) {
	return create[T](name, opts)
}

// Open attaches to an existing channel region; fs.ErrNotExist if absent.
func Open[T any](name string, opts ...Option) (*Chan[T], error) {
	return open[T](name, opts)
}

// OpenOrCreate opens the region, or creates it if absent. Two processes
// racing to create the same name both succeed on the same region.
func OpenOrCreate[T any](name string, opts ...Option) (*Chan[T], error) {
	for try := 0; ; try++ {
		c, err := create[T](name, opts)
		if !errors.Is(err, fs.ErrExist) {
			return c, err
		}
		c, err = open[T](name, opts)
		// The creator may have failed and removed it between our two
		// calls: go round again (a few times).
		if !errors.Is(err, fs.ErrNotExist) || try == 10 {
			return c, err
		}
	}
}

// Unlink removes the channel's name (and its doorbell queues, if any).
// Handles already open keep working; the memory is freed when the last one
// closes.
func Unlink(name string) error {
	if err := region.Unlink(name); err != nil {
		return fmt.Errorf("shmchan: unlink %q: %w", name, err)
	}
	return nil
}

func parse(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

func codecFor[T any](o options) (codec.Codec[T], error) {
	if o.codec == nil {
		return codec.For[T]()
	}
	c, ok := o.codec.(codec.Codec[T])
	if !ok {
		var zero T
		return nil, fmt.Errorf("%w: WithCodec got %T, the channel's type is %T", ErrTypeMismatch, o.codec, zero)
	}
	if err := codec.Check(c); err != nil { // e.g. gob of a type it cannot check safely
		return nil, err
	}
	return c, nil
}

// headerFor returns the header the options ask for (for Create).
func headerFor[T any](o options, c codec.Codec[T]) (layout.Header, error) {
	h := layout.Header{
		Mode:        layout.ModeSPSC,
		Wait:        layout.Wait(o.wait),
		Producers:   1,
		Fingerprint: c.Fingerprint(),
		CodecName:   c.Name(),
		TypeName:    c.TypeName(),
		CreatorPID:  uint32(os.Getpid()),
		CreatorUID:  uint32(os.Geteuid()),
		Created:     time.Now().UnixNano(),
	}
	if n := len(c.Name()); n == 0 || n > layout.CodecNameLen {
		return h, fmt.Errorf("shmchan: codec name %q: want 1 to %d bytes", c.Name(), layout.CodecNameLen)
	}
	if o.wait < WaitFutex || o.wait > WaitSpin {
		return h, fmt.Errorf("shmchan: unknown wait mode %d", o.wait)
	}
	if o.multi {
		h.Mode, h.Producers = layout.ModeMPSC, DefaultProducers
		if o.producers > 0 {
			h.Producers = uint32(min(o.producers, layout.MaxProducers+1))
		}
	}
	if o.multiConsumer && o.broadcastSet {
		return h, fmt.Errorf("%w: WithMultiConsumer and WithBroadcast together: a value goes to one receiver or to all", ErrIncompatible)
	}
	if o.multiConsumer || o.broadcastSet {
		h.Mode = layout.ModeWorkQueue
		if o.broadcastSet {
			h.Mode = layout.ModeBroadcast
			if o.overflow != WaitForSlowest && o.overflow != DropOldest {
				return h, fmt.Errorf("shmchan: unknown overflow policy %d", o.overflow)
			}
			h.Overflow = layout.Overflow(o.overflow)
		}
		if o.multi {
			h.Flags |= layout.FlagMulti
		} else {
			h.Producers = 1
		}
		h.Consumers = DefaultConsumers
		if o.consumers > 0 {
			h.Consumers = uint32(min(o.consumers, layout.MaxConsumers+1))
		}
	}
	capacity := o.capacity
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if capacity < 0 || capacity > layout.MaxCapacity {
		return h, fmt.Errorf("shmchan: capacity %d not in [1, %d]", capacity, layout.MaxCapacity)
	}
	h.Capacity = uint64(1) << bits.Len64(uint64(capacity-1))
	if n := c.FixedSize(); n > 0 {
		if o.maxMsg != 0 && o.maxMsg != n {
			return h, fmt.Errorf("shmchan: WithMaxMessageSize(%d) for a type whose values are all %d bytes", o.maxMsg, n)
		}
		h.MaxMsg = uint32(n)
		if codec.IsRaw(c) {
			h.Flags |= layout.FlagRaw
		}
	} else {
		m := o.maxMsg
		if m == 0 {
			m = DefaultMaxMsg
		}
		if m < 1 || m > layout.MaxMsg {
			return h, fmt.Errorf("shmchan: max message size %d not in [1, %d]", m, layout.MaxMsg)
		}
		h.MaxMsg = uint32(m)
	}
	if err := h.Geometry(); err != nil {
		// Parameters a caller chose, not bytes from a peer: say so plainly.
		return h, fmt.Errorf("shmchan: impossible options: %v", err)
	}
	return h, nil
}

func create[T any](name string, opts []Option) (*Chan[T], error) {
	o := parse(opts)
	cd, err := codecFor[T](o)
	if err != nil {
		return nil, err
	}
	h, err := headerFor(o, cd)
	if err != nil {
		return nil, err
	}
	g, err := region.Create(name, h, region.Options{Perm: o.perm})
	if err != nil {
		return nil, fmt.Errorf("shmchan: create %q: %w", name, err)
	}
	c, err := newChan[T](g, cd, o)
	if err == nil {
		err = g.Publish()
	}
	if err != nil {
		g.Discard()
		return nil, err
	}
	return c, nil
}

func open[T any](name string, opts []Option) (*Chan[T], error) {
	o := parse(opts)
	cd, err := codecFor[T](o)
	if err != nil {
		return nil, err
	}
	g, err := region.Open(name, region.Options{AllowForeignOwner: o.foreign})
	if err != nil {
		return nil, fmt.Errorf("shmchan: open %q: %w", name, err)
	}
	if err := checkRegion(g.Header(), o, cd); err != nil {
		g.Close()
		return nil, fmt.Errorf("shmchan: open %q: %w", name, err)
	}
	c, err := newChan[T](g, cd, o)
	if err != nil {
		g.Close()
		return nil, err
	}
	return c, nil
}

// checkRegion checks an opened region against the caller's type and options.
func checkRegion[T any](h layout.Header, o options, cd codec.Codec[T]) error {
	if !o.adopt && (h.CodecName != cd.Name() || h.Fingerprint != cd.Fingerprint()) {
		return fmt.Errorf("%w: region holds %s (codec %s, fingerprint %#x), this handle wants %s (codec %s, fingerprint %#x)",
			ErrTypeMismatch, h.TypeName, h.CodecName, h.Fingerprint, cd.TypeName(), cd.Name(), cd.Fingerprint())
	}
	bad := func(what string, want, got any) error {
		return fmt.Errorf("%w: %s %v asked, region has %v", ErrIncompatible, what, want, got)
	}
	if o.capacity > 0 {
		want := uint64(1) << bits.Len64(uint64(o.capacity-1))
		if want != h.Capacity {
			return bad("capacity", want, h.Capacity)
		}
	}
	if o.maxMsg > 0 && uint32(o.maxMsg) != h.MaxMsg {
		return bad("max message size", o.maxMsg, h.MaxMsg)
	}
	multi := h.Mode == layout.ModeMPSC || h.Flags&layout.FlagMulti != 0
	if o.multiSet && multi != o.multi {
		return bad("multi-producer", o.multi, multi)
	}
	if o.multiConsumerSet && (h.Mode == layout.ModeWorkQueue) != o.multiConsumer {
		return bad("multi-consumer", o.multiConsumer, h.Mode == layout.ModeWorkQueue)
	}
	if o.broadcastSet && (h.Mode != layout.ModeBroadcast || Overflow(h.Overflow) != o.overflow) {
		if h.Mode != layout.ModeBroadcast {
			return bad("broadcast", true, false)
		}
		return bad("overflow policy", o.overflow, Overflow(h.Overflow))
	}
	if o.consumers > 0 && uint32(o.consumers) != h.Consumers {
		return bad("consumers", o.consumers, h.Consumers)
	}
	if o.producers > 0 && uint32(o.producers) != h.Producers {
		return bad("producers", o.producers, h.Producers)
	}
	if o.waitSet && layout.Wait(o.wait) != h.Wait {
		return bad("wait mode", o.wait, WaitMode(h.Wait))
	}
	return nil
}

func newChan[T any](g *region.Region, cd codec.Codec[T], o options) (_ *Chan[T], err error) {
	hit := g.Hit()
	defer region.Recover(hit, &err, region.Guard(hit))
	h := g.Header()
	c := &Chan[T]{name: g.Name(), reg: g, mem: g.Mem(), hit: hit, hdr: h, codec: cd}
	if rc, ok := codec.AsRaw(cd); ok && h.Flags&layout.FlagRaw != 0 {
		c.raw = rc
		c.wire = rc.FixedSize()
		c.fast = !rc.HasBool() && rc.Size() == c.wire && c.wire < fastRawMax
	}
	cfg := ring.Config{Spin: o.spin, StuckCheck: o.stuck, Alive: c.alive, Rescue: g.Rescue, WatchExit: region.WatchExit, Hit: c.hit}
	cfg.RecvBell, cfg.SendBell = g.Doorbells()
	r, err := ring.New(c.mem, h, cfg)
	if err != nil {
		return nil, fmt.Errorf("shmchan: %q: %w", c.name, err)
	}
	c.ring = r
	return c, nil
}

// alive reports whether the holder of role entry i is alive: its role lock
// is held by another open file description, or by this handle itself.
func (c *Chan[T]) alive(i int) (bool, error) {
	if int(c.sendEntry.Load()) == i || c.recvEntry.Load() == int32(i) && i != 0 {
		return true, nil
	}
	return c.reg.Alive(i)
}

// sender returns the sender side, taking the role on first use. smu held.
func (c *Chan[T]) sender() (*ring.Sender, error) {
	if c.dead.Load() {
		return nil, c.closedErr()
	}
	if c.snd != nil {
		return c.snd, nil
	}
	for i := 1; i <= int(c.hdr.Producers); i++ {
		ok, err := c.reg.TakeRole(i)
		if err != nil {
			return nil, fmt.Errorf("shmchan: %q: sender role: %w", c.name, err)
		}
		if !ok {
			continue
		}
		s, err := c.ring.NewSender(i, region.Identity())
		if err != nil {
			c.reg.DropRole(i)
			return nil, fmt.Errorf("shmchan: %q: %w", c.name, err)
		}
		c.snd = s
		c.sendEntry.Store(int32(i))
		return s, nil
	}
	if c.hdr.Mode == layout.ModeMPSC {
		return nil, fmt.Errorf("%w: %q: all %d sender entries are held", ErrBusy, c.name, c.hdr.Producers)
	}
	return nil, fmt.Errorf("%w: %q: the sender role is held", ErrBusy, c.name)
}

// receiver returns the receiver side, taking the role on first use. rmu held.
func (c *Chan[T]) receiver() (*ring.Receiver, error) {
	if c.dead.Load() {
		return nil, c.closedErr()
	}
	if c.rcv != nil {
		return c.rcv, nil
	}
	if c.hdr.Mode.FanOut() {
		return c.consumer()
	}
	ok, err := c.reg.TakeRole(0)
	if err != nil {
		return nil, fmt.Errorf("shmchan: %q: receiver role: %w", c.name, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q: the receiver role is held", ErrBusy, c.name)
	}
	r, err := c.ring.NewReceiver(region.Identity())
	if err != nil {
		c.reg.DropRole(0)
		return nil, fmt.Errorf("shmchan: %q: %w", c.name, err)
	}
	c.rcv = r
	return r, nil
}

// consumer takes a free consumer entry (work queue, broadcast): ErrBusy at
// once when every one is held. rmu held.
func (c *Chan[T]) consumer() (*ring.Receiver, error) {
	for k := 0; k < int(c.hdr.Consumers); k++ {
		i := c.hdr.ConsumerEntry(k)
		ok, err := c.reg.TakeRole(i)
		if err != nil {
			return nil, fmt.Errorf("shmchan: %q: receiver role: %w", c.name, err)
		}
		if !ok {
			continue
		}
		c.recvEntry.Store(int32(i)) // before the receiver exists: its own claims are alive
		r, err := c.ring.NewConsumer(i, region.Identity())
		if err != nil {
			c.recvEntry.Store(0)
			c.reg.DropRole(i)
			return nil, fmt.Errorf("shmchan: %q: %w", c.name, err)
		}
		c.rcv = r
		return r, nil
	}
	return nil, fmt.Errorf("%w: %q: all %d receiver entries are held", ErrBusy, c.name, c.hdr.Consumers)
}

// guardLife guards Len and Stats against a concurrent Close; leave with
// c.life.RUnlock. Sends and receives are guarded by smu and rmu instead.
func (c *Chan[T]) guardLife() error {
	c.life.RLock()
	if c.dead.Load() {
		c.life.RUnlock()
		return c.closedErr()
	}
	return nil
}

func (c *Chan[T]) closedErr() error {
	return fmt.Errorf("shmchan: %q: %w: %w", c.name, errHandleClosed, ErrClosed)
}

func (c *Chan[T]) named(err error) error {
	switch err {
	case ErrClosed:
		if c.dead.Load() {
			return c.closedErr()
		}
		return err
	case nil, ErrFull, ErrEmpty, context.Canceled, context.DeadlineExceeded:
		return err
	}
	if errors.Is(err, ErrFull) || errors.Is(err, ErrEmpty) || errors.Is(err, ErrBusy) {
		return err
	}
	return fmt.Errorf("shmchan: %q: %w", c.name, err)
}

// CloseSend closes the channel for sending, like close(ch): later sends
// get ErrClosed, and receivers get the values sent before, then ErrClosed.
// In SPSC the handle must be (or become) the sender; in MPSC any sender
// may close, and the channel is closed for all of them.
func (c *Chan[T]) CloseSend() (err error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	s, err := c.sender()
	if err != nil {
		return err
	}
	return s.Close()
}

// Close detaches this handle: it gives up its roles and unmaps the region.
// The region itself stays until Unlink. Calls after Close return ErrClosed.
func (c *Chan[T]) Close() (err error) {
	if c.dead.Swap(true) {
		return c.closedErr()
	}
	// Wake this handle's sleeping calls (they return ErrClosed), then wait
	// for every call in progress to leave before unmapping.
	func() {
		defer region.Recover(c.hit, &err, region.Guard(c.hit))
		c.ring.Shutdown()
	}()
	c.smu.Lock()
	defer c.smu.Unlock()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.life.Lock()
	defer c.life.Unlock()
	func() {
		defer region.Recover(c.hit, &err, region.Guard(c.hit))
		if c.snd != nil {
			c.snd.Detach()
		}
		if c.rcv != nil {
			c.rcv.Detach()
		}
	}()
	return errors.Join(err, c.reg.Close()) // closing the descriptor drops the role locks
}

// Len returns the number of values queued now, like len(ch). In MPSC it
// counts claimed slots whose values are still being written.
func (c *Chan[T]) Len() int {
	if c.guardLife() != nil {
		return 0
	}
	defer c.life.RUnlock()
	var err error
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	if c.hdr.Mode == layout.ModeBroadcast {
		// A broadcast receiver's own backlog; a handle that has not joined
		// has none (it sees only what is sent after it joins).
		if e := c.recvEntry.Load(); e != 0 {
			return c.ring.Backlog(int(e))
		}
		return 0
	}
	return c.ring.Len()
}

// Cap returns how many values the channel holds, like cap(ch).
func (c *Chan[T]) Cap() int { return int(c.hdr.Capacity) }

// Name returns the channel's name as given.
func (c *Chan[T]) Name() string { return c.name }

// Stats returns the channel's counters (see ring.Stats).
func (c *Chan[T]) Stats() Stats {
	if c.guardLife() != nil {
		return Stats{}
	}
	defer c.life.RUnlock()
	var err error
	defer region.Recover(c.hit, &err, region.Guard(c.hit))
	return c.ring.Stats()
}

// Stats are a channel's counters: values sent, received, abandoned (MPSC
// slots whose writer died), and how often each side slept and was woken.
type Stats = ring.Stats
