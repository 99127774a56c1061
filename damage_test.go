package shmchan

// Damaged regions: whatever bytes sit at the name, Open returns ErrCorrupt
// or ErrIncompatible, promptly, and never panics or hangs. The damaged
// region is made as a creator would make it: the bytes written to
// /dev/shm/<name> with mode 0600, the ready word set where Open is meant to
// get past its wait for the creator.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/shmchan/shmchan/layout"
)

// errOpened is what openVerdict reports when Open accepted the region.
var errOpened = errors.New("Open succeeded")

// regionImage creates a region of T with opts, and returns its bytes (the
// region is removed again).
func regionImage[T any](t *testing.T, opts ...Option) []byte {
	t.Helper()
	name := testName(t)
	c, err := Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	closeOK(t, c)
	b, err := os.ReadFile(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	return b
}

// plantRegion writes b as a new region and returns its name.
func plantRegion(t *testing.T, b []byte) string {
	t.Helper()
	name := testName(t)
	if err := os.WriteFile(shmPath(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// setReady stores the ready word, if b is long enough to hold it.
func setReady(b []byte) []byte {
	if len(b) >= layout.OffReady+4 {
		binary.LittleEndian.PutUint32(b[layout.OffReady:], layout.ReadyValue)
	}
	return b
}

// openVerdict opens the region called name as a Chan[T] and returns Open's
// error, errOpened if it succeeded (the handle is closed again). A panic
// or an Open that does not return within a generous bound fails the test.
func openVerdict[T any](t *testing.T, name string, opts ...Option) error {
	t.Helper()
	type result struct {
		err   error
		panic any
		stack []byte
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p, stack: debug.Stack()}
			}
		}()
		c, err := Open[T](name, opts...)
		if err == nil {
			err = errOpened
			if cerr := c.Close(); cerr != nil {
				err = fmt.Errorf("%w, then Close: %v", errOpened, cerr)
			}
		}
		done <- result{err: err}
	}()
	start := time.Now()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Fatalf("Open panicked: %v\n%s", r.panic, r.stack)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Open took %v: longer than its bounded wait for the creator", d)
		}
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Open hung for 30s")
	}
	return nil
}

// wantDamaged checks that err is one of want and not a success.
func wantDamaged(t *testing.T, what string, err error, want ...error) {
	t.Helper()
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	t.Errorf("%s: Open returned %v, want one of %v", what, err, want)
}

// TestDamagedRandom: files of random bytes, of many sizes, with and without
// a valid magic and version in front, with the ready word set so that Open
// gets past its wait and looks at the bytes.
func TestDamagedRandom(t *testing.T) {
	sizes := []int{260, 261, 300, 511, 576, 1000, 2240, 4095, 4096, 4097, 65536, 1<<20 + 3}
	for _, size := range sizes {
		for seed := uint64(1); seed <= 3; seed++ {
			for _, prefix := range []string{"random", "magic", "magic+version", "resealed"} {
				rng := rand.New(rand.NewPCG(seed, uint64(size)))
				b := make([]byte, size)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				if prefix != "random" {
					copy(b[layout.OffMagic:], layout.Magic)
				}
				if prefix == "magic+version" || prefix == "resealed" {
					binary.LittleEndian.PutUint32(b[layout.OffVersion:], layout.Version)
				}
				if prefix == "resealed" {
					binary.LittleEndian.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
				}
				setReady(b)
				name := plantRegion(t, b)
				err := openVerdict[rec](t, name)
				what := fmt.Sprintf("%d random bytes (seed %d, %s)", size, seed, prefix)
				if prefix == "magic" {
					// A random version: checked before the checksum.
					wantDamaged(t, what, err, ErrIncompatible)
				} else {
					wantDamaged(t, what, err, ErrCorrupt)
				}
			}
		}
	}
}

// TestDamagedShort: files too short to hold the ready word or the header.
// Open waits its bounded time for a creator, then reports ErrCorrupt.
// Each case costs that wait (about a second), so they run in parallel.
func TestDamagedShort(t *testing.T) {
	valid := regionImage[rec](t, WithCapacity(64))
	for _, size := range []int{0, 1, 100, 255, 256, 257, 258, 259} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			name := plantRegion(t, valid[:size])
			wantDamaged(t, fmt.Sprintf("a %d-byte prefix of a valid region", size), openVerdict[rec](t, name), ErrCorrupt)
		})
	}
}

// TestDamagedZeros: all-zero files, with and without the ready word.
func TestDamagedZeros(t *testing.T) {
	for _, tc := range []struct {
		size  int
		ready bool
	}{{4096, false}, {260, true}, {4096, true}, {2240, true}, {1 << 20, true}} {
		t.Run(fmt.Sprintf("%d/ready=%v", tc.size, tc.ready), func(t *testing.T) {
			t.Parallel()
			b := make([]byte, tc.size)
			if tc.ready {
				setReady(b)
			}
			name := plantRegion(t, b)
			wantDamaged(t, fmt.Sprintf("%d zero bytes", tc.size), openVerdict[rec](t, name), ErrCorrupt)
		})
	}
}

// TestDamagedTruncated: a valid region cut short, anywhere past the ready
// word, is shorter than its header claims: ErrCorrupt. A longer file is
// fine.
func TestDamagedTruncated(t *testing.T) {
	valid := regionImage[rec](t, WithCapacity(64))
	h, err := layout.Validate(valid, int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(valid)) != h.TotalSize {
		t.Fatalf("file of %d bytes, header says %d", len(valid), h.TotalSize)
	}
	for _, size := range []int{
		len(valid) - 1, len(valid) - 8, len(valid) - int(h.SlotSize), int(h.DataOffset) + 1, int(h.DataOffset),
		layout.OffRoles, layout.OffTail, layout.OffReady + 4,
	} {
		name := plantRegion(t, valid[:size])
		wantDamaged(t, fmt.Sprintf("%d of %d bytes", size, len(valid)), openVerdict[rec](t, name), ErrCorrupt)
	}
	// Longer than the header says: the extra bytes are not the region's
	// business.
	longer := append(append([]byte{}, valid...), make([]byte, 5000)...)
	name := plantRegion(t, longer)
	if err := openVerdict[rec](t, name); err != errOpened {
		t.Errorf("a valid region with 5000 extra bytes: %v", err)
	}
	// A file larger than any region is refused before it is mapped.
	name = plantRegion(t, valid)
	if err := os.Truncate(shmPath(name), layout.MaxTotalSize+4096); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, "a sparse file larger than any region", openVerdict[rec](t, name), ErrCorrupt)
}

// TestDamagedHeaderFlip flips each byte of the immutable header of a valid
// region, all its bits and then its lowest bit: a version byte gives
// ErrIncompatible, any other ErrCorrupt (the magic, or the checksum).
func TestDamagedHeaderFlip(t *testing.T) {
	kinds := []struct {
		name string
		img  []byte
		open func(t *testing.T, name string) error
	}{
		{"spsc-raw", regionImage[rec](t, WithCapacity(64)), func(t *testing.T, n string) error { return openVerdict[rec](t, n) }},
		{"mpsc-bytes", regionImage[[]byte](t, WithMultiProducer(), WithProducers(3), WithCapacity(8), WithMaxMessageSize(100)),
			func(t *testing.T, n string) error { return openVerdict[[]byte](t, n) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			// The image itself opens.
			if err := k.open(t, plantRegion(t, k.img)); err != errOpened {
				t.Fatalf("the undamaged image: %v", err)
			}
			for _, mask := range []byte{0xff, 0x01} {
				for off := 0; off < layout.HeaderSize; off++ {
					b := append([]byte{}, k.img...)
					b[off] ^= mask
					err := k.open(t, plantRegion(t, b))
					what := fmt.Sprintf("byte %d of the header XOR %#x", off, mask)
					if off >= layout.OffVersion && off < layout.OffVersion+4 {
						wantDamaged(t, what, err, ErrIncompatible)
					} else {
						wantDamaged(t, what, err, ErrCorrupt)
					}
				}
			}
		})
	}
}

// TestDamagedParams: an otherwise valid header, re-sealed with a correct
// checksum, holding an impossible parameter: ErrCorrupt (another layout
// version: ErrIncompatible).
func TestDamagedParams(t *testing.T) {
	spsc := regionImage[rec](t, WithCapacity(64))
	mpsc := regionImage[rec](t, WithCapacity(64), WithMultiProducer(), WithProducers(4))
	le := binary.LittleEndian
	u32 := func(off int, v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b[off:], v) } }
	u64 := func(off int, v uint64) func([]byte) { return func(b []byte) { le.PutUint64(b[off:], v) } }
	// geometry sets capacity and max message size and the fields derived
	// from them consistently: the header is then valid, but describes a
	// region larger than the file.
	geometry := func(capacity uint64, maxMsg uint32) func([]byte) {
		return func(b []byte) {
			h := layout.Header{Mode: layout.ModeSPSC, Capacity: capacity, MaxMsg: maxMsg, Producers: 1}
			if err := h.Geometry(); err != nil {
				panic(err)
			}
			le.PutUint64(b[layout.OffCapacity:], h.Capacity)
			le.PutUint32(b[layout.OffMaxMsg:], h.MaxMsg)
			le.PutUint32(b[layout.OffSlotSize:], h.SlotSize)
			le.PutUint64(b[layout.OffTotalSize:], h.TotalSize)
		}
	}
	cases := []struct {
		name string
		img  []byte
		edit []func([]byte)
		want error
	}{
		{"capacity 0", spsc, []func([]byte){u64(layout.OffCapacity, 0)}, ErrCorrupt},
		{"capacity 3", spsc, []func([]byte){u64(layout.OffCapacity, 3)}, ErrCorrupt},
		{"capacity 63", spsc, []func([]byte){u64(layout.OffCapacity, 63)}, ErrCorrupt},
		{"capacity 2^31", spsc, []func([]byte){u64(layout.OffCapacity, 1<<31)}, ErrCorrupt},
		{"capacity 2^63", spsc, []func([]byte){u64(layout.OffCapacity, 1<<63)}, ErrCorrupt},
		{"capacity all ones", spsc, []func([]byte){u64(layout.OffCapacity, ^uint64(0))}, ErrCorrupt},
		{"capacity 128, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 128)}, ErrCorrupt},
		{"capacity 32, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 32)}, ErrCorrupt},
		{"capacity 128, consistent", spsc, []func([]byte){geometry(128, 16)}, ErrCorrupt},
		{"2^30 slots of 512 bytes, consistent", spsc, []func([]byte){geometry(1<<30, 512)}, ErrCorrupt},
		{"max message 0", spsc, []func([]byte){u32(layout.OffMaxMsg, 0)}, ErrCorrupt},
		{"max message 0, slot size 8", spsc, []func([]byte){u32(layout.OffMaxMsg, 0), u32(layout.OffSlotSize, 8)}, ErrCorrupt},
		{"max message over the limit", spsc, []func([]byte){u32(layout.OffMaxMsg, layout.MaxMsg+1)}, ErrCorrupt},
		{"max message all ones", spsc, []func([]byte){u32(layout.OffMaxMsg, ^uint32(0))}, ErrCorrupt},
		{"max message 17, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 17)}, ErrCorrupt},
		{"max message 8, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 8)}, ErrCorrupt},
		{"2^30 slots of 2^30 bytes", spsc, []func([]byte){u64(layout.OffCapacity, 1<<30), u32(layout.OffMaxMsg, 1<<30)}, ErrCorrupt},
		{"slot size 8 more", spsc, []func([]byte){u32(layout.OffSlotSize, 32)}, ErrCorrupt},
		{"slot size 0", spsc, []func([]byte){u32(layout.OffSlotSize, 0)}, ErrCorrupt},
		{"data offset 0", spsc, []func([]byte){u32(layout.OffDataOffset, 0)}, ErrCorrupt},
		{"data offset inside the header", spsc, []func([]byte){u32(layout.OffDataOffset, 128)}, ErrCorrupt},
		{"data offset past the end", spsc, []func([]byte){u32(layout.OffDataOffset, 1<<20)}, ErrCorrupt},
		{"total size 1 more", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))+1)}, ErrCorrupt},
		{"total size 1 less", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))-1)}, ErrCorrupt},
		{"total size 0", spsc, []func([]byte){u64(layout.OffTotalSize, 0)}, ErrCorrupt},
		{"total size the header", spsc, []func([]byte){u64(layout.OffTotalSize, layout.HeaderSize)}, ErrCorrupt},
		{"total size 2^63", spsc, []func([]byte){u64(layout.OffTotalSize, 1<<63)}, ErrCorrupt},
		{"SPSC with 0 producers", spsc, []func([]byte){u32(layout.OffProducers, 0)}, ErrCorrupt},
		{"SPSC with 2 producers", spsc, []func([]byte){u32(layout.OffProducers, 2)}, ErrCorrupt},
		{"MPSC with 0 producers", mpsc, []func([]byte){u32(layout.OffProducers, 0)}, ErrCorrupt},
		{"MPSC with 5 producers, sizes unchanged", mpsc, []func([]byte){u32(layout.OffProducers, 5)}, ErrCorrupt},
		{"MPSC with too many producers", mpsc, []func([]byte){u32(layout.OffProducers, layout.MaxProducers+1)}, ErrCorrupt},
		{"MPSC with all-ones producers", mpsc, []func([]byte){u32(layout.OffProducers, ^uint32(0))}, ErrCorrupt},
		{"SPSC turned MPSC with 4 producers", spsc, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC)), u32(layout.OffProducers, 4)}, ErrCorrupt},
		{"mode 2", spsc, []func([]byte){u32(layout.OffMode, 2)}, ErrCorrupt},
		{"mode all ones", spsc, []func([]byte){u32(layout.OffMode, ^uint32(0))}, ErrCorrupt},
		{"wait mode 3", spsc, []func([]byte){u32(layout.OffWait, 3)}, ErrCorrupt},
		{"wait mode all ones", spsc, []func([]byte){u32(layout.OffWait, ^uint32(0))}, ErrCorrupt},
		{"unknown flag", spsc, []func([]byte){u32(layout.OffFlags, 1<<5)}, ErrCorrupt},
		{"all flags", spsc, []func([]byte){u32(layout.OffFlags, ^uint32(0))}, ErrCorrupt},
		{"bad magic", spsc, []func([]byte){func(b []byte) { copy(b, "SHMCHAM\x00") }}, ErrCorrupt},
		{"checksum zero, unsealed", spsc, nil, ErrCorrupt}, // handled below: not re-sealed
		{"version 0", spsc, []func([]byte){u32(layout.OffVersion, 0)}, ErrIncompatible},
		{"version 2", spsc, []func([]byte){u32(layout.OffVersion, layout.Version+1)}, ErrIncompatible},
		{"version all ones", spsc, []func([]byte){u32(layout.OffVersion, ^uint32(0))}, ErrIncompatible},
	}
	for _, tc := range cases {
		b := append([]byte{}, tc.img...)
		for _, e := range tc.edit {
			e(b)
		}
		if tc.edit == nil {
			le.PutUint64(b[layout.OffChecksum:], 0)
		} else {
			le.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
		}
		setReady(b)
		name := plantRegion(t, b)
		wantDamaged(t, tc.name, openVerdict[rec](t, name), tc.want)
		// OpenOrCreate finds the name taken and reports the same.
		c, err := OpenOrCreate[rec](name)
		if err == nil {
			c.Close()
		}
		wantDamaged(t, tc.name+" (OpenOrCreate)", err, tc.want)
	}
}
