package ring

// Fuzz targets for ring state written by a hostile peer: the fuzzer supplies
// the mutable part of a region (indices, wait words, role entries, slots)
// under a valid header, and a list of operations, some of which scribble
// on the region again between calls. A Receiver and Senders work through the
// operations; they must never panic or loop forever, and every error they
// return must be one of the ring's own.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// errFuzzAlive is what a failing Config.Alive returns; the receiver may pass
// it on.
var errFuzzAlive = errors.New("fuzz: liveness check failed")

// fuzzGeometry decodes the parameter byte: the capacity, the largest
// payload, the number of sender entries (MPSC) and how Alive behaves.
func fuzzGeometry(mode layout.Mode, params uint8) (capacity uint64, maxMsg, producers uint32, alive uint8) {
	capacity = 1 << (params & 3)
	maxMsg = [4]uint32{1, 8, 16, 40}[params>>2&3]
	producers = 1
	if mode == layout.ModeMPSC {
		producers = 1 + uint32(params>>4&3)
	}
	return capacity, maxMsg, producers, params >> 6
}

// fuzzAlive returns the Config.Alive of kind k: nil (everyone is alive and
// never asked), all alive, all dead, or dead/alive/failing by entry.
func fuzzAlive(k uint8) func(int) (bool, error) {
	switch k {
	case 1:
		return func(int) (bool, error) { return true, nil }
	case 2:
		return func(int) (bool, error) { return false, nil }
	case 3:
		return func(i int) (bool, error) {
			switch i % 3 {
			case 0:
				return true, nil
			case 1:
				return false, nil
			}
			return false, errFuzzAlive
		}
	}
	return nil
}

// Operations. Each takes its arguments from the bytes that follow it.
const (
	opPeek        = iota // TryPeek, then Release
	opPeekN              // [max] TryPeekN, Item each, ReleaseN
	opPeekBlock          // [ctx] Peek with a cancelled or an almost expired context
	opPeekHold           // TryPeek without Release, then Release later by opPeek
	opReserve            // [len] TryReserve, fill, Commit
	opReserveN           // [max, keep] TryReserveN, fill, SetLen, CommitN(keep)
	opAbort              // TryReserve, Abort
	opReserveBlk         // [ctx] Reserve with a cancelled or an almost expired context, then Abort
	opClose              // Sender.Close
	opPoke32             // [off lo, off hi, 4 bytes] a peer writes a word
	opPoke64             // [which, 8 bytes] a peer writes the tail or the head
	opPokeSlot           // [pos, field, 4 bytes] a peer writes a slot's seq or len
	opSender             // [entry] take (over) a sender entry; top bit: its holder detaches first
	opReceiver           // [detach] take over the receiver role
	opLenStats           // Len and Stats
	opPeekNBlock         // [max, ctx] PeekN, Item each, ReleaseN
	opReserveNBlk        // [max, keep, ctx] ReserveN, fill, SetLen, CommitN(keep)
	opCount
)

// fuzzer is what every target shares: the ring on the fuzzed memory, the
// operations and the cursor through their arguments, the senders, and
// the checks of what a call returned.
type fuzzer struct {
	t         *testing.T
	mem       []byte
	r         *Ring
	capacity  uint64
	maxMsg    uint32
	ops       []byte
	i         int       // the operation at hand; arg reads the bytes after it
	senders   []*Sender // by entry
	sender    int       // entry of the current sender, 0 if none
	cancelled context.Context
}

// newFuzzer makes the ring on mem (with producers sender entries). An input that
// makes a call loop forever panics after 20s, with every goroutine's
// stack, so the culprit is plain: stop ends that watch.
func newFuzzer(t *testing.T, mem []byte, h layout.Header, cfg Config, producers uint32, params any, image, ops []byte) (f *fuzzer, stop func()) {
	r, err := New(mem, h, cfg)
	if err != nil {
		t.Fatalf("New on a valid header: %v", err)
	}
	hang := time.AfterFunc(20*time.Second, func() {
		debug.SetTraceback("all")
		panic(fmt.Sprintf("fuzz input hung (params %#x, %d image bytes, ops %x)", params, len(image), ops))
	})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	f = &fuzzer{t: t, mem: mem, r: r, capacity: h.Capacity, maxMsg: h.MaxMsg, ops: ops,
		senders: make([]*Sender, producers+1), cancelled: cancelled}
	return f, func() { hang.Stop() }
}

// check fails the test unless err is nil, ErrCorrupt or one of allowed.
func (f *fuzzer) check(what string, err error, allowed ...error) {
	f.t.Helper()
	if err == nil {
		return
	}
	for _, a := range append(allowed, ErrCorrupt) {
		if errors.Is(err, a) {
			return
		}
	}
	f.t.Fatalf("%s: unexpected error %v", what, err)
}

// arg returns the next argument byte of the operation (0 past the end).
func (f *fuzzer) arg() byte {
	f.i++
	if f.i < len(f.ops) {
		return f.ops[f.i]
	}
	return 0
}

// u32 and u64 read a little-endian word from the arguments.
func (f *fuzzer) u32() uint32 {
	return uint32(f.arg()) | uint32(f.arg())<<8 | uint32(f.arg())<<16 | uint32(f.arg())<<24
}

func (f *fuzzer) u64() uint64 {
	var v uint64
	for j := 0; j < 8; j++ {
		v |= uint64(f.arg()) << (8 * j)
	}
	return v
}

// blockCtx is the context of a blocking call: already cancelled (the
// call checks the ring, then gives up before sleeping), or expiring soon
// (the call goes to sleep on the futex words the input wrote).
func (f *fuzzer) blockCtx(b byte) (context.Context, context.CancelFunc) {
	if b&1 == 0 {
		return f.cancelled, func() {}
	}
	return context.WithTimeout(context.Background(), 50*time.Microsecond)
}

// payload checks a received value's length.
func (f *fuzzer) payload(what string, b []byte) {
	f.t.Helper()
	if uint64(len(b)) > uint64(f.maxMsg) {
		f.t.Fatalf("%s returned %d bytes, the maximum is %d", what, len(b), f.maxMsg)
	}
}

// peekItems checks the k values a successful PeekN or TryPeekN made
// available, and releases them (up to a bad one, as the channel does).
func (f *fuzzer) peekItems(what string, k, max int, c *Receiver) {
	f.t.Helper()
	if k < 1 || k > max || uint64(k) > f.capacity {
		f.t.Fatalf("%s(%d) = %d with %d slots", what, max, k, f.capacity)
	}
	release := k
	for j := 0; j < k; j++ {
		b, err := c.Item(j)
		f.check("Item", err)
		if err != nil {
			release = j + 1
			break
		}
		f.payload(fmt.Sprintf("Item(%d)", j), b)
	}
	c.ReleaseN(release)
}

// reserved fills and commits keep of the k slots a successful ReserveN or
// TryReserveN reserved.
func (f *fuzzer) reserved(what string, k, max, keep int, s *Sender) {
	f.t.Helper()
	if k < 1 || k > max || uint64(k) > f.capacity {
		f.t.Fatalf("%s(%d) = %d with %d slots", what, max, k, f.capacity)
	}
	keep %= k + 1
	for j := 0; j < k; j++ {
		n := (j + keep) % (int(f.maxMsg) + 1)
		b := s.Slot(j)
		if uint64(len(b)) != uint64(f.maxMsg) {
			f.t.Fatalf("Slot(%d) has %d bytes, the maximum is %d", j, len(b), f.maxMsg)
		}
		for i := range b[:n] {
			b[i] = byte(i + j)
		}
		s.SetLen(j, n)
	}
	s.CommitN(keep)
}

// take takes (over) sender entry e.
func (f *fuzzer) take(e int) {
	s, err := f.r.NewSender(e, Identity{PID: uint32(100 + e)})
	f.check("NewSender", err)
	f.senders[e] = s
	if s != nil {
		f.sender = e
	}
}

// The operations both kinds of target have. Each reads its arguments
// first, whatever happens next.

// reserve: [len] TryReserve, fill, Commit.
func (f *fuzzer) reserve(allowed ...error) {
	n := int(f.arg()) % (int(f.maxMsg) + 1)
	s := f.senders[f.sender]
	if s == nil {
		return
	}
	b, err := s.TryReserve()
	f.check("TryReserve", err, allowed...)
	if err == nil {
		if uint64(len(b)) != uint64(f.maxMsg) {
			f.t.Fatalf("TryReserve gave %d bytes, the maximum is %d", len(b), f.maxMsg)
		}
		for i := range b[:n] {
			b[i] = byte(n + i)
		}
		s.Commit(n)
	}
}

// reserveN: [max, keep] TryReserveN, fill, SetLen, CommitN(keep).
func (f *fuzzer) reserveN(allowed ...error) {
	max, keep := int(f.arg()%9)+1, int(f.arg())
	s := f.senders[f.sender]
	if s == nil {
		return
	}
	k, err := s.TryReserveN(max)
	f.check("TryReserveN", err, allowed...)
	if err == nil {
		f.reserved("TryReserveN", k, max, keep, s)
	}
}

// abort: TryReserve, Abort.
func (f *fuzzer) abort(allowed ...error) {
	s := f.senders[f.sender]
	if s == nil {
		return
	}
	_, err := s.TryReserve()
	f.check("TryReserve", err, allowed...)
	if err == nil {
		s.Abort()
	}
}

// closeSend: Sender.Close.
func (f *fuzzer) closeSend() {
	if s := f.senders[f.sender]; s != nil {
		f.check("Close", s.Close())
	}
}

// poke32: [off lo, off hi, 4 bytes] a peer writes a word anywhere past
// the header.
func (f *fuzzer) poke32() {
	off := int(f.arg()) | int(f.arg())<<8
	v := f.u32()
	span := len(f.mem) - layout.OffReady
	off = layout.OffReady + (off%span)&^3
	if off+4 <= len(f.mem) {
		binary.LittleEndian.PutUint32(f.mem[off:], v)
	}
}

// takeSender: [entry] take (over) a sender entry of producers; top bit:
// its holder detaches first (a holder that left; otherwise one that died).
func (f *fuzzer) takeSender(producers uint32) {
	b := f.arg()
	e := int(b)%int(producers) + 1
	if b&0x80 != 0 && f.senders[e] != nil {
		f.senders[e].Detach()
	}
	f.take(e)
}

// checkLen checks the ring's Len.
func (f *fuzzer) checkLen() {
	f.t.Helper()
	if l := f.r.Len(); l < 0 || l > f.r.Cap() {
		f.t.Fatalf("Len() = %d with %d slots", l, f.r.Cap())
	}
}

// fuzzRing is the body shared by both targets.
func fuzzRing(t *testing.T, mode layout.Mode, params uint8, image, ops []byte) {
	capacity, maxMsg, producers, aliveKind := fuzzGeometry(mode, params)
	mem, h := region(t, mode, layout.WaitFutex, capacity, maxMsg, producers)
	copy(mem[layout.OffReady:], image)
	f, stop := newFuzzer(t, mem, h, Config{Spin: -1, StuckCheck: time.Nanosecond, Alive: fuzzAlive(aliveKind)}, producers, params, image, ops)
	defer stop()
	r, check, arg, blockCtx := f.r, f.check, f.arg, f.blockCtx
	blockErrs := []error{ErrEmpty, ErrClosed, context.Canceled, context.DeadlineExceeded, errFuzzAlive}

	recv, err := r.NewReceiver(Identity{PID: 1})
	check("NewReceiver", err)
	f.take(1)
	peeked := false // a TryPeek is waiting for its Release

	const maxOps = 200
	for n := 0; f.i < len(ops) && n < maxOps; f.i, n = f.i+1, n+1 {
		s := f.senders[f.sender]
		switch ops[f.i] % opCount {
		case opPeek, opPeekHold:
			if recv == nil {
				break
			}
			if peeked {
				recv.Release()
				peeked = false
				break
			}
			b, err := recv.TryPeek()
			check("TryPeek", err, ErrEmpty, ErrClosed, errFuzzAlive)
			if err == nil {
				f.payload("TryPeek", b)
				if ops[f.i]%opCount == opPeekHold {
					peeked = true
				} else {
					recv.Release()
				}
			}
		case opPeekN:
			max := int(arg()%9) + 1
			if recv == nil || peeked {
				break
			}
			k, err := recv.TryPeekN(max)
			check("TryPeekN", err, ErrEmpty, ErrClosed, errFuzzAlive)
			if err == nil {
				f.peekItems("TryPeekN", k, max, recv)
			}
		case opPeekNBlock:
			max := int(arg()%9) + 1
			ctx, stop := blockCtx(arg())
			if recv != nil && !peeked {
				k, err := recv.PeekN(ctx, max)
				check("PeekN", err, blockErrs...)
				if err == nil {
					f.peekItems("PeekN", k, max, recv)
				}
			}
			stop()
		case opPeekBlock:
			ctx, stop := blockCtx(arg())
			defer stop()
			if recv == nil || peeked {
				break
			}
			b, err := recv.Peek(ctx)
			check("Peek", err, blockErrs...)
			if err == nil {
				f.payload("Peek", b)
				recv.Release()
			}
		case opReserve:
			f.reserve(ErrFull, ErrClosed)
		case opReserveN:
			f.reserveN(ErrFull, ErrClosed)
		case opReserveNBlk:
			max, keep := int(arg()%9)+1, int(arg())
			ctx, stop := blockCtx(arg())
			if s != nil {
				k, err := s.ReserveN(ctx, max)
				check("ReserveN", err, ErrFull, ErrClosed, context.Canceled, context.DeadlineExceeded)
				if err == nil {
					f.reserved("ReserveN", k, max, keep, s)
				}
			}
			stop()
		case opAbort:
			f.abort(ErrFull, ErrClosed)
		case opReserveBlk:
			ctx, stop := blockCtx(arg())
			defer stop()
			if s == nil {
				break
			}
			_, err := s.Reserve(ctx)
			check("Reserve", err, ErrClosed, context.Canceled, context.DeadlineExceeded)
			if err == nil {
				s.Abort()
			}
		case opClose:
			f.closeSend()
		case opPoke32:
			f.poke32()
		case opPoke64:
			which := arg()
			v := f.u64()
			off := layout.OffTail
			if which&1 != 0 {
				off = layout.OffHead
			}
			if which&2 != 0 { // near the current value: plausible, not absurd
				cur := binary.LittleEndian.Uint64(mem[off:])
				v = cur + uint64(int64(int8(v)))
			}
			binary.LittleEndian.PutUint64(mem[off:], v)
		case opPokeSlot:
			pos, field := uint64(arg()), arg()
			v := f.u32()
			off := int(h.DataOffset) + int(pos%capacity)*int(h.SlotSize)
			switch field % 4 {
			case 0:
				off += layout.SlotSeq
			case 1:
				off += layout.SlotLen
			case 2: // a plausible sequence: pos+1 for some nearby pos
				off += layout.SlotSeq
				v = uint32(pos) + 1
			case 3: // the skip marker
				off += layout.SlotLen
				v = layout.SlotSkip
			}
			binary.LittleEndian.PutUint32(mem[off:], v)
		case opSender:
			f.takeSender(producers)
		case opReceiver:
			detach := arg()&1 != 0
			if peeked {
				recv.Release()
				peeked = false
			}
			if detach && recv != nil {
				recv.Detach()
			}
			recv, err = r.NewReceiver(Identity{PID: 2})
			check("NewReceiver", err)
		case opLenStats:
			f.checkLen()
			r.Stats()
			r.Closed()
		}
	}
	if peeked {
		recv.Release()
	}
	f.checkLen()
}

// fuzzSeeds adds inputs that start from states worth mutating: an empty
// region, one a normal run left behind, and classic lies.
func fuzzSeeds(f *testing.F, mode layout.Mode) {
	tail := layout.OffTail - layout.OffReady
	head := layout.OffHead - layout.OffReady
	basic := []byte{opReserve, 8, opReserve, 3, opPeek, opPeekN, 4, opReserveN, 5, 2, opPeekBlock, opLenStats,
		opAbort, opPeek, opReserveBlk, opClose, opPeek, opPeek, opPeekN, 9, opPeekBlock}
	for _, params := range []uint8{0x00, 0x0a, 0x1e, 0x37, 0x6b, 0xbf, 0xf6} {
		f.Add(params, []byte{}, basic)
		// The state a normal run leaves: run the basic operations on a fresh
		// region and keep its mutable part.
		capacity, maxMsg, producers, _ := fuzzGeometry(mode, params)
		mem, h := region(f, mode, layout.WaitFutex, capacity, maxMsg, producers)
		r, _ := New(mem, h, Config{})
		c, _ := r.NewReceiver(Identity{PID: 1})
		s, _ := r.NewSender(1, Identity{PID: 2})
		for i := 0; i < int(capacity)+3; i++ {
			if b, err := s.TryReserve(); err == nil {
				b[0] = byte(i)
				s.Commit(1)
			}
			if i%3 == 0 {
				if _, err := c.TryPeek(); err == nil {
					c.Release()
				}
			}
		}
		if mode == layout.ModeMPSC {
			s.TryReserve() // a claim never committed
		}
		live := append([]byte{}, mem[layout.OffReady:]...)
		f.Add(params, live, []byte{opPeek, opPeek, opReserve, 1, opPeekN, 9, opSender, 1, opPeekBlock, opPeek, opReserveN, 9, 9})
		// Lies: tail far ahead, head past tail, garbage lengths and seqs.
		lie := append([]byte{}, live...)
		binary.LittleEndian.PutUint64(lie[tail:], 1<<40)
		f.Add(params, lie, []byte{opPeek, opReserve, 2, opReceiver, opSender, 0, opLenStats})
		lie = append([]byte{}, live...)
		binary.LittleEndian.PutUint64(lie[head:], binary.LittleEndian.Uint64(lie[tail:])+3)
		f.Add(params, lie, []byte{opReserve, 2, opReserve, 2, opReserve, 2, opPeek, opReceiver, opPeek})
		f.Add(params, live, []byte{opPokeSlot, 0, 1, 0xff, 0xff, 0xff, 0xff, opPeek, opPokeSlot, 1, 2, 0, 0, 0, 0, opPeek,
			opPoke64, 2, 5, 0, 0, 0, 0, 0, 0, 0, opPeekN, 9, opPoke64, 3, 0xfe, 0, 0, 0, 0, 0, 0, 0, opReserveN, 9, 9})
	}
}

func FuzzRingSPSC(f *testing.F) {
	fuzzSeeds(f, layout.ModeSPSC)
	f.Fuzz(func(t *testing.T, params uint8, image, ops []byte) {
		fuzzRing(t, layout.ModeSPSC, params, image, ops)
	})
}

func FuzzRingMPSC(f *testing.F) {
	fuzzSeeds(f, layout.ModeMPSC)
	f.Fuzz(func(t *testing.T, params uint8, image, ops []byte) {
		fuzzRing(t, layout.ModeMPSC, params, image, ops)
	})
}

// Fan-out targets: a work queue or broadcast region whose mutable part
// (indices, claim head, lag counter, wait words, sender and consumer
// entries, slots) the fuzzer supplies, and operations by several
// receivers and senders, some of which scribble on the region between
// calls, kill a holder (its Receiver is dropped, a successor takes the
// entry over) or change who is alive, so that claims, rescues, resumed
// claims, cursors, gates and lags are all driven by hostile state. Every
// call must return a legal result or one of the ring's errors, never
// panic, hang or read out of bounds.

// errFuzzRescue is what a failing Config.Rescue returns.
var errFuzzRescue = errors.New("fuzz: rescue lock failed")

// fanGeometry decodes the fan-out targets' parameters: capacity, largest
// payload, sender and consumer entries, and the kinds of Alive and Rescue.
func fanGeometry(params uint16) (capacity uint64, maxMsg, producers, consumers uint32, alive, rescue uint8) {
	capacity = 1 << (params & 3)
	maxMsg = [4]uint32{1, 8, 16, 40}[params>>2&3]
	producers = 1 + uint32(params>>4&1)
	consumers = 1 + uint32(params>>5&3)
	return capacity, maxMsg, producers, consumers, uint8(params >> 7 & 3), uint8(params >> 9 & 3)
}

// Operations of the fan-out targets; each takes its arguments from the
// bytes that follow it. k picks a consumer.
const (
	fopPeek       = iota // [k] TryPeek, then Release
	fopPeekHold          // [k] TryPeek without Release (a later peek of k releases it)
	fopPeekN             // [k, max] TryPeekN, Item each, ReleaseN
	fopPeekBlock         // [k, ctx] Peek with a cancelled or an almost expired context
	fopPeekNBlock        // [k, max, ctx] PeekN, Item each, ReleaseN
	fopReserve           // [len] TryReserve, fill, Commit
	fopReserveN          // [max, keep] TryReserveN, fill, SetLen, CommitN(keep)
	fopAbort             // TryReserve, Abort
	fopReserveBlk        // [ctx] Reserve, then Abort
	fopClose             // Sender.Close
	fopPoke32            // [off lo, off hi, 4 bytes] a peer writes a word anywhere past the header
	fopPoke64            // [which, 8 bytes] a peer writes tail, head, claim head or the lag counter
	fopPokeSlot          // [pos, field, 4 bytes] a peer writes a slot's seq or len
	fopPokeEntry         // [entry, field, 8 bytes] a peer writes a word of a role entry
	fopSender            // [entry] take (over) a sender entry; top bit: its holder detaches first
	fopConsumer          // [k] consumer k's holder dies (or detaches: top bit) and a successor takes its entry
	fopDead              // [entry] flip whether the holder of an entry is alive (Alive of kind 1)
	fopLenStats          // Len, Backlog, Stats
	fopCount
)

// fanFuzzRegion builds the region of a fan-out target's parameters on Go
// memory.
func fanFuzzRegion(t testing.TB, mode layout.Mode, overflow layout.Overflow, params uint16) ([]byte, layout.Header) {
	capacity, maxMsg, producers, consumers, _, _ := fanGeometry(params)
	h := layout.Header{Mode: mode, Wait: layout.WaitFutex, Capacity: capacity, MaxMsg: maxMsg, Producers: producers,
		Consumers: consumers, Overflow: overflow, Flags: layout.FlagRaw}
	if producers > 1 {
		h.Flags |= layout.FlagMulti
	}
	return regionOf(t, h)
}

func fuzzFan(t *testing.T, mode layout.Mode, overflow layout.Overflow, params uint16, image, ops []byte) {
	capacity, _, producers, consumers, aliveKind, rescueKind := fanGeometry(params)
	mem, h := fanFuzzRegion(t, mode, overflow, params)
	copy(mem[layout.OffReady:], image)

	var dead [64]bool // Alive of kind 1: entries flipped dead by fopDead
	var alive func(int) (bool, error)
	switch aliveKind {
	case 1:
		alive = func(i int) (bool, error) { return i < 0 || i >= len(dead) || !dead[i], nil }
	default:
		alive = fuzzAlive(aliveKind)
	}
	var rescueMu sync.Mutex
	var rescue func() (func(), bool, error)
	switch rescueKind {
	case 1:
		rescue = func() (func(), bool, error) {
			if !rescueMu.TryLock() {
				return nil, false, nil
			}
			return rescueMu.Unlock, true, nil
		}
	case 2:
		rescue = func() (func(), bool, error) { return nil, false, nil }
	case 3:
		rescue = func() (func(), bool, error) { return nil, false, errFuzzRescue }
	}
	f, stop := newFuzzer(t, mem, h, Config{Spin: -1, StuckCheck: time.Nanosecond, Alive: alive, Rescue: rescue}, producers, params, image, ops)
	defer stop()
	r, check, arg, blockCtx, payload := f.r, f.check, f.arg, f.blockCtx, f.payload
	recvErrs := []error{ErrEmpty, ErrClosed, ErrLagged, errFuzzAlive, errFuzzRescue}
	var lag *LagError
	lagged := func(err error) {
		if errors.As(err, &lag) && (lag.Missed == 0 || mode != layout.ModeBroadcast || overflow != layout.OverflowDrop) {
			t.Fatalf("LagError %v in a %v region (overflow %v)", err, mode, overflow)
		}
	}
	ctxErrs := []error{context.Canceled, context.DeadlineExceeded}

	recvs := make([]*Receiver, consumers)
	held := make([]bool, consumers) // a TryPeek of fopPeekHold awaits its Release
	join := func(k int) {
		c, err := r.NewConsumer(h.ConsumerEntry(k), Identity{PID: uint32(200 + k)})
		check("NewConsumer", err)
		recvs[k], held[k] = c, false
	}
	for k := range recvs {
		join(k)
	}
	f.take(1)

	// pick returns consumer k's Receiver, releasing a held peek first,
	// or nil if it has none.
	pick := func(b byte) (int, *Receiver) {
		k := int(b) % int(consumers)
		c := recvs[k]
		if c != nil && held[k] {
			c.Release()
			held[k] = false
			return k, nil
		}
		return k, c
	}
	const maxOps = 200
	for n := 0; f.i < len(ops) && n < maxOps; f.i, n = f.i+1, n+1 {
		s := f.senders[f.sender]
		switch op := ops[f.i] % fopCount; op {
		case fopPeek, fopPeekHold:
			k, c := pick(arg())
			if c == nil {
				break
			}
			b, err := c.TryPeek()
			check("TryPeek", err, recvErrs...)
			lagged(err)
			if err == nil {
				payload("TryPeek", b)
				if op == fopPeekHold {
					held[k] = true
				} else {
					c.Release()
				}
			}
		case fopPeekN:
			_, c := pick(arg())
			max := int(arg()%9) + 1
			if c == nil {
				break
			}
			got, err := c.TryPeekN(max)
			check("TryPeekN", err, recvErrs...)
			lagged(err)
			if err == nil {
				f.peekItems("TryPeekN", got, max, c)
			}
		case fopPeekBlock:
			_, c := pick(arg())
			ctx, stop := blockCtx(arg())
			if c != nil {
				b, err := c.Peek(ctx)
				check("Peek", err, append(recvErrs, ctxErrs...)...)
				lagged(err)
				if err == nil {
					payload("Peek", b)
					c.Release()
				}
			}
			stop()
		case fopPeekNBlock:
			_, c := pick(arg())
			max := int(arg()%9) + 1
			ctx, stop := blockCtx(arg())
			if c != nil {
				got, err := c.PeekN(ctx, max)
				check("PeekN", err, append(recvErrs, ctxErrs...)...)
				lagged(err)
				if err == nil {
					f.peekItems("PeekN", got, max, c)
				}
			}
			stop()
		case fopReserve:
			f.reserve(ErrFull, ErrClosed, errFuzzAlive)
		case fopReserveN:
			f.reserveN(ErrFull, ErrClosed, errFuzzAlive)
		case fopAbort:
			f.abort(ErrFull, ErrClosed, errFuzzAlive)
		case fopReserveBlk:
			ctx, stop := blockCtx(arg())
			if s != nil {
				_, err := s.Reserve(ctx)
				check("Reserve", err, append(ctxErrs, ErrClosed, errFuzzAlive)...)
				if err == nil {
					s.Abort()
				}
			}
			stop()
		case fopClose:
			f.closeSend()
		case fopPoke32:
			f.poke32()
		case fopPoke64:
			which := arg()
			v := f.u64()
			off := [4]int{layout.OffTail, layout.OffHead, layout.OffClaimHead, layout.OffLagged}[which&3]
			if which&4 != 0 { // near the current value: plausible, not absurd
				v = binary.LittleEndian.Uint64(mem[off:]) + uint64(int64(int8(v)))
			}
			binary.LittleEndian.PutUint64(mem[off:], v)
		case fopPokeSlot:
			pos, field := uint64(arg()), arg()
			v := f.u32()
			// pos counts from the tail's lap, so "plausible" marks land near
			// the live positions.
			base := binary.LittleEndian.Uint64(mem[layout.OffTail:]) &^ layout.ClosedBit &^ (capacity - 1)
			p := base + pos%(2*capacity) - capacity
			off := int(h.DataOffset) + int(p%capacity)*int(h.SlotSize)
			switch field % 5 {
			case 0:
				off += layout.SlotSeq
			case 1:
				off += layout.SlotLen
			case 2: // committed for p
				off += layout.SlotSeq
				v = uint32(p) + 1
			case 3:
				off += layout.SlotLen
				v = layout.SlotSkip
			case 4: // consumed for p (work queue)
				off += layout.SlotSeq
				v = wqConsumed(p)
			}
			binary.LittleEndian.PutUint32(mem[off:], v)
		case fopPokeEntry:
			e := int(arg()) % h.Entries()
			field := arg()
			v := f.u64()
			off := layout.RoleOffset(e)
			if field&8 != 0 { // a position near the tail: a plausible claim or cursor
				v = binary.LittleEndian.Uint64(mem[layout.OffTail:])&^layout.ClosedBit + uint64(int64(int8(v)))
			}
			switch field % 5 {
			case 0: // claim lo, or a broadcast cursor
				binary.LittleEndian.PutUint64(mem[off+layout.RoleClaimLo:], v)
			case 1:
				binary.LittleEndian.PutUint64(mem[off+layout.RoleClaimHi:], v)
			case 2: // a one-position claim at v
				binary.LittleEndian.PutUint64(mem[off+layout.RoleClaimLo:], v)
				binary.LittleEndian.PutUint64(mem[off+layout.RoleClaimHi:], v+1)
			case 3:
				binary.LittleEndian.PutUint32(mem[off+layout.RoleFlags:], uint32(v))
			case 4:
				binary.LittleEndian.PutUint64(mem[off+layout.RoleSent:], v)
			}
		case fopSender:
			f.takeSender(producers)
		case fopConsumer:
			b := arg()
			k := int(b) % int(consumers)
			if b&0x80 != 0 && recvs[k] != nil {
				if held[k] {
					recvs[k].Release()
				}
				recvs[k].Detach()
			}
			// Otherwise the holder died as it was, a held value unreleased.
			join(k)
		case fopDead:
			e := int(arg()) % h.Entries()
			dead[e] = !dead[e]
		case fopLenStats:
			f.checkLen()
			for k, c := range recvs {
				if c == nil {
					continue
				}
				if l := c.Len(); l < 0 || l > r.Cap() {
					t.Fatalf("consumer %d: Len() = %d with %d slots", k, l, r.Cap())
				}
				if l := r.Backlog(h.ConsumerEntry(k)); l < 0 || l > r.Cap() {
					t.Fatalf("consumer %d: Backlog = %d with %d slots", k, l, r.Cap())
				}
			}
			r.Stats()
			for e := 0; e < h.Entries(); e++ {
				r.Entry(e)
			}
		}
	}
	for k, c := range recvs {
		if c != nil && held[k] {
			c.Release()
		}
	}
}

// fanSeeds adds inputs that start from states worth mutating: an empty
// region, what normal runs leave behind (values held, a claim of a dead
// receiver, a dead sender's claim, a lagging broadcast receiver), and lies.
func fanSeeds(f *testing.F, mode layout.Mode, overflow layout.Overflow) {
	tail, head := layout.OffTail-layout.OffReady, layout.OffHead-layout.OffReady
	claimHead := layout.OffClaimHead - layout.OffReady
	basic := []byte{fopReserve, 8, fopReserve, 3, fopPeek, 0, fopPeekHold, 1, fopPeekN, 2, 4, fopReserveN, 5, 2,
		fopPeekBlock, 0, 1, fopLenStats, fopDead, 0, fopConsumer, 1, fopPeek, 2, fopPeek, 0, fopAbort, fopReserveBlk, 1,
		fopClose, fopPeek, 1, fopPeek, 2, fopPeekNBlock, 3, 9, 0, fopPeek, 0}
	// A receiver holding a value dies; the others must rescue it.
	crash := []byte{fopReserve, 4, fopReserve, 4, fopPeekHold, 0, fopDead, 5, fopDead, 6, fopDead, 3, fopDead, 4,
		fopPeek, 1, fopPeek, 1, fopPeek, 2, fopConsumer, 0, fopPeek, 0, fopClose, fopPeek, 1, fopPeek, 0}
	for _, params := range []uint16{0x0000, 0x00aa, 0x01be, 0x0337, 0x046b, 0x05ff, 0x02f6, 0x07e3} {
		if overflow == layout.OverflowDrop {
			params |= 0x800
		}
		f.Add(params, []byte{}, basic)
		f.Add(params, []byte{}, crash)
		capacity, _, _, consumers, _, _ := fanGeometry(params)
		mem, h := fanFuzzRegion(f, mode, overflow, params)
		var l liveness
		r, _ := New(mem, h, l.config())
		s, _ := r.NewSender(1, Identity{PID: 2})
		cs := make([]*Receiver, consumers)
		for k := range cs {
			cs[k], _ = r.NewConsumer(h.ConsumerEntry(k), Identity{PID: uint32(10 + k)})
		}
		for i := 0; i < int(capacity)+3; i++ {
			if b, err := s.TryReserve(); err == nil {
				b[0] = byte(i)
				s.Commit(1)
			}
			if i%2 == 0 {
				if _, err := cs[i%len(cs)].TryPeek(); err == nil {
					cs[i%len(cs)].Release()
				}
			}
		}
		cs[0].TryPeek() // held by a receiver that "dies"
		s.TryReserve()  // a claim never committed
		live := append([]byte{}, mem[layout.OffReady:]...)
		f.Add(params, live, []byte{fopDead, byte(h.ConsumerEntry(0)), fopPeek, 1, fopPeek, 1, fopConsumer, 0, fopPeek, 0,
			fopDead, 1, fopPeek, 0, fopReserve, 1, fopSender, 1, fopPeekBlock, 1, 1, fopLenStats})
		lie := append([]byte{}, live...)
		binary.LittleEndian.PutUint64(lie[tail:], 1<<40)
		f.Add(params, lie, []byte{fopPeek, 0, fopReserve, 2, fopConsumer, 1, fopSender, 0, fopLenStats})
		lie = append([]byte{}, live...)
		binary.LittleEndian.PutUint64(lie[claimHead:], binary.LittleEndian.Uint64(lie[tail:])+2)
		f.Add(params, lie, []byte{fopPeek, 0, fopPeek, 1, fopReserve, 2, fopConsumer, 0, fopPeek, 0})
		lie = append([]byte{}, live...)
		binary.LittleEndian.PutUint64(lie[head:], binary.LittleEndian.Uint64(lie[tail:])+3)
		f.Add(params, lie, []byte{fopReserve, 2, fopReserve, 2, fopPeek, 0, fopConsumer, 1, fopPeek, 1})
		f.Add(params, live, []byte{fopPokeEntry, byte(h.ConsumerEntry(1)), 10, 0xfe, 0, 0, 0, 0, 0, 0, 0, fopDead,
			byte(h.ConsumerEntry(1)), fopPeek, 0, fopPokeSlot, 3, 4, 0, 0, 0, 0, fopPeek, 0, fopPoke64, 6, 1, 0, 0, 0, 0, 0, 0, 0,
			fopPeekN, 0, 9, fopPokeEntry, byte(h.ConsumerEntry(0)), 3, 2, 0, 0, 0, 0, 0, 0, 0, fopReserveN, 9, 9})
	}
}

func FuzzRingWorkQueue(f *testing.F) {
	fanSeeds(f, layout.ModeWorkQueue, 0)
	f.Fuzz(func(t *testing.T, params uint16, image, ops []byte) {
		fuzzFan(t, layout.ModeWorkQueue, 0, params, image, ops)
	})
}

func FuzzRingBroadcast(f *testing.F) {
	fanSeeds(f, layout.ModeBroadcast, layout.OverflowWait)
	fanSeeds(f, layout.ModeBroadcast, layout.OverflowDrop)
	f.Fuzz(func(t *testing.T, params uint16, image, ops []byte) {
		overflow := layout.OverflowWait
		if params&0x800 != 0 {
			overflow = layout.OverflowDrop
		}
		fuzzFan(t, layout.ModeBroadcast, overflow, params, image, ops)
	})
}
