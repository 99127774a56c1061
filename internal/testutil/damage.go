package testutil

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shmchan/shmchan/layout"
)

// Verdict is what opening a damaged region must give.
type Verdict int

const (
	Opens        Verdict = iota // it opens: the damage is not the opener's business
	Corrupt                     // ErrCorrupt (SHMCHAN_ECORRUPT)
	Incompatible                // ErrIncompatible (SHMCHAN_EINCOMPATIBLE)
)

// Damaged is a damaged region: the bytes to write to /dev/shm/<name> (mode
// 0600, as a creator makes it) and what opening it must give. The images
// are made the way a creator would: the ready word is set where the
// opener is meant to get past its wait for the creator.
type Damaged struct {
	What  string
	Image []byte
	Want  Verdict
	// Slow: the opener waits its bounded time (about a second) for a
	// creator before it gives up.
	Slow bool
	// HasVersion: the case is about the header's layout version, Version
	// (an opener's error must name it).
	Version    uint32
	HasVersion bool
}

// SetReady stores the ready word, if b is long enough to hold it, and
// returns b.
func SetReady(b []byte) []byte {
	if len(b) >= layout.OffReady+4 {
		binary.LittleEndian.PutUint32(b[layout.OffReady:], layout.ReadyValue)
	}
	return b
}

// DamagedRandom: files of random bytes, of many sizes, with and without a
// valid magic and version in front (and resealed with a right checksum),
// the ready word set so that the opener looks at the bytes. Behind the
// magic, a random version is checked before the checksum: Incompatible.
func DamagedRandom() []Damaged {
	var cs []Damaged
	le := binary.LittleEndian
	for _, size := range []int{260, 261, 300, 511, 576, 1000, 2240, 4095, 4096, 4097, 65536, 1<<20 + 3} {
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
					le.PutUint32(b[layout.OffVersion:], layout.Version)
				}
				if prefix == "resealed" {
					le.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
				}
				want := Corrupt
				if prefix == "magic" {
					want = Incompatible
				}
				cs = append(cs, Damaged{What: fmt.Sprintf("%d random bytes (seed %d, %s)", size, seed, prefix), Image: SetReady(b), Want: want})
			}
		}
	}
	return cs
}

// DamagedShort: prefixes of valid (a valid region's image) too short to
// hold the ready word or the header: the opener waits for the creator,
// then gives up.
func DamagedShort(valid []byte) []Damaged {
	var cs []Damaged
	for _, size := range []int{0, 1, 100, 255, 256, 257, 258, 259} {
		cs = append(cs, Damaged{What: fmt.Sprintf("a %d-byte prefix of a valid region", size), Image: valid[:size], Want: Corrupt, Slow: true})
	}
	return cs
}

// DamagedZeros: all-zero files, without the ready word (slow) and with it.
func DamagedZeros() []Damaged {
	cs := []Damaged{{What: "4096 zero bytes, not ready", Image: make([]byte, 4096), Want: Corrupt, Slow: true}}
	for _, size := range []int{260, 4096, 2240, 1 << 20} {
		cs = append(cs, Damaged{What: fmt.Sprintf("%d zero bytes, ready", size), Image: SetReady(make([]byte, size)), Want: Corrupt})
	}
	return cs
}

// DamagedTruncated: valid (a valid region's image) cut short anywhere past
// the ready word is shorter than its header claims; longer than it claims
// is fine (the extra bytes are not the region's business).
func DamagedTruncated(t testing.TB, valid []byte) []Damaged {
	t.Helper()
	h, err := layout.Validate(valid, int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(valid)) != h.TotalSize {
		t.Fatalf("file of %d bytes, header says %d", len(valid), h.TotalSize)
	}
	var cs []Damaged
	for _, size := range []int{
		len(valid) - 1, len(valid) - 8, len(valid) - int(h.SlotSize), int(h.DataOffset) + 1, int(h.DataOffset),
		layout.OffRoles, layout.OffTail, layout.OffReady + 4,
	} {
		cs = append(cs, Damaged{What: fmt.Sprintf("%d of %d bytes", size, len(valid)), Image: valid[:size], Want: Corrupt})
	}
	return append(cs, Damaged{What: "a valid region with 5000 extra bytes", Image: append(append([]byte{}, valid...), make([]byte, 5000)...), Want: Opens})
}

// DamagedHeaderFlips: img (a valid region's image, called kind) itself,
// which opens, and img with each byte of its immutable header flipped, all
// its bits and then its lowest bit: a version byte gives Incompatible, any
// other Corrupt (the magic, or the checksum).
func DamagedHeaderFlips(kind string, img []byte) []Damaged {
	cs := []Damaged{{What: kind + " undamaged", Image: img, Want: Opens}}
	for _, mask := range []byte{0xff, 0x01} {
		for off := 0; off < layout.HeaderSize; off++ {
			b := append([]byte{}, img...)
			b[off] ^= mask
			want := Corrupt
			if off >= layout.OffVersion && off < layout.OffVersion+4 {
				want = Incompatible
			}
			cs = append(cs, Damaged{What: fmt.Sprintf("%s: header byte %d XOR %#x", kind, off, mask), Image: b, Want: want})
		}
	}
	return cs
}

// ParamImages are the valid images DamagedParams edits: capacity 64 and
// raw values of 16 bytes each, SPSC; MPSC with 4 producers; a work queue
// with 4 consumers; a WaitForSlowest broadcast with 2 producers and 3
// consumers.
type ParamImages struct {
	SPSC, MPSC, WorkQueue, Broadcast []byte
}

// DamagedParams: an otherwise valid header, resealed with a right
// checksum, holding an impossible parameter (Corrupt; another layout
// version: Incompatible), or a changed one that is still consistent
// (Opens; the image then grows to the size its header gives).
func DamagedParams(imgs ParamImages) []Damaged {
	le := binary.LittleEndian
	spsc, mpsc, wq, bcast := imgs.SPSC, imgs.MPSC, imgs.WorkQueue, imgs.Broadcast
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
	// dataOffset stores the data offset and total size that p producers
	// and k consumers give (the region's capacity and slot size).
	dataOffset := func(p, k uint32) func([]byte) {
		return func(b []byte) {
			d := layout.DataOffsetFor(p, k)
			le.PutUint32(b[layout.OffDataOffset:], d)
			c, sz := le.Uint64(b[layout.OffCapacity:]), le.Uint32(b[layout.OffSlotSize:])
			le.PutUint64(b[layout.OffTotalSize:], uint64(d)+c*uint64(sz))
		}
	}
	version := func(v uint32) []func([]byte) { return []func([]byte){u32(layout.OffVersion, v)} }
	params := []struct {
		name string
		img  []byte
		edit []func([]byte)
		want Verdict
	}{
		{"capacity 0", spsc, []func([]byte){u64(layout.OffCapacity, 0)}, Corrupt},
		{"capacity 3", spsc, []func([]byte){u64(layout.OffCapacity, 3)}, Corrupt},
		{"capacity 63", spsc, []func([]byte){u64(layout.OffCapacity, 63)}, Corrupt},
		{"capacity 2^31", spsc, []func([]byte){u64(layout.OffCapacity, 1<<31)}, Corrupt},
		{"capacity 2^63", spsc, []func([]byte){u64(layout.OffCapacity, 1<<63)}, Corrupt},
		{"capacity all ones", spsc, []func([]byte){u64(layout.OffCapacity, ^uint64(0))}, Corrupt},
		{"capacity 128, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 128)}, Corrupt},
		{"capacity 32, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 32)}, Corrupt},
		{"capacity 128, consistent", spsc, []func([]byte){geometry(128, 16)}, Corrupt},
		{"2^30 slots of 512 bytes, consistent", spsc, []func([]byte){geometry(1<<30, 512)}, Corrupt},
		{"max message 0", spsc, []func([]byte){u32(layout.OffMaxMsg, 0)}, Corrupt},
		{"max message 0, slot size 8", spsc, []func([]byte){u32(layout.OffMaxMsg, 0), u32(layout.OffSlotSize, 8)}, Corrupt},
		{"max message over the limit", spsc, []func([]byte){u32(layout.OffMaxMsg, layout.MaxMsg+1)}, Corrupt},
		{"max message all ones", spsc, []func([]byte){u32(layout.OffMaxMsg, ^uint32(0))}, Corrupt},
		{"max message 17, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 17)}, Corrupt},
		{"max message 8, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 8)}, Corrupt},
		{"2^30 slots of 2^30 bytes", spsc, []func([]byte){u64(layout.OffCapacity, 1<<30), u32(layout.OffMaxMsg, 1<<30)}, Corrupt},
		{"slot size 8 more", spsc, []func([]byte){u32(layout.OffSlotSize, 32)}, Corrupt},
		{"slot size 0", spsc, []func([]byte){u32(layout.OffSlotSize, 0)}, Corrupt},
		{"data offset 0", spsc, []func([]byte){u32(layout.OffDataOffset, 0)}, Corrupt},
		{"data offset inside the header", spsc, []func([]byte){u32(layout.OffDataOffset, 128)}, Corrupt},
		{"data offset past the end", spsc, []func([]byte){u32(layout.OffDataOffset, 1<<20)}, Corrupt},
		{"total size 1 more", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))+1)}, Corrupt},
		{"total size 1 less", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))-1)}, Corrupt},
		{"total size 0", spsc, []func([]byte){u64(layout.OffTotalSize, 0)}, Corrupt},
		{"total size the header", spsc, []func([]byte){u64(layout.OffTotalSize, layout.HeaderSize)}, Corrupt},
		{"total size 2^63", spsc, []func([]byte){u64(layout.OffTotalSize, 1<<63)}, Corrupt},
		{"SPSC with 0 producers", spsc, []func([]byte){u32(layout.OffProducers, 0)}, Corrupt},
		{"SPSC with 2 producers", spsc, []func([]byte){u32(layout.OffProducers, 2)}, Corrupt},
		{"MPSC with 0 producers", mpsc, []func([]byte){u32(layout.OffProducers, 0)}, Corrupt},
		{"MPSC with 5 producers, sizes unchanged", mpsc, []func([]byte){u32(layout.OffProducers, 5)}, Corrupt},
		{"MPSC with too many producers", mpsc, []func([]byte){u32(layout.OffProducers, layout.MaxProducers+1)}, Corrupt},
		{"MPSC with all-ones producers", mpsc, []func([]byte){u32(layout.OffProducers, ^uint32(0))}, Corrupt},
		{"SPSC turned MPSC with 4 producers", spsc, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC)), u32(layout.OffProducers, 4)}, Corrupt},
		{"mode 2", spsc, []func([]byte){u32(layout.OffMode, 2)}, Corrupt},
		{"mode 4", spsc, []func([]byte){u32(layout.OffMode, 4)}, Corrupt},
		{"mode all ones", spsc, []func([]byte){u32(layout.OffMode, ^uint32(0))}, Corrupt},
		{"wait mode 3", spsc, []func([]byte){u32(layout.OffWait, 3)}, Corrupt},
		{"wait mode all ones", spsc, []func([]byte){u32(layout.OffWait, ^uint32(0))}, Corrupt},
		{"unknown flag", spsc, []func([]byte){u32(layout.OffFlags, 1<<5)}, Corrupt},
		{"flag 4", spsc, []func([]byte){u32(layout.OffFlags, 4)}, Corrupt},
		{"multi-producer flag in MPSC", mpsc, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagRaw|layout.FlagMulti))}, Corrupt},
		{"multi-producer flag in SPSC", spsc, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagMulti))}, Corrupt},
		{"consumers in MPSC", mpsc, []func([]byte){u32(layout.OffConsumers, 1)}, Corrupt},
		{"consumers in SPSC, sizes fixed", spsc, []func([]byte){u32(layout.OffConsumers, 1), dataOffset(1, 1)}, Corrupt},
		{"overflow in MPSC", mpsc, []func([]byte){u32(layout.OffOverflow, 1)}, Corrupt},
		{"overflow in a work queue", wq, []func([]byte){u32(layout.OffOverflow, 1)}, Corrupt},
		{"work queue without consumers", wq, []func([]byte){u32(layout.OffConsumers, 0), dataOffset(1, 0)}, Corrupt},
		{"work queue with 5 consumers, sizes unchanged", wq, []func([]byte){u32(layout.OffConsumers, 5)}, Corrupt},
		{"work queue with 5 consumers, sizes fixed", wq, []func([]byte){u32(layout.OffConsumers, 5), dataOffset(1, 5)}, Opens},
		{"work queue with too many consumers", wq, []func([]byte){u32(layout.OffConsumers, layout.MaxConsumers+1)}, Corrupt},
		{"work queue of 2^30 slots", wq, []func([]byte){u64(layout.OffCapacity, 1<<30)}, Corrupt},
		{"work queue with a multi-producer flag, 1 producer", wq, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagRaw|layout.FlagMulti))}, Opens},
		{"broadcast overflow 2", bcast, []func([]byte){u32(layout.OffOverflow, 2)}, Corrupt},
		{"broadcast overflow all ones", bcast, []func([]byte){u32(layout.OffOverflow, ^uint32(0))}, Corrupt},
		{"broadcast turned DropOldest", bcast, []func([]byte){u32(layout.OffOverflow, 1)}, Opens},
		{"broadcast without consumers", bcast, []func([]byte){u32(layout.OffConsumers, 0)}, Corrupt},
		{"broadcast turned work queue", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeWorkQueue))}, Opens},
		{"broadcast turned MPSC", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC))}, Corrupt},
		{"broadcast turned MPSC, consumers and flag cleared", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC)),
			u32(layout.OffConsumers, 0), u32(layout.OffFlags, uint32(layout.FlagRaw)), dataOffset(2, 0)}, Opens},
		{"all flags", spsc, []func([]byte){u32(layout.OffFlags, ^uint32(0))}, Corrupt},
		{"bad magic", spsc, []func([]byte){func(b []byte) { copy(b, "SHMCHAM\x00") }}, Corrupt},
		{"checksum zero, unsealed", spsc, nil, Corrupt}, // not resealed: see below
		{"version 0", spsc, version(0), Incompatible},
		{"version 1", spsc, version(1), Incompatible},
		{fmt.Sprintf("version %d", layout.Version+1), spsc, version(layout.Version + 1), Incompatible},
		{"version all ones", spsc, version(^uint32(0)), Incompatible},
	}
	var cs []Damaged
	for _, p := range params {
		b := append([]byte{}, p.img...)
		for _, e := range p.edit {
			e(b)
		}
		if total := le.Uint64(b[layout.OffTotalSize:]); p.want == Opens && total > uint64(len(b)) {
			b = append(b, make([]byte, total-uint64(len(b)))...) // a valid header's whole region
		}
		if p.edit == nil {
			le.PutUint64(b[layout.OffChecksum:], 0)
		} else {
			le.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
		}
		d := Damaged{What: p.name, Image: SetReady(b), Want: p.want}
		if p.want == Incompatible {
			d.Version, d.HasVersion = le.Uint32(b[layout.OffVersion:]), true
		}
		cs = append(cs, d)
	}
	return cs
}
