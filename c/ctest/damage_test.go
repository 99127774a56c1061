package ctest_test

// Every damaged region of the root package's damage tests (damage_test.go:
// random bytes, short files, zeros, truncations, flipped header bytes,
// impossible parameters), opened from C: shmchan_open gives the code that
// matches the error Go's Open gives, and Go's Open, run on the same bytes,
// agrees. Plus what only the opening rules decide: a foreign owner, things
// that are not regular files, and the creator's mode-0 window.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/layout"
)

// C codes (shmchan.h).
const (
	cOK           = 0
	cECORRUPT     = -5
	cEINCOMPATIBL = -6
	cENOENT       = -8
	cEPERM        = -14
)

// damaged is one case: the bytes planted at a name and the code wanted.
type damaged struct {
	what string
	img  []byte
	want int
	slow bool // Open waits its bounded time for a creator first
	// version: the layout version in the header, when hasVersion says
	// the case is about it (the detail must name it and ours).
	version    uint32
	hasVersion bool
}

func shmPath(name string) string { return "/dev/shm/" + name }

// regionImage creates a region with opts and returns its bytes.
func regionImage[T any](t *testing.T, opts ...shmchan.Option) []byte {
	t.Helper()
	name := testName(t)
	c, err := shmchan.Create[T](name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(shmPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setReady(b []byte) []byte {
	if len(b) >= layout.OffReady+4 {
		binary.LittleEndian.PutUint32(b[layout.OffReady:], layout.ReadyValue)
	}
	return b
}

func damageCases(t *testing.T) []damaged {
	var cs []damaged
	add := func(what string, img []byte, want int) { cs = append(cs, damaged{what: what, img: img, want: want}) }
	le := binary.LittleEndian

	// Random bytes (TestDamagedRandom).
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
				want := cECORRUPT
				if prefix == "magic" {
					want = cEINCOMPATIBL
				}
				add(fmt.Sprintf("%d random bytes (seed %d, %s)", size, seed, prefix), setReady(b), want)
			}
		}
	}

	valid := regionImage[rec](t, shmchan.WithCapacity(64))
	// Short files (TestDamagedShort) and zeros without the ready word
	// (TestDamagedZeros): the opener waits for the creator, then gives up.
	for _, size := range []int{0, 1, 100, 255, 256, 257, 258, 259} {
		cs = append(cs, damaged{what: fmt.Sprintf("a %d-byte prefix", size), img: valid[:size], want: cECORRUPT, slow: true})
	}
	cs = append(cs, damaged{what: "4096 zero bytes, not ready", img: make([]byte, 4096), want: cECORRUPT, slow: true})
	for _, size := range []int{260, 4096, 2240, 1 << 20} {
		add(fmt.Sprintf("%d zero bytes, ready", size), setReady(make([]byte, size)), cECORRUPT)
	}

	// Truncations (TestDamagedTruncated).
	h, err := layout.Validate(valid, int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{
		len(valid) - 1, len(valid) - 8, len(valid) - int(h.SlotSize), int(h.DataOffset) + 1, int(h.DataOffset),
		layout.OffRoles, layout.OffTail, layout.OffReady + 4,
	} {
		add(fmt.Sprintf("%d of %d bytes", size, len(valid)), valid[:size], cECORRUPT)
	}
	add("a valid region with 5000 extra bytes", append(append([]byte{}, valid...), make([]byte, 5000)...), cOK)

	// Flipped header bytes (TestDamagedHeaderFlip).
	kinds := []struct {
		name string
		img  []byte
	}{
		{"spsc-raw", valid},
		{"mpsc-bytes", regionImage[[]byte](t, shmchan.WithMultiProducer(), shmchan.WithProducers(3), shmchan.WithCapacity(8), shmchan.WithMaxMessageSize(100))},
		{"workqueue-raw", regionImage[rec](t, shmchan.WithMultiConsumer(), shmchan.WithConsumers(3), shmchan.WithCapacity(16))},
		{"broadcast-drop-multi", regionImage[[]byte](t, shmchan.WithBroadcast(shmchan.DropOldest), shmchan.WithMultiProducer(),
			shmchan.WithProducers(2), shmchan.WithConsumers(5), shmchan.WithCapacity(8), shmchan.WithMaxMessageSize(40))},
	}
	for _, k := range kinds {
		add(k.name+" undamaged", k.img, cOK)
		for _, mask := range []byte{0xff, 0x01} {
			for off := 0; off < layout.HeaderSize; off++ {
				b := append([]byte{}, k.img...)
				b[off] ^= mask
				want := cECORRUPT
				if off >= layout.OffVersion && off < layout.OffVersion+4 {
					want = cEINCOMPATIBL
				}
				add(fmt.Sprintf("%s: header byte %d XOR %#x", k.name, off, mask), b, want)
			}
		}
	}

	// Impossible parameters, re-sealed (TestDamagedParams).
	spsc := valid
	mpsc := regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithMultiProducer(), shmchan.WithProducers(4))
	wq := regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithMultiConsumer(), shmchan.WithConsumers(4))
	bcast := regionImage[rec](t, shmchan.WithCapacity(64), shmchan.WithBroadcast(shmchan.WaitForSlowest),
		shmchan.WithMultiProducer(), shmchan.WithProducers(2), shmchan.WithConsumers(3))
	u32 := func(off int, v uint32) func([]byte) { return func(b []byte) { le.PutUint32(b[off:], v) } }
	u64 := func(off int, v uint64) func([]byte) { return func(b []byte) { le.PutUint64(b[off:], v) } }
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
	params := []struct {
		name string
		img  []byte
		edit []func([]byte)
		want int
	}{
		{"capacity 0", spsc, []func([]byte){u64(layout.OffCapacity, 0)}, cECORRUPT},
		{"capacity 3", spsc, []func([]byte){u64(layout.OffCapacity, 3)}, cECORRUPT},
		{"capacity 63", spsc, []func([]byte){u64(layout.OffCapacity, 63)}, cECORRUPT},
		{"capacity 2^31", spsc, []func([]byte){u64(layout.OffCapacity, 1<<31)}, cECORRUPT},
		{"capacity 2^63", spsc, []func([]byte){u64(layout.OffCapacity, 1<<63)}, cECORRUPT},
		{"capacity all ones", spsc, []func([]byte){u64(layout.OffCapacity, ^uint64(0))}, cECORRUPT},
		{"capacity 128, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 128)}, cECORRUPT},
		{"capacity 32, sizes unchanged", spsc, []func([]byte){u64(layout.OffCapacity, 32)}, cECORRUPT},
		{"capacity 128, consistent", spsc, []func([]byte){geometry(128, 16)}, cECORRUPT},
		{"2^30 slots of 512 bytes, consistent", spsc, []func([]byte){geometry(1<<30, 512)}, cECORRUPT},
		{"max message 0", spsc, []func([]byte){u32(layout.OffMaxMsg, 0)}, cECORRUPT},
		{"max message 0, slot size 8", spsc, []func([]byte){u32(layout.OffMaxMsg, 0), u32(layout.OffSlotSize, 8)}, cECORRUPT},
		{"max message over the limit", spsc, []func([]byte){u32(layout.OffMaxMsg, layout.MaxMsg+1)}, cECORRUPT},
		{"max message all ones", spsc, []func([]byte){u32(layout.OffMaxMsg, ^uint32(0))}, cECORRUPT},
		{"max message 17, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 17)}, cECORRUPT},
		{"max message 8, slot size unchanged", spsc, []func([]byte){u32(layout.OffMaxMsg, 8)}, cECORRUPT},
		{"2^30 slots of 2^30 bytes", spsc, []func([]byte){u64(layout.OffCapacity, 1<<30), u32(layout.OffMaxMsg, 1<<30)}, cECORRUPT},
		{"slot size 8 more", spsc, []func([]byte){u32(layout.OffSlotSize, 32)}, cECORRUPT},
		{"slot size 0", spsc, []func([]byte){u32(layout.OffSlotSize, 0)}, cECORRUPT},
		{"data offset 0", spsc, []func([]byte){u32(layout.OffDataOffset, 0)}, cECORRUPT},
		{"data offset inside the header", spsc, []func([]byte){u32(layout.OffDataOffset, 128)}, cECORRUPT},
		{"data offset past the end", spsc, []func([]byte){u32(layout.OffDataOffset, 1<<20)}, cECORRUPT},
		{"total size 1 more", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))+1)}, cECORRUPT},
		{"total size 1 less", spsc, []func([]byte){u64(layout.OffTotalSize, uint64(len(spsc))-1)}, cECORRUPT},
		{"total size 0", spsc, []func([]byte){u64(layout.OffTotalSize, 0)}, cECORRUPT},
		{"total size the header", spsc, []func([]byte){u64(layout.OffTotalSize, layout.HeaderSize)}, cECORRUPT},
		{"total size 2^63", spsc, []func([]byte){u64(layout.OffTotalSize, 1<<63)}, cECORRUPT},
		{"SPSC with 0 producers", spsc, []func([]byte){u32(layout.OffProducers, 0)}, cECORRUPT},
		{"SPSC with 2 producers", spsc, []func([]byte){u32(layout.OffProducers, 2)}, cECORRUPT},
		{"MPSC with 0 producers", mpsc, []func([]byte){u32(layout.OffProducers, 0)}, cECORRUPT},
		{"MPSC with 5 producers, sizes unchanged", mpsc, []func([]byte){u32(layout.OffProducers, 5)}, cECORRUPT},
		{"MPSC with too many producers", mpsc, []func([]byte){u32(layout.OffProducers, layout.MaxProducers+1)}, cECORRUPT},
		{"MPSC with all-ones producers", mpsc, []func([]byte){u32(layout.OffProducers, ^uint32(0))}, cECORRUPT},
		{"SPSC turned MPSC with 4 producers", spsc, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC)), u32(layout.OffProducers, 4)}, cECORRUPT},
		{"mode 2", spsc, []func([]byte){u32(layout.OffMode, 2)}, cECORRUPT},
		{"mode 4", spsc, []func([]byte){u32(layout.OffMode, 4)}, cECORRUPT},
		{"mode all ones", spsc, []func([]byte){u32(layout.OffMode, ^uint32(0))}, cECORRUPT},
		{"wait mode 3", spsc, []func([]byte){u32(layout.OffWait, 3)}, cECORRUPT},
		{"wait mode all ones", spsc, []func([]byte){u32(layout.OffWait, ^uint32(0))}, cECORRUPT},
		{"unknown flag", spsc, []func([]byte){u32(layout.OffFlags, 1<<5)}, cECORRUPT},
		{"flag 4", spsc, []func([]byte){u32(layout.OffFlags, 4)}, cECORRUPT},
		{"multi-producer flag in MPSC", mpsc, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagRaw|layout.FlagMulti))}, cECORRUPT},
		{"multi-producer flag in SPSC", spsc, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagMulti))}, cECORRUPT},
		{"consumers in MPSC", mpsc, []func([]byte){u32(layout.OffConsumers, 1)}, cECORRUPT},
		{"consumers in SPSC, sizes fixed", spsc, []func([]byte){u32(layout.OffConsumers, 1), dataOffset(1, 1)}, cECORRUPT},
		{"overflow in MPSC", mpsc, []func([]byte){u32(layout.OffOverflow, 1)}, cECORRUPT},
		{"overflow in a work queue", wq, []func([]byte){u32(layout.OffOverflow, 1)}, cECORRUPT},
		{"work queue without consumers", wq, []func([]byte){u32(layout.OffConsumers, 0), dataOffset(1, 0)}, cECORRUPT},
		{"work queue with 5 consumers, sizes unchanged", wq, []func([]byte){u32(layout.OffConsumers, 5)}, cECORRUPT},
		{"work queue with 5 consumers, sizes fixed", wq, []func([]byte){u32(layout.OffConsumers, 5), dataOffset(1, 5)}, cOK},
		{"work queue with too many consumers", wq, []func([]byte){u32(layout.OffConsumers, layout.MaxConsumers+1)}, cECORRUPT},
		{"work queue of 2^30 slots", wq, []func([]byte){u64(layout.OffCapacity, 1<<30)}, cECORRUPT},
		{"work queue with a multi-producer flag, 1 producer", wq, []func([]byte){u32(layout.OffFlags, uint32(layout.FlagRaw|layout.FlagMulti))}, cOK},
		{"broadcast overflow 2", bcast, []func([]byte){u32(layout.OffOverflow, 2)}, cECORRUPT},
		{"broadcast overflow all ones", bcast, []func([]byte){u32(layout.OffOverflow, ^uint32(0))}, cECORRUPT},
		{"broadcast turned DropOldest", bcast, []func([]byte){u32(layout.OffOverflow, 1)}, cOK},
		{"broadcast without consumers", bcast, []func([]byte){u32(layout.OffConsumers, 0)}, cECORRUPT},
		{"broadcast turned work queue", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeWorkQueue))}, cOK},
		{"broadcast turned MPSC", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC))}, cECORRUPT},
		{"broadcast turned MPSC, consumers and flag cleared", bcast, []func([]byte){u32(layout.OffMode, uint32(layout.ModeMPSC)),
			u32(layout.OffConsumers, 0), u32(layout.OffFlags, uint32(layout.FlagRaw)), dataOffset(2, 0)}, cOK},
		{"all flags", spsc, []func([]byte){u32(layout.OffFlags, ^uint32(0))}, cECORRUPT},
		{"bad magic", spsc, []func([]byte){func(b []byte) { copy(b, "SHMCHAM\x00") }}, cECORRUPT},
		{"checksum zero, unsealed", spsc, nil, cECORRUPT},
		{"version 0", spsc, []func([]byte){u32(layout.OffVersion, 0)}, cEINCOMPATIBL},
		{"version 1", spsc, []func([]byte){u32(layout.OffVersion, 1)}, cEINCOMPATIBL},
		{"version 3", spsc, []func([]byte){u32(layout.OffVersion, layout.Version+1)}, cEINCOMPATIBL},
		{"version all ones", spsc, []func([]byte){u32(layout.OffVersion, ^uint32(0))}, cEINCOMPATIBL},
	}
	versions := map[string]uint32{"version 0": 0, "version 1": 1, "version 3": 3, "version all ones": ^uint32(0)}
	for _, p := range params {
		b := append([]byte{}, p.img...)
		for _, e := range p.edit {
			e(b)
		}
		if total := le.Uint64(b[layout.OffTotalSize:]); p.want == cOK && total > uint64(len(b)) {
			b = append(b, make([]byte, total-uint64(len(b)))...) // a valid header's whole region
		}
		if p.edit == nil {
			le.PutUint64(b[layout.OffChecksum:], 0)
		} else {
			le.PutUint64(b[layout.OffChecksum:], layout.Checksum(b))
		}
		add(p.name, setReady(b), p.want)
		if v, ok := versions[p.name]; ok {
			cs[len(cs)-1].version, cs[len(cs)-1].hasVersion = v, true
		}
	}
	return cs
}

// goVerdict opens name from Go and maps the result to a C code.
func goVerdict(name string) int {
	c, err := shmchan.Open[rec](name)
	if err == nil {
		c.Close()
		return cOK
	}
	if errors.Is(err, shmchan.ErrTypeMismatch) {
		return cOK // the header itself was accepted (the []byte image)
	}
	switch {
	case errors.Is(err, shmchan.ErrCorrupt):
		return cECORRUPT
	case errors.Is(err, shmchan.ErrIncompatible):
		return cEINCOMPATIBL
	}
	return 1000 // anything else: never what a case wants
}

// openFromC opens every name in one C process and returns name → code and
// how long each open took.
func openFromC(t *testing.T, names []string, args ...string) (map[string]int, map[string]time.Duration) {
	codes, took, _ := openFromCWhy(t, names, args...)
	return codes, took
}

// openFromCWhy is openFromC with shmchan_last_error's detail of each open.
func openFromCWhy(t *testing.T, names []string, args ...string) (map[string]int, map[string]time.Duration, map[string]string) {
	t.Helper()
	cmd := exec.Command(peerBinary(t), append([]string{"open"}, args...)...)
	cmd.Stdin = strings.NewReader(strings.Join(names, "\n") + "\n")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("C opener: %v", err)
	}
	codes, took, why := map[string]int{}, map[string]time.Duration{}, map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) == 3 {
			f = append(f, "") // no detail
		}
		if len(f) != 4 {
			t.Fatalf("C opener printed %q", l)
		}
		codes[f[0]], _ = strconv.Atoi(f[1])
		ms, _ := strconv.Atoi(f[2])
		took[f[0]] = time.Duration(ms) * time.Millisecond
		why[f[0]] = f[3]
	}
	return codes, took, why
}

func plant(t *testing.T, b []byte) string {
	t.Helper()
	name := testName(t)
	if err := os.WriteFile(shmPath(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestDamagedFromC(t *testing.T) {
	cases := damageCases(t)
	byName := map[string]damaged{}
	var fast []string
	for _, c := range cases {
		if c.slow {
			continue
		}
		name := plant(t, c.img)
		byName[name] = c
		fast = append(fast, name)
	}
	// A file larger than any region, refused before it is mapped.
	big := plant(t, regionImage[rec](t, shmchan.WithCapacity(64)))
	if err := os.Truncate(shmPath(big), layout.MaxTotalSize+4096); err != nil {
		t.Fatal(err)
	}
	byName[big] = damaged{what: "a sparse file larger than any region", want: cECORRUPT}
	fast = append(fast, big)

	codes, took, why := openFromCWhy(t, fast)
	for _, name := range fast {
		c := byName[name]
		got, ok := codes[name]
		if !ok {
			t.Errorf("%s: no answer from C", c.what)
			continue
		}
		if got != c.want {
			t.Errorf("%s: C open gave %d, want %d", c.what, got, c.want)
		}
		if got != cOK && why[name] == "" {
			t.Errorf("%s: C open gave %d and no detail", c.what, got)
		}
		if c.hasVersion {
			if want := fmt.Sprintf("layout version %d, this library reads version %d", c.version, layout.Version); why[name] != want {
				t.Errorf("%s: C says %q, want %q", c.what, why[name], want)
			}
		}
		if took[name] > 500*time.Millisecond {
			t.Errorf("%s: C open took %v", c.what, took[name])
		}
		if g := goVerdict(name); g != c.want {
			t.Errorf("%s: Go open gave %d, want %d (the C expectations must be Go's)", c.what, g, c.want)
		}
	}
	t.Logf("%d damaged regions opened from C", len(fast))

	// The slow ones, each in its own C process, in parallel: the opener
	// waits about a second for the creator, then reports ECORRUPT.
	var wg sync.WaitGroup
	for _, c := range cases {
		if !c.slow {
			continue
		}
		name := plant(t, c.img)
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes, took := openFromC(t, []string{name})
			if codes[name] != c.want {
				t.Errorf("%s: C open gave %d, want %d", c.what, codes[name], c.want)
			}
			if took[name] < 900*time.Millisecond || took[name] > 3*time.Second {
				t.Errorf("%s: C open gave up after %v, want about a second", c.what, took[name])
			}
		}()
	}
	wg.Wait()
}

// TestOpenRulesFromC: names that are not regular files, and a region owned
// by another user (EPERM unless the flag allows it).
func TestOpenRulesFromC(t *testing.T) {
	valid := regionImage[[]byte](t)
	dir, fifo, link, absent := testName(t), testName(t), testName(t), testName(t)
	if err := os.Mkdir(shmPath(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(shmPath(dir)) })
	if err := syscall.Mkfifo(shmPath(fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	target := plant(t, valid)
	if err := os.Symlink(shmPath(target), shmPath(link)); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{dir: cECORRUPT, fifo: cECORRUPT, link: cECORRUPT, absent: cENOENT, target: cOK, "/" + target: cOK}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	codes, _ := openFromC(t, names)
	for n, w := range want {
		if codes[n] != w {
			t.Errorf("%s: C open gave %d, want %d", n, codes[n], w)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("the foreign-owner cases need root (to chown the region)")
	}
	foreign := plant(t, valid)
	if err := os.Chown(shmPath(foreign), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if codes, _ := openFromC(t, []string{foreign}); codes[foreign] != cEPERM {
		t.Errorf("a region owned by uid 65534: C open gave %d, want EPERM (%d)", codes[foreign], cEPERM)
	}
	if codes, _ := openFromC(t, []string{foreign}, "foreign=1"); codes[foreign] != cOK {
		t.Errorf("a region owned by uid 65534, with SHMCHAN_ALLOW_FOREIGN_OWNER: C open gave %d", codes[foreign])
	}
}

// TestOpenDuringCreateFromC: an opener that is not root, racing a creator
// between its exclusive create (mode 0, so open gets EACCES) and its
// fchmod, waits for the region instead of failing.
func TestOpenDuringCreateFromC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the C opener as another user")
	}
	valid := regionImage[[]byte](t, shmchan.WithPerm(0o666))
	name := testName(t)
	f, err := os.OpenFile(shmPath(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Chmod(0); err != nil { // as a creator does, whatever the umask
		t.Fatal(err)
	}
	// The opener runs as nobody, so the binary must be reachable for it.
	os.Chmod(buildDir, 0o755)
	cmd := exec.Command(peerBinary(t), "open", "foreign=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Stdin = strings.NewReader(name + "\n")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the opener is in its EACCES wait now
	if _, err := f.WriteAt(valid, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o666); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	res := strings.Fields(out.String())
	if len(res) != 3 || res[1] != "0" {
		t.Fatalf("C opener racing the creator's fchmod printed %q, want success", out.String())
	}
	if ms, _ := strconv.Atoi(res[2]); ms < 150 {
		t.Fatalf("the opener succeeded after %d ms: it did not meet the mode-0 window", ms)
	}
}
