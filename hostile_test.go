package shmchan

// Hostile peers (issue 6): a process that shares the region and writes
// impossible values into it, shrinks the file under our mapping, or a
// /dev/shm with no room. The other side must get ErrCorrupt (or ErrEmpty,
// ErrFull, a context error where a value is merely stale), and must never
// panic, hang, or touch memory outside the mapping.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmchan/shmchan/futex"
	"github.com/shmchan/shmchan/internal/testutil"
	"github.com/shmchan/shmchan/layout"
	"github.com/shmchan/shmchan/shm"
)

// errNone in an allowed list accepts a nil error.
var errNone = errors.New("no error")

// peer is a hostile process's view of a region: its own mapping, written
// with atomic stores at the layout's offsets.
type peer struct {
	mem []byte
	h   layout.Header
}

// hostilePeer maps the region called name a second time, as another
// process would.
func hostilePeer(t *testing.T, name string) *peer {
	t.Helper()
	f, err := os.OpenFile(shmPath(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	h, err := layout.Validate(mem, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return &peer{mem: mem, h: h}
}

func (p *peer) word64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&p.mem[off])) }
func (p *peer) word32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&p.mem[off])) }

func (p *peer) set64(off int, v uint64) { atomic.StoreUint64(p.word64(off), v) }
func (p *peer) set32(off int, v uint32) { atomic.StoreUint32(p.word32(off), v) }
func (p *peer) get64(off int) uint64    { return atomic.LoadUint64(p.word64(off)) }

// slot returns the offset of the slot for position pos.
func (p *peer) slot(pos uint64) int {
	return int(p.h.DataOffset) + int(pos&(p.h.Capacity-1))*int(p.h.SlotSize)
}

// bounded runs f with a context that expires after d and returns its
// error. A panic fails the test; so does f still running long after its
// context expired (a hang).
func bounded(t *testing.T, what string, d time.Duration, f func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return testutil.Bounded(t, what, d+15*time.Second, func() error { return f(ctx) })
}

// allow checks that err matches one of allowed (errNone: nil).
func allow(t *testing.T, what string, err error, allowed ...error) {
	t.Helper()
	for _, a := range allowed {
		if (a == errNone && err == nil) || (err != nil && errors.Is(err, a)) {
			return
		}
	}
	t.Errorf("%s: %v, want one of %v", what, err, allowed)
}

// headPastTail checks that TrySend on c, whose head a peer set to head,
// past the tail, finds the lie. The sender may not look at the head until
// its cached view says the ring is full (nine tries fill a ring of 8);
// by then it must see it.
func headPastTail(t *testing.T, c *Chan[rec], head uint64) {
	t.Helper()
	var err error
	for i := 0; i <= 8 && err == nil; i++ {
		err = bounded(t, "TrySend", time.Second, func(context.Context) error { return c.TrySend(mkrec(9)) })
	}
	allow(t, fmt.Sprintf("TrySend with head %d past tail", head), err, ErrCorrupt)
}

// hostileChan creates a channel of rec and maps it as a hostile peer.
func hostileChan(t *testing.T, opts ...Option) (*Chan[rec], *peer) {
	t.Helper()
	name := testName(t)
	c, err := Create[rec](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, hostilePeer(t, name)
}

// recvMethods calls every receiving method once, each under a deadline.
func recvMethods(t *testing.T, c *Chan[rec], allowed ...error) {
	t.Helper()
	d := 200 * time.Millisecond
	withCtx := append([]error{context.DeadlineExceeded}, allowed...)
	allow(t, "TryRecv", bounded(t, "TryRecv", d, func(context.Context) error { _, err := c.TryRecv(); return err }), allowed...)
	allow(t, "Recv", bounded(t, "Recv", d, func(ctx context.Context) error { _, err := c.Recv(ctx); return err }), withCtx...)
	allow(t, "RecvBatch", bounded(t, "RecvBatch", d, func(ctx context.Context) error {
		_, err := c.RecvBatch(ctx, make([]rec, 4))
		return err
	}), withCtx...)
	allow(t, "RecvFunc", bounded(t, "RecvFunc", d, func(ctx context.Context) error {
		return c.RecvFunc(ctx, func(*rec) {})
	}), withCtx...)
	if n := c.Len(); n < 0 || n > c.Cap() {
		t.Errorf("Len() = %d, outside [0, %d]", n, c.Cap())
	}
	c.Stats()
}

// sendMethods calls every sending method once, each under a deadline.
func sendMethods(t *testing.T, c *Chan[rec], allowed ...error) {
	t.Helper()
	d := 200 * time.Millisecond
	withCtx := append([]error{context.DeadlineExceeded}, allowed...)
	allow(t, "TrySend", bounded(t, "TrySend", d, func(context.Context) error { return c.TrySend(mkrec(1)) }), allowed...)
	allow(t, "Send", bounded(t, "Send", d, func(ctx context.Context) error { return c.Send(ctx, mkrec(2)) }), withCtx...)
	allow(t, "SendBatch", bounded(t, "SendBatch", d, func(ctx context.Context) error {
		_, err := c.SendBatch(ctx, []rec{mkrec(3), mkrec(4)})
		return err
	}), withCtx...)
	allow(t, "SendFunc", bounded(t, "SendFunc", d, func(ctx context.Context) error {
		return c.SendFunc(ctx, func(v *rec) { *v = mkrec(5) })
	}), withCtx...)
}

// TestHostileSPSC: a peer rewrites the indices and lengths of a live SPSC
// region.
func TestHostileSPSC(t *testing.T) {
	t.Run("tail beyond head+capacity", func(t *testing.T) {
		for _, tail := range []uint64{9, 1000, 1 << 62, math.MaxUint64 &^ layout.ClosedBit, math.MaxUint64} {
			c, p := hostileChan(t, WithCapacity(8))
			if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
				t.Fatal(err)
			}
			p.set64(layout.OffTail, tail)
			recvMethods(t, c, ErrCorrupt)
		}
	})
	t.Run("tail beyond head+capacity at takeover", func(t *testing.T) {
		c, p := hostileChan(t, WithCapacity(8))
		p.set64(layout.OffTail, 100)
		recvMethods(t, c, ErrCorrupt)
		sendMethods(t, c, ErrCorrupt)
	})
	t.Run("head beyond tail", func(t *testing.T) {
		for _, head := range []uint64{12, 50, 1 << 40, math.MaxUint64} {
			c, p := hostileChan(t, WithCapacity(8))
			for i := 0; i < 3; i++ {
				if err := c.TrySend(mkrec(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			p.set64(layout.OffHead, head)
			headPastTail(t, c, head)
			sendMethods(t, c, ErrCorrupt)
		}
	})
	t.Run("head beyond tail at takeover", func(t *testing.T) {
		c, p := hostileChan(t, WithCapacity(8))
		p.set64(layout.OffHead, 5)
		sendMethods(t, c, ErrCorrupt)
		recvMethods(t, c, ErrCorrupt)
	})
	t.Run("tail going backwards", func(t *testing.T) {
		for _, tail := range []uint64{0, 1, 2} {
			c, p := hostileChan(t, WithCapacity(8))
			for i := 0; i < 4; i++ {
				if err := c.TrySend(mkrec(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := c.TryRecv(); err != nil || v != mkrec(0) {
				t.Fatalf("%v %v", v, err)
			}
			p.set64(layout.OffTail, tail)
			// Values the receiver already saw published may still come out,
			// whole; then the lie is seen.
			var err error
			for i := uint64(1); i < 6; i++ {
				var v rec
				err = bounded(t, "TryRecv", time.Second, func(context.Context) error {
					var err error
					v, err = c.TryRecv()
					return err
				})
				if err != nil {
					break
				}
				if v != mkrec(i) {
					t.Fatalf("after the tail went back to %d: got %+v, want value %d", tail, v, i)
				}
			}
			allow(t, fmt.Sprintf("TryRecv after the tail went back to %d", tail), err, ErrCorrupt)
			recvMethods(t, c, ErrCorrupt)
		}
	})
	t.Run("head going backwards", func(t *testing.T) {
		// Stale, not impossible from where the sender stands: it may fill
		// at most what it believes free, then reports full or corrupt.
		c, p := hostileChan(t, WithCapacity(8))
		for i := 0; i < 8; i++ {
			c.TrySend(mkrec(uint64(i)))
		}
		for i := 0; i < 6; i++ {
			c.TryRecv()
		}
		p.set64(layout.OffHead, 1)
		sent := 0
		for i := 0; i < 20; i++ {
			err := bounded(t, "TrySend", time.Second, func(context.Context) error { return c.TrySend(mkrec(9)) })
			if err != nil {
				allow(t, "TrySend with the head moved back", err, ErrFull, ErrCorrupt)
				break
			}
			sent++
		}
		if sent > 6 {
			t.Errorf("%d sends into a ring with 6 free slots", sent)
		}
	})
	t.Run("slot length", func(t *testing.T) {
		for _, n := range []uint32{17, 24, 1 << 20, layout.SlotSkip, math.MaxUint32, 0, 1, 15} {
			c, p := hostileChan(t, WithCapacity(8))
			for i := 0; i < 2; i++ {
				if err := c.TrySend(mkrec(uint64(i))); err != nil {
					t.Fatal(err)
				}
			}
			p.set32(p.slot(0)+layout.SlotLen, n)
			err := bounded(t, "TryRecv", time.Second, func(context.Context) error { _, err := c.TryRecv(); return err })
			allow(t, fmt.Sprintf("slot length %d for a 16-byte value", n), err, ErrCorrupt)
			// A length that fits the slot is a bad value, consumed; one that
			// does not is a bad slot the channel stays stuck on. Either way
			// nothing but ErrCorrupt or the next good value comes out.
			var v rec
			err = bounded(t, "TryRecv", time.Second, func(context.Context) error {
				var err error
				v, err = c.TryRecv()
				return err
			})
			if err == nil && v != mkrec(1) {
				t.Errorf("slot length %d: then got %+v", n, v)
			}
			allow(t, "the next TryRecv", err, errNone, ErrCorrupt)
		}
	})
	t.Run("slot length, each receiving method", func(t *testing.T) {
		c, p := hostileChan(t, WithCapacity(8))
		if err := c.TrySend(mkrec(0)); err != nil {
			t.Fatal(err)
		}
		p.set32(p.slot(0)+layout.SlotLen, 1000)
		recvMethods(t, c, ErrCorrupt)
	})
	t.Run("bytes slot length", func(t *testing.T) {
		name := testName(t)
		c, err := Create[[]byte](name, WithCapacity(4), WithMaxMessageSize(100))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOK(t, c)
		p := hostilePeer(t, name)
		c.TrySend([]byte("hello"))
		c.TrySend([]byte("world"))
		p.set32(p.slot(0)+layout.SlotLen, 100) // fits: 100 bytes of whatever the slot holds
		p.set32(p.slot(1)+layout.SlotLen, 105) // the payload has room for 104 (8-byte rounding): still too long
		v, err := c.TryRecv()
		if err != nil || len(v) != 100 || string(v[:5]) != "hello" {
			t.Fatalf("a 100-byte length: %q %v", v, err)
		}
		_, err = c.TryRecv()
		allow(t, "a 105-byte length with a 100-byte maximum", err, ErrCorrupt)
	})
	t.Run("garbage wait words", func(t *testing.T) {
		// Wake-up words full of garbage cost wake-ups, not correctness.
		c, p := hostileChan(t, WithCapacity(2))
		p.set32(layout.OffRecvWaiting, math.MaxUint32)
		p.set32(layout.OffSendWaiters, math.MaxUint32)
		p.set32(layout.OffRecvSeq, 0xdeadbeef)
		p.set32(layout.OffSendSeq, 0xfeedface)
		p.set64(layout.OffRecvSleeps, math.MaxUint64)
		p.set64(layout.OffSendSleeps, math.MaxUint64)
		p.set64(layout.OffSenderWakes, math.MaxUint64)
		p.set64(layout.OffReceiverWakes, math.MaxUint64)
		for i := 1; i <= 2; i++ { // role entries: sleeping flags, pids, claims
			off := layout.RoleOffset(i - 1)
			for j := 0; j < layout.LineSize; j += 8 {
				p.set64(off+j, 0xa5a5a5a5a5a5a5a5)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		go func() {
			for i := uint64(0); i < 1000; i++ {
				if err := c.Send(ctx, mkrec(i)); err != nil {
					t.Errorf("Send %d: %v", i, err)
					return
				}
				if i%100 == 0 { // let the receiver sleep
					time.Sleep(time.Millisecond)
				}
			}
		}()
		for i := uint64(0); i < 1000; i++ {
			v, err := c.Recv(ctx)
			if err != nil || v != mkrec(i) {
				t.Fatalf("value %d: %+v %v", i, v, err)
			}
		}
		err := bounded(t, "Recv on an empty channel", 50*time.Millisecond, func(ctx context.Context) error {
			_, err := c.Recv(ctx)
			return err
		})
		allow(t, "Recv on an empty channel", err, context.DeadlineExceeded)
	})
}

// TestHostileMPSC: a peer rewrites a live MPSC region: slot sequence
// numbers, lengths, the claim table, the indices.
func TestHostileMPSC(t *testing.T) {
	mpsc := func(t *testing.T) (*Chan[rec], *peer) {
		c, p := hostileChan(t, WithCapacity(8), WithMultiProducer(), WithProducers(4), withStuckCheck(time.Millisecond))
		if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
			t.Fatal(err)
		}
		return c, p
	}
	// drainAfter receives until a value arrives that it sent through the
	// channel after the damage, and checks nothing else came out.
	sendAndFind := func(t *testing.T, c *Chan[rec]) {
		t.Helper()
		if err := c.TrySend(mkrec(77)); err != nil {
			t.Fatalf("TrySend after the damage: %v", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			v, err := c.TryRecv()
			if errors.Is(err, ErrEmpty) {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				allow(t, "TryRecv", err, ErrCorrupt)
				return
			}
			if v != mkrec(77) {
				t.Fatalf("a value nobody sent came out: %+v", v)
			}
			return
		}
		t.Fatal("the value sent after the damage never arrived")
	}
	t.Run("garbage sequence numbers", func(t *testing.T) {
		c, p := mpsc(t)
		// Two positions claimed by nobody, their slots full of garbage.
		p.set64(layout.OffTail, 2)
		for pos := uint64(0); pos < 2; pos++ {
			p.set32(p.slot(pos)+layout.SlotSeq, 0xdeadbeef+uint32(pos))
			p.set32(p.slot(pos)+layout.SlotLen, 0xffffffff)
		}
		recvMethods(t, c, ErrEmpty, ErrCorrupt)
		sendAndFind(t, c)
		if a := c.Stats().Abandoned; a != 2 {
			t.Errorf("abandoned %d slots, want the 2 garbage ones", a)
		}
	})
	t.Run("sequence from another lap", func(t *testing.T) {
		c, p := mpsc(t)
		p.set64(layout.OffTail, 1)
		p.set32(p.slot(0)+layout.SlotSeq, 1+8) // what position 8 would write
		p.set32(p.slot(0)+layout.SlotLen, 16)
		recvMethods(t, c, ErrEmpty, ErrCorrupt)
		sendAndFind(t, c)
	})
	t.Run("committed with a bad length", func(t *testing.T) {
		for _, n := range []uint32{17, 1 << 20, math.MaxUint32, layout.SlotSkip + 1, 3} {
			c, p := mpsc(t)
			p.set64(layout.OffTail, 1)
			p.set32(p.slot(0)+layout.SlotLen, n)
			p.set32(p.slot(0)+layout.SlotSeq, 1)
			err := bounded(t, "TryRecv", time.Second, func(context.Context) error { _, err := c.TryRecv(); return err })
			allow(t, fmt.Sprintf("a committed slot of length %d", n), err, ErrCorrupt)
		}
	})
	t.Run("committed skip marker", func(t *testing.T) {
		c, p := mpsc(t)
		p.set64(layout.OffTail, 1)
		p.set32(p.slot(0)+layout.SlotLen, layout.SlotSkip)
		p.set32(p.slot(0)+layout.SlotSeq, 1)
		err := bounded(t, "TryRecv", time.Second, func(context.Context) error { _, err := c.TryRecv(); return err })
		allow(t, "a committed skip marker", err, ErrEmpty)
		sendAndFind(t, c)
	})
	t.Run("claim table full of garbage", func(t *testing.T) {
		c, p := mpsc(t)
		p.set64(layout.OffTail, 3)
		for pos := uint64(0); pos < 3; pos++ {
			p.set32(p.slot(pos)+layout.SlotSeq, 0x5a5a5a5a)
		}
		// Every sender entry claims everything, says it sleeps, has sent
		// absurd amounts. Nobody holds their role locks: they are dead.
		for i := 1; i <= int(p.h.Producers); i++ {
			off := layout.RoleOffset(i)
			p.set32(off+layout.RolePID, math.MaxUint32)
			p.set32(off+layout.RoleFlags, math.MaxUint32)
			p.set64(off+layout.RoleClaimLo, 0)
			p.set64(off+layout.RoleClaimHi, math.MaxUint64)
			p.set64(off+layout.RoleSent, math.MaxUint64)
			p.set64(off+layout.RoleTakeovers, math.MaxUint64)
		}
		p.set32(layout.OffSendWaiters, math.MaxUint32)
		recvMethods(t, c, ErrEmpty, ErrCorrupt)
		sendAndFind(t, c)
	})
	t.Run("claim lo above hi", func(t *testing.T) {
		c, p := mpsc(t)
		p.set64(layout.OffTail, 1)
		off := layout.RoleOffset(1)
		p.set64(off+layout.RoleClaimLo, math.MaxUint64)
		p.set64(off+layout.RoleClaimHi, 0)
		recvMethods(t, c, ErrEmpty, ErrCorrupt)
		sendAndFind(t, c)
	})
	t.Run("live writer with a garbage claim", func(t *testing.T) {
		// A live peer that claims everything stalls the receiver (a live
		// writer is waited for), but only until the context ends; once it
		// dies its garbage is skipped.
		c, p := mpsc(t)
		h := spawn(t, "hostile-hold", c.Name())
		h.Expect("holding")
		if v, err := c.TryRecv(); err != nil || v != mkrec(0) {
			t.Fatalf("the holder's value: %+v %v", v, err)
		}
		var entry int
		for i := 1; i <= int(p.h.Producers); i++ {
			if p.get64(layout.RoleOffset(i)+layout.RoleSent) == 1 {
				entry = i
			}
		}
		if entry == 0 {
			t.Fatal("cannot find the holder's role entry")
		}
		p.set64(layout.RoleOffset(entry)+layout.RoleClaimLo, 0)
		p.set64(layout.RoleOffset(entry)+layout.RoleClaimHi, math.MaxUint64)
		p.set64(layout.OffTail, 2)
		p.set32(p.slot(1)+layout.SlotSeq, 0)
		err := bounded(t, "Recv", 100*time.Millisecond, func(ctx context.Context) error { _, err := c.Recv(ctx); return err })
		allow(t, "Recv behind a live writer's garbage claim", err, context.DeadlineExceeded)
		if a := c.Stats().Abandoned; a != 0 {
			t.Fatalf("a live writer's slot was abandoned (stats %+v)", c.Stats())
		}
		h.Kill()
		sendAndFind(t, c)
		if a := c.Stats().Abandoned; a != 1 {
			t.Errorf("abandoned %d, want 1", a)
		}
	})
	t.Run("tail beyond head+capacity", func(t *testing.T) {
		for _, tail := range []uint64{9, 1 << 40, math.MaxUint64 &^ layout.ClosedBit} {
			c, p := mpsc(t)
			p.set64(layout.OffTail, tail)
			recvMethods(t, c, ErrCorrupt)
			sendMethods(t, c, ErrCorrupt)
		}
	})
	t.Run("head beyond tail at takeover", func(t *testing.T) {
		for _, head := range []uint64{1, 1 << 40, math.MaxUint64} {
			c, p := mpsc(t)
			p.set64(layout.OffHead, head)
			sendMethods(t, c, ErrCorrupt)
		}
	})
	t.Run("head beyond tail", func(t *testing.T) {
		for _, head := range []uint64{12, 1 << 40, math.MaxUint64} {
			c, p := mpsc(t)
			if err := c.TrySend(mkrec(0)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.TryRecv(); err != nil {
				t.Fatal(err)
			}
			p.set64(layout.OffHead, head)
			headPastTail(t, c, head)
			sendMethods(t, c, ErrCorrupt)
		}
	})
}

// TestHostileGarbageRegion: a region whose header is valid but whose every
// other byte is garbage, as a peer could leave it. Open may refuse it; if it
// opens, every call returns a contract error, promptly.
func TestHostileGarbageRegion(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		for _, mpsc := range []bool{false, true} {
			opts := []Option{WithCapacity(16), withStuckCheck(time.Millisecond)}
			if mpsc {
				opts = append(opts, WithMultiProducer(), WithProducers(3))
			}
			img := regionImage[rec](t, opts...)
			x := seed*0x9E3779B97F4A7C15 + 1
			for i := layout.OffReady + 4; i < len(img); i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				img[i] = byte(x)
				if seed%2 == 1 { // every word small: plausible lengths and sequences
					if i%4 == 0 {
						img[i] &= 0x1f
					} else {
						img[i] = 0
					}
				}
			}
			if seed%2 == 1 {
				// Indices that pass the checks at takeover, so the garbage in
				// the slots and the claim table is reached.
				head := x % 1000
				tail := head + x>>20%17
				if seed%4 == 3 {
					tail |= layout.ClosedBit
				}
				binary.LittleEndian.PutUint64(img[layout.OffHead:], head)
				binary.LittleEndian.PutUint64(img[layout.OffTail:], tail)
			}
			name := plantRegion(t, img)
			c, err := Open[rec](name, withStuckCheck(time.Millisecond))
			if err != nil {
				t.Logf("seed %d, mpsc %v: %v", seed, mpsc, err)
				allow(t, "Open", err, ErrCorrupt)
				continue
			}
			all := []error{errNone, ErrCorrupt, ErrEmpty, ErrFull, ErrClosed}
			var got [2]map[string]int
			count := func(i int, err error) {
				if got[i] == nil {
					got[i] = map[string]int{}
				}
				k := "ok"
				for _, e := range all[1:] {
					if errors.Is(err, e) {
						k = e.Error()
					}
				}
				got[i][k]++
			}
			for i := 0; i < 50; i++ {
				err := bounded(t, "TryRecv", time.Second, func(context.Context) error { _, err := c.TryRecv(); return err })
				allow(t, "TryRecv", err, all...)
				count(0, err)
				err = bounded(t, "TrySend", time.Second, func(context.Context) error { return c.TrySend(mkrec(1)) })
				allow(t, "TrySend", err, all...)
				count(1, err)
			}
			t.Logf("seed %d, mpsc %v: receives %v, sends %v", seed, mpsc, got[0], got[1])
			recvMethods(t, c, all...)
			sendMethods(t, c, all...)
			allow(t, "Close", c.Close(), errNone, ErrCorrupt)
		}
	}
}

// TestHostileTruncate: a peer shrinks the file after we mapped it. Every
// call then returns ErrCorrupt (Len and Stats report whatever they can)
// instead of dying of SIGBUS.
func TestHostileTruncate(t *testing.T) {
	skipUnderRace(t)
	for _, cut := range []string{"zero", "header", "half"} {
		t.Run(cut, func(t *testing.T) {
			name := testName(t)
			c, err := Create[rec](name, WithCapacity(1024)) // 7 pages
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(0); i < 10; i++ {
				if err := c.TrySend(mkrec(i)); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint64(0); i < 2; i++ {
				if v, err := c.TryRecv(); err != nil || v != mkrec(i) {
					t.Fatal(v, err)
				}
			}
			size := map[string]int64{"zero": 0, "header": 300, "half": int64(c.hdr.TotalSize / 2)}[cut]
			if err := os.Truncate(shmPath(name), size); err != nil {
				t.Fatal(err)
			}
			switch cut {
			case "zero":
				recvMethods(t, c, ErrCorrupt)
				sendMethods(t, c, ErrCorrupt)
				allow(t, "CloseSend", c.CloseSend(), ErrCorrupt)
			case "header":
				// The first page stays mapped; the bytes past the end read as
				// zeros: the tail went back.
				recvMethods(t, c, ErrCorrupt)
				sendMethods(t, c, errNone, ErrCorrupt)
			case "half":
				// The values in the pages that remain are whole; the sender
				// runs into the missing pages long before the ring is full.
				trapped := c.hit != nil
				for i := uint64(2); i < 10; i++ {
					v, err := c.TryRecv()
					if err != nil || v != mkrec(i) {
						t.Fatalf("value %d from a page that remains: %+v %v", i, v, err)
					}
				}
				sent := 0
				for ; sent < 2000; sent++ {
					err := bounded(t, "TrySend", time.Second, func(context.Context) error { return c.TrySend(mkrec(9)) })
					if err != nil {
						allow(t, "TrySend into the missing pages", err, ErrCorrupt)
						break
					}
				}
				if sent >= c.Cap()-10 {
					t.Fatalf("%d sends after the file lost half its pages", sent)
				}
				if trapped {
					// The trap answered the sender's fault with zero pages: from
					// then on the mapping shows pages no peer sees, and every call
					// on it fails (internal/region/guard.go).
					recvMethods(t, c, ErrCorrupt)
					sendMethods(t, c, ErrCorrupt)
					break
				}
				// Under the guard alone, the receiver gets what was committed,
				// then finds nothing: the slot the sender faulted on was never
				// published.
				for i := 0; i < 2000; i++ {
					err := bounded(t, "TryRecv", time.Second, func(context.Context) error { _, err := c.TryRecv(); return err })
					if err != nil {
						allow(t, "TryRecv after the last committed value", err, ErrEmpty)
						break
					}
				}
				recvMethods(t, c, ErrEmpty)
				sendMethods(t, c, ErrCorrupt)
			}
			c.Len()
			c.Stats()
			allow(t, "Close", c.Close(), errNone, ErrCorrupt)
			allow(t, "TryRecv after Close", func() error { _, err := c.TryRecv(); return err }(), ErrClosed)
			// Another opener sees a file shorter than its header claims.
			if _, err := Open[rec](name); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open of the truncated region: %v, want ErrCorrupt", err)
			}
		})
	}
}

func init() {
	// hostile-hold name: send one value (taking a sender role) and keep the
	// role until killed. (It sleeps rather than blocking in select{}: with
	// nothing else to run, the runtime would call that a deadlock and exit,
	// dropping the role.)
	extraHelpers["hostile-hold"] = func(args []string) int {
		c, err := Open[rec](args[0])
		if err == nil {
			err = c.TrySend(mkrec(0))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostile-hold:", err)
			return 1
		}
		say("holding")
		for {
			time.Sleep(time.Hour)
		}
	}
	// hostile-truncate path size: shrink the file and exit.
	extraHelpers["hostile-truncate"] = func(args []string) int {
		size, err := strconv.ParseInt(args[1], 10, 64)
		if err == nil {
			err = os.Truncate(args[0], size)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostile-truncate:", err)
			return 1
		}
		return 0
	}
}

// TestHostileTruncateWhileBlocked: another process truncates the region
// while this one is blocked in Recv or Send, in each wait mode. The blocked
// call must return by its deadline (with ErrCorrupt or the context's
// error), not sleep forever on a futex word that is gone; and Close must
// be able to end a call blocked without a deadline.
func TestHostileTruncateWhileBlocked(t *testing.T) {
	skipUnderRace(t)
	for _, wait := range crossWaits {
		for _, side := range []string{"recv", "send", "close"} {
			t.Run(wait+"/"+side, func(t *testing.T) {
				name := testName(t)
				c, err := Create[rec](name, waitOpt(wait), WithCapacity(4))
				if err != nil {
					t.Fatal(err)
				}
				size := int64(c.hdr.TotalSize)
				if side == "send" {
					for i := 0; i < c.Cap(); i++ {
						if err := c.TrySend(mkrec(uint64(i))); err != nil {
							t.Fatal(err)
						}
					}
				} else if _, err := c.TryRecv(); !errors.Is(err, ErrEmpty) {
					t.Fatal(err)
				}
				const deadline = time.Second
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				if side == "close" {
					ctx = context.Background() // only Close can end it
				}
				done := make(chan error, 1)
				go func() {
					if side == "send" {
						done <- c.Send(ctx, mkrec(99))
					} else {
						_, err := c.Recv(ctx)
						done <- err
					}
				}()
				if wait == "spin" {
					time.Sleep(20 * time.Millisecond)
				} else {
					waitFor(t, func() bool {
						st := c.Stats()
						if side == "send" {
							return st.SendWaiters != 0
						}
						return st.RecvWaiting != 0
					}, "the call to sleep")
				}
				if err := spawn(t, "hostile-truncate", shmPath(name), 0).Wait(); err != nil {
					t.Fatalf("helper: %v", err)
				}
				closed := make(chan error, 1)
				if side == "close" {
					go func() { closed <- c.Close() }()
				}
				select {
				case err := <-done:
					if side == "close" {
						allow(t, "Recv ended by Close on a truncated region", err, ErrCorrupt, ErrClosed)
					} else {
						allow(t, side+" blocked while the region was truncated", err, ErrCorrupt, context.DeadlineExceeded)
						allow(t, "TryRecv afterwards", func() error { _, err := c.TryRecv(); return err }(), ErrCorrupt)
					}
				case <-time.After(deadline + 4*time.Second):
					if side == "close" {
						t.Errorf("Close did not end a Recv asleep on a truncated region within 5s")
					} else {
						t.Errorf("%s asleep on a truncated region did not return 4s after its deadline", side)
					}
					rescueSleeper(t, name, size, side, done)
				}
				if side == "close" {
					select {
					case err := <-closed:
						allow(t, "Close", err, errNone, ErrCorrupt)
					case <-time.After(10 * time.Second):
						t.Fatal("Close hung")
					}
				} else {
					allow(t, "Close", c.Close(), errNone, ErrCorrupt)
				}
			})
		}
	}
}

// rescueSleeper wakes a call asleep on the futex of a truncated region, so
// that a failed test can still close its handle: it gives the file its
// size back and wakes the futex word at the same offset.
func rescueSleeper(t *testing.T, name string, size int64, side string, done chan error) {
	if err := os.Truncate(shmPath(name), size); err != nil {
		t.Fatalf("rescue: %v", err)
	}
	p := &peer{}
	f, err := os.OpenFile(shmPath(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.mem, err = unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(p.mem)
	off := layout.OffRecvSeq
	if side == "send" {
		off = layout.OffSendSeq
	}
	for i := 0; i < 100; i++ {
		atomic.AddUint32(p.word32(off), 1)
		futex.Wake(p.word32(off), futex.All)
		select {
		case err := <-done:
			t.Logf("woken by the rescue: %v", err)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("the sleeper could not be woken even after the file got its size back")
}

// nsSkip is the exit code of a namespace helper that could not set up its
// namespace: the test skips, with the helper's reason.
const nsSkip = 3

// nsRun runs a helper in a mount namespace of its own and returns what it
// printed and its exit code.
func nsRun(t *testing.T, mode string, args ...string) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperArgs+"="+strings.Join(args, " "))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.ExitCode() == nsSkip {
			t.Skipf("%s", strings.TrimSpace(string(out)))
		}
		return string(out), ee.ExitCode()
	case err != nil:
		t.Skipf("cannot start a helper in its own mount namespace (unshare CLONE_NEWNS): %v", err)
	}
	return string(out), 0
}

// nsPrivate makes the helper's mount tree private, so that what it mounts
// stays in its namespace.
func nsPrivate() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private in the new mount namespace: %w", err)
	}
	return nil
}

func init() {
	// hostile-fulltmpfs name: mount a 1 MiB tmpfs over /dev/shm (in this
	// helper's own mount namespace), then create regions too big for it
	// and one that fits.
	extraHelpers["hostile-fulltmpfs"] = func(args []string) int {
		if err := nsPrivate(); err != nil {
			fmt.Println("skip:", err)
			return nsSkip
		}
		if err := unix.Mount("tmpfs", shm.Dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=1777"); err != nil {
			fmt.Printf("skip: mount a 1 MiB tmpfs on %s: %v\n", shm.Dir, err)
			return nsSkip
		}
		name := args[0]
		fail := 0
		left := func() []string {
			ents, _ := os.ReadDir(shm.Dir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			return names
		}
		for _, sz := range []struct{ cap, msg int }{{1024, 4096}, {256, 4096}, {1 << 20, 8}} {
			c, err := Create[[]byte](name, WithCapacity(sz.cap), WithMaxMessageSize(sz.msg))
			if err == nil {
				c.Close()
				fmt.Printf("FAIL: %d slots of %d bytes fit a 1 MiB tmpfs\n", sz.cap, sz.msg)
				fail = 1
				Unlink(name)
				continue
			}
			if !errors.Is(err, shm.ErrNoSpace) || !strings.Contains(err.Error(), "no space") {
				fmt.Printf("FAIL: %d slots of %d bytes: %v, want shm.ErrNoSpace and \"no space\"\n", sz.cap, sz.msg, err)
				fail = 1
			}
			if l := left(); len(l) > 0 {
				fmt.Printf("FAIL: the failed Create left %v\n", l)
				fail = 1
			}
			fmt.Printf("too big: %v\n", err)
		}
		c, err := Create[[]byte](name, WithCapacity(64), WithMaxMessageSize(1000))
		if err != nil {
			fmt.Printf("FAIL: a 64 KiB region on a 1 MiB tmpfs: %v\n", err)
			return 1
		}
		if err := c.TrySend([]byte("fits")); err != nil {
			fmt.Println("FAIL: TrySend:", err)
			fail = 1
		}
		if v, err := c.TryRecv(); err != nil || string(v) != "fits" {
			fmt.Printf("FAIL: TryRecv: %q %v\n", v, err)
			fail = 1
		}
		c.Close()
		if err := Unlink(name); err != nil {
			fmt.Println("FAIL: Unlink:", err)
			fail = 1
		}
		return fail
	}
}

// TestHostileFullTmpfs: a full /dev/shm is an error at Create (the pages
// are reserved up front), not a SIGBUS later, and leaves no file behind.
func TestHostileFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
	}
	out, code := nsRun(t, "hostile-fulltmpfs", testName(t))
	t.Logf("helper:\n%s", out)
	if code != 0 {
		t.Fatalf("helper exited %d", code)
	}
}

// skipUnderRace skips a truncation test in a race-detector build. There,
// sync/atomic operations run inside the detector's C runtime, and a memory
// fault in C code cannot be turned into a Go panic (SetPanicOnFault): the
// process dies with "traceback did not unwind completely". The same tests
// run, and must pass, in the normal build (go test ./...), which is what
// users run.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled && !trapAvailable(t) {
		t.Skip("truncation under the race detector: faults inside its C atomics cannot be recovered; covered by the non-race run")
	}
}

// trapAvailable reports whether this platform's mappings are trapped
// (shm/trap_linux.go): a fault is then answered with zero pages, which works
// inside the race detector's C atomics too.
func trapAvailable(t *testing.T) bool {
	t.Helper()
	c, err := Create[rec](testName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.hit != nil
}

// TestBatchBadLengthMidway: RecvBatch's fixed-size path checks every
// value's stored length, not only the first: a bad one in the middle ends
// the batch there with ErrCorrupt, the values before it delivered and the
// bad one consumed, and the next call goes on after it. The endpoint's
// RecvBatch takes the same path.
func TestBatchBadLengthMidway(t *testing.T) {
	for _, n := range []uint32{0, 15, 17, 1000, layout.SlotSkip} {
		c, p := hostileChan(t, WithCapacity(16))
		vs := make([]rec, 8)
		for i := range vs {
			vs[i] = mkrec(uint64(i))
		}
		if k, err := c.SendBatch(context.Background(), vs); k != 8 || err != nil {
			t.Fatal(k, err)
		}
		p.set32(p.slot(3)+layout.SlotLen, n)
		got := make([]rec, 8)
		k, err := c.RecvBatch(context.Background(), got)
		if k != 3 || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("length %d in slot 3: RecvBatch = %d, %v; want 3, ErrCorrupt", n, k, err)
		}
		for i := 0; i < 3; i++ {
			if got[i] != mkrec(uint64(i)) {
				t.Fatalf("length %d: value %d is %+v", n, i, got[i])
			}
		}
		rx, err := c.Receiver()
		if err != nil {
			t.Fatal(err)
		}
		k, err = rx.RecvBatch(context.Background(), got)
		rx.Release()
		if k != 4 || err != nil || got[0] != mkrec(4) || got[3] != mkrec(7) {
			t.Fatalf("length %d: the batch after the bad value = %d, %v, %+v", n, k, err, got[:k])
		}
	}
}
