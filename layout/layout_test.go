package layout

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// field is one fixed-position word or array of the format.
type field struct {
	name  string // the Go constant's name, as FORMAT.md spells it
	got   int    // the constant's value
	want  int    // where the format says it is
	size  int    // bytes
	align int    // required alignment: the size for integers, 1 for byte arrays
}

// headerFields is the immutable header, in order.
var headerFields = []field{
	{"OffMagic", OffMagic, 0, 8, 1},
	{"OffVersion", OffVersion, 8, 4, 4},
	{"OffDataOffset", OffDataOffset, 12, 4, 4},
	{"OffMode", OffMode, 16, 4, 4},
	{"OffWait", OffWait, 20, 4, 4},
	{"OffCapacity", OffCapacity, 24, 8, 8},
	{"OffSlotSize", OffSlotSize, 32, 4, 4},
	{"OffMaxMsg", OffMaxMsg, 36, 4, 4},
	{"OffProducers", OffProducers, 40, 4, 4},
	{"OffFlags", OffFlags, 44, 4, 4},
	{"OffFingerprint", OffFingerprint, 48, 8, 8},
	{"OffTotalSize", OffTotalSize, 56, 8, 8},
	{"OffCreatorPID", OffCreatorPID, 64, 4, 4},
	{"OffCreatorUID", OffCreatorUID, 68, 4, 4},
	{"OffCreated", OffCreated, 72, 8, 8},
	{"OffCodecName", OffCodecName, 80, 32, 1},
	{"OffConsumers", OffConsumers, 112, 4, 4},
	{"OffOverflow", OffOverflow, 116, 4, 4},
	{"OffTypeName", OffTypeName, 120, 128, 1},
	{"OffChecksum", OffChecksum, 248, 8, 8},
}

// mutableLines are the mutable words, grouped by the cache line they share.
var mutableLines = [][]field{
	{{"OffReady", OffReady, 256, 4, 4}},
	{{"OffTail", OffTail, 320, 8, 8}, {"OffSenderWakes", OffSenderWakes, 328, 8, 8}},
	{{"OffHead", OffHead, 384, 8, 8}, {"OffAbandoned", OffAbandoned, 392, 8, 8}, {"OffReceiverWakes", OffReceiverWakes, 400, 8, 8}, {"OffClaimHead", OffClaimHead, 408, 8, 8}, {"OffLagged", OffLagged, 416, 8, 8}},
	{{"OffRecvSeq", OffRecvSeq, 448, 4, 4}, {"OffRecvWaiting", OffRecvWaiting, 452, 4, 4}, {"OffRecvSleeps", OffRecvSleeps, 456, 8, 8}},
	{{"OffSendSeq", OffSendSeq, 512, 4, 4}, {"OffSendWaiters", OffSendWaiters, 516, 4, 4}, {"OffSendSleeps", OffSendSleeps, 520, 8, 8}},
}

// roleFields are relative to the start of a role entry.
var roleFields = []field{
	{"RolePID", RolePID, 0, 4, 4},
	{"RoleFlags", RoleFlags, 4, 4, 4},
	{"RoleStart", RoleStart, 8, 8, 8},
	{"RoleSince", RoleSince, 16, 8, 8},
	{"RoleClaimLo", RoleClaimLo, 24, 8, 8},
	{"RoleClaimHi", RoleClaimHi, 32, 8, 8},
	{"RoleSent", RoleSent, 40, 8, 8},
	{"RoleTakeovers", RoleTakeovers, 48, 8, 8},
}

// slotFields are relative to the start of a slot.
var slotFields = []field{
	{"SlotSeq", SlotSeq, 0, 4, 4},
	{"SlotLen", SlotLen, 4, 4, 4},
}

// checkFields checks that each field is where it should be, aligned, inside
// [lo, hi), and that no two fields overlap.
func checkFields(t *testing.T, fs []field, lo, hi int) {
	t.Helper()
	for _, f := range fs {
		if f.got != f.want {
			t.Errorf("%s = %d, the format puts it at %d", f.name, f.got, f.want)
		}
		if f.got%f.align != 0 {
			t.Errorf("%s = %d is not %d-byte aligned", f.name, f.got, f.align)
		}
		if f.got < lo || f.got+f.size > hi {
			t.Errorf("%s [%d, %d) is outside [%d, %d)", f.name, f.got, f.got+f.size, lo, hi)
		}
	}
	sorted := slices.Clone(fs)
	slices.SortFunc(sorted, func(a, b field) int { return a.got - b.got })
	for i := 1; i < len(sorted); i++ {
		if p, f := sorted[i-1], sorted[i]; p.got+p.size > f.got {
			t.Errorf("%s [%d, %d) overlaps %s at %d", p.name, p.got, p.got+p.size, f.name, f.got)
		}
	}
}

func TestHeaderOffsets(t *testing.T) {
	if HeaderSize != 256 {
		t.Fatalf("HeaderSize = %d, want 256", HeaderSize)
	}
	checkFields(t, headerFields, 0, HeaderSize)
	// The header is packed: every byte belongs to exactly one field, so
	// nothing in [0, 248) escapes the checksum by being "padding".
	end := 0
	for _, f := range headerFields {
		if f.got != end {
			t.Errorf("%s at %d, want it right after the previous field at %d", f.name, f.got, end)
		}
		end = f.got + f.size
	}
	if end != HeaderSize {
		t.Errorf("header fields end at %d, want %d", end, HeaderSize)
	}
	// The checksum is the last field and covers everything before it.
	if OffChecksum != HeaderSize-8 {
		t.Errorf("OffChecksum = %d, want HeaderSize-8 = %d", OffChecksum, HeaderSize-8)
	}
	if len(Magic) != 8 {
		t.Errorf("len(Magic) = %d, want 8", len(Magic))
	}
	if CodecNameLen != 32 || TypeNameLen != 128 {
		t.Errorf("CodecNameLen, TypeNameLen = %d, %d, want 32, 128", CodecNameLen, TypeNameLen)
	}
}

func TestMutableOffsets(t *testing.T) {
	var all []field
	prevLine := -1
	for _, line := range mutableLines {
		first := line[0]
		if first.got%LineSize != 0 {
			t.Errorf("%s = %d does not start a %d-byte line", first.name, first.got, LineSize)
		}
		n := first.got / LineSize
		if n <= prevLine {
			t.Errorf("%s is on line %d, not after the previous group's line %d", first.name, n, prevLine)
		}
		prevLine = n
		for _, f := range line {
			if f.got/LineSize != n || (f.got+f.size-1)/LineSize != n {
				t.Errorf("%s [%d, %d) is not on %s's line %d", f.name, f.got, f.got+f.size, first.name, n)
			}
		}
		all = append(all, line...)
	}
	checkFields(t, all, HeaderSize, OffRoles)

	// Spelled out, the properties the ring relies on.
	for _, off := range []struct {
		name string
		v    int
	}{{"OffReady", OffReady}, {"OffTail", OffTail}, {"OffHead", OffHead}, {"OffRecvSeq", OffRecvSeq}, {"OffSendSeq", OffSendSeq}, {"OffRoles", OffRoles}} {
		if off.v%LineSize != 0 {
			t.Errorf("%s = %d is not a multiple of LineSize", off.name, off.v)
		}
	}
	lines := map[int]string{}
	for _, off := range []struct {
		name string
		v    int
	}{{"OffReady", OffReady}, {"OffTail", OffTail}, {"OffHead", OffHead}, {"OffRecvSeq", OffRecvSeq}, {"OffSendSeq", OffSendSeq}} {
		if other, ok := lines[off.v/LineSize]; ok {
			t.Errorf("%s shares a cache line with %s", off.name, other)
		}
		lines[off.v/LineSize] = off.name
	}
	for _, off := range []int{OffRecvSeq, OffSendSeq, OffRecvWaiting, OffSendWaiters, OffReady} {
		if off%4 != 0 {
			t.Errorf("futex word at %d is not 4-byte aligned", off)
		}
	}
	for _, off := range []int{OffTail, OffSenderWakes, OffHead, OffAbandoned, OffReceiverWakes, OffRecvSleeps, OffSendSleeps} {
		if off%8 != 0 {
			t.Errorf("uint64 word at %d is not 8-byte aligned", off)
		}
	}
	if OffReady < HeaderSize {
		t.Errorf("OffReady = %d is inside the checksummed header", OffReady)
	}
}

func TestRoleAndSlotOffsets(t *testing.T) {
	checkFields(t, roleFields, 0, LineSize)
	checkFields(t, slotFields, 0, SlotHeaderSize)
	if SlotHeaderSize != 8 {
		t.Errorf("SlotHeaderSize = %d, want 8", SlotHeaderSize)
	}
	if OffRoles != 576 || OffRoles%LineSize != 0 {
		t.Errorf("OffRoles = %d, want 576, a multiple of %d", OffRoles, LineSize)
	}
	for i := range MaxProducers + 1 {
		if got := RoleOffset(i); got != OffRoles+i*LineSize {
			t.Fatalf("RoleOffset(%d) = %d, want %d", i, got, OffRoles+i*LineSize)
		}
	}
	// The payload starts right after the slot header, 8-aligned in every
	// slot: DataOffset is 64-aligned and SlotSize a multiple of 8.
	if SlotHeaderSize%8 != 0 {
		t.Errorf("slot payload offset %d is not 8-aligned", SlotHeaderSize)
	}
	for _, m := range []uint32{1, 2, 7, 8, 9, 15, 16, 17, 100, 4096, 1<<20 + 3, MaxMsg - 1, MaxMsg} {
		s := SlotSizeFor(m)
		if s%8 != 0 || s < SlotHeaderSize+m || s >= SlotHeaderSize+m+8 {
			t.Errorf("SlotSizeFor(%d) = %d, want the multiple of 8 in [%d, %d)", m, s, SlotHeaderSize+m, SlotHeaderSize+m+8)
		}
	}
	for p := uint32(1); p <= MaxProducers; p++ {
		d := DataOffsetFor(p, 0)
		lastRoleEnd := RoleOffset(int(p)) + LineSize // entries 0..p
		if d%LineSize != 0 || int(d) < lastRoleEnd || int(d) >= lastRoleEnd+LineSize {
			t.Fatalf("DataOffsetFor(%d) = %d, want the first line boundary at or after %d", p, d, lastRoleEnd)
		}
	}
}

func TestConstants(t *testing.T) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], ReadyValue)
	if string(b[:]) != "REDY" {
		t.Errorf("ReadyValue is %q in memory, want \"REDY\"", b[:])
	}
	if ClosedBit != 1<<63 {
		t.Errorf("ClosedBit = %#x", ClosedBit)
	}
	if SlotSkip <= MaxMsg {
		t.Errorf("SlotSkip %#x is a valid length (MaxMsg %#x)", SlotSkip, MaxMsg)
	}
	// MPSC slot sequences are uint32(pos+1); comparing them is unambiguous
	// only while the ring is much smaller than 2^32.
	if MaxCapacity > 1<<31 {
		t.Errorf("MaxCapacity %d is too large for 32-bit slot sequences", MaxCapacity)
	}
	// The role lock offsets (1<<40 + i) start where the largest region ends.
	if MaxTotalSize != 1<<40 {
		t.Errorf("MaxTotalSize = %d", uint64(MaxTotalSize))
	}
}

// testHeader returns a valid MPSC header with every field set.
func testHeader() Header {
	return Header{
		Mode:        ModeMPSC,
		Wait:        WaitFutex,
		Capacity:    8,
		MaxMsg:      100,
		Producers:   3,
		Flags:       FlagRaw,
		Fingerprint: 0x0123456789abcdef,
		CreatorPID:  4242,
		CreatorUID:  1000,
		Created:     1764140000123456789,
		CodecName:   "raw",
		TypeName:    "main.Order",
	}
}

// encode runs Geometry on h and returns a full region image holding it.
func encode(t testing.TB, h Header) (Header, []byte) {
	t.Helper()
	if err := h.Geometry(); err != nil {
		t.Fatalf("Geometry(%+v): %v", h, err)
	}
	b := make([]byte, h.TotalSize)
	h.Encode(b)
	return h, b
}

// reseal recomputes the checksum of the header in b.
func reseal(b []byte) {
	binary.LittleEndian.PutUint64(b[OffChecksum:], xxhash.Sum64(b[:OffChecksum]))
}

// wantErr checks that err matches target and that its message names the
// check that failed.
func wantErr(t *testing.T, err, target error, check string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v (%s)", target, check)
	}
	if !errors.Is(err, target) {
		t.Fatalf("error %q does not match %v", err, target)
	}
	other := ErrCorrupt
	if target == ErrCorrupt {
		other = ErrIncompatible
	}
	if errors.Is(err, other) {
		t.Fatalf("error %q matches both ErrCorrupt and ErrIncompatible", err)
	}
	if !strings.Contains(err.Error(), check) {
		t.Fatalf("error %q is not the %q check", err, check)
	}
}

// fitName is the longest prefix of the valid UTF-8 string s made of whole
// runes and at most n bytes long.
func fitName(s string, n int) string {
	end := 0
	for i, r := range s {
		if i+utf8.RuneLen(r) > n {
			break
		}
		end = i + utf8.RuneLen(r)
	}
	return s[:end]
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300)
	hs := []Header{
		testHeader(),
		{Mode: ModeSPSC, Wait: WaitMQ, Capacity: 1, MaxMsg: 1, Producers: 1},
		{Mode: ModeSPSC, Wait: WaitSpin, Capacity: 1024, MaxMsg: 64, Producers: 1, Flags: FlagRaw, Created: -1,
			CodecName: strings.Repeat("c", CodecNameLen), TypeName: strings.Repeat("t", TypeNameLen)},
		{Mode: ModeMPSC, Wait: WaitFutex, Capacity: 2, MaxMsg: 13, Producers: MaxProducers,
			Fingerprint: ^uint64(0), CreatorPID: ^uint32(0), CreatorUID: ^uint32(0),
			CodecName: long, TypeName: long},
		{Mode: ModeMPSC, Wait: WaitSpin, Capacity: 4, MaxMsg: 1 << 16, Producers: 1,
			CodecName: "json", TypeName: "map[string]日本語"},
	}
	// Long multi-byte names, cut at every position relative to rune edges.
	for _, r := range []string{"é", "日", "🚀"} {
		for pad := range 4 {
			h := testHeader()
			h.CodecName = strings.Repeat("a", pad) + strings.Repeat(r, 40)
			h.TypeName = strings.Repeat("a", pad) + "x." + strings.Repeat(r, 100)
			hs = append(hs, h)
		}
	}
	for i, in := range hs {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			want, b := encode(t, in)
			want.CodecName = fitName(in.CodecName, CodecNameLen)
			want.TypeName = fitName(in.TypeName, TypeNameLen)
			if want.TotalSize != uint64(want.DataOffset)+want.Capacity*uint64(want.SlotSize) {
				t.Fatalf("TotalSize %d != DataOffset %d + Capacity %d * SlotSize %d", want.TotalSize, want.DataOffset, want.Capacity, want.SlotSize)
			}
			got, err := Validate(b, int64(len(b)))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got != want {
				t.Fatalf("Validate returned\n%+v\nwant\n%+v", got, want)
			}
			if !utf8.ValidString(got.CodecName) || !utf8.ValidString(got.TypeName) {
				t.Fatalf("names are not valid UTF-8: %q, %q", got.CodecName, got.TypeName)
			}
			if p, err := Peek(b[:HeaderSize]); err != nil || p != want {
				t.Fatalf("Peek(header only) = %+v, %v", p, err)
			}
			// A page-rounded mapping and file are fine.
			big := make([]byte, len(b)+4096)
			copy(big, b)
			if got, err := Validate(big, int64(len(big))); err != nil || got != want {
				t.Fatalf("Validate(larger mapping) = %+v, %v", got, err)
			}
			// Re-encoding what was read gives the same bytes.
			again := make([]byte, HeaderSize)
			got.Encode(again)
			if !bytes.Equal(again, b[:HeaderSize]) {
				t.Fatalf("re-encoded header differs:\n%x\n%x", again, b[:HeaderSize])
			}
		})
	}
}

func TestEncodeLeavesMutablePartAlone(t *testing.T) {
	h := testHeader()
	if err := h.Geometry(); err != nil {
		t.Fatal(err)
	}
	b := bytes.Repeat([]byte{0xAB}, int(h.TotalSize))
	h.Encode(b)
	for i := HeaderSize; i < len(b); i++ {
		if b[i] != 0xAB {
			t.Fatalf("Encode wrote byte %d", i)
		}
	}
	// Garbage in the mutable words and slots does not affect validation:
	// only the header is checked here, the ring checks the rest.
	if _, err := Validate(b, int64(len(b))); err != nil {
		t.Fatalf("Validate with junk after the header: %v", err)
	}
	// Encode clears stale header bytes (e.g. a longer previous name).
	h.TypeName = "t"
	h.Encode(b)
	if got, err := Validate(b, int64(len(b))); err != nil || got.TypeName != "t" {
		t.Fatalf("Validate after re-encode = %q, %v", got.TypeName, err)
	}
}

func TestValidateCopiesHeader(t *testing.T) {
	_, b := encode(t, testHeader())
	h, err := Validate(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	keep := h
	clear(b)
	if h != keep {
		t.Fatalf("Header changed with the memory it was read from")
	}
}

// TestGolden pins the encoding: a C reader written from FORMAT.md must
// produce and accept exactly these bytes (FORMAT.md shows them too).
func TestGolden(t *testing.T) {
	const (
		golden = "" +
			"53484d4348414e00020000004003000001000000000000000800000000000000" +
			"70000000640000000300000001000000efcdab8967452301c006000000000000" +
			"92100000e8030000158d6ab9fb7b7b1872617700000000000000000000000000" +
			"0000000000000000000000000000000000000000000000006d61696e2e4f7264" +
			"6572000000000000000000000000000000000000000000000000000000000000" +
			"0000000000000000000000000000000000000000000000000000000000000000" +
			"0000000000000000000000000000000000000000000000000000000000000000" +
			"000000000000000000000000000000000000000000000000978f58945acf3724"
		sum = uint64(0x2437cf5a94588f97)
	)
	h, b := encode(t, testHeader())
	if h.DataOffset != 832 || h.SlotSize != 112 || h.TotalSize != 832+8*112 {
		t.Fatalf("geometry = %d, %d, %d; want 832, 112, %d", h.DataOffset, h.SlotSize, h.TotalSize, 832+8*112)
	}
	if got := hex.EncodeToString(b[:HeaderSize]); got != golden {
		t.Errorf("encoded header:\n%s\nwant\n%s", got, golden)
	}
	if got := binary.LittleEndian.Uint64(b[OffChecksum:]); got != sum || got != Checksum(b) || got != xxhash.Sum64(b[:248]) {
		t.Errorf("checksum %#016x, want %#016x", got, sum)
	}
}

func TestValidateErrors(t *testing.T) {
	h0, good := encode(t, testHeader())
	size := int64(len(good))
	fresh := func() []byte { return bytes.Clone(good) }

	t.Run("short", func(t *testing.T) {
		for _, n := range []int{0, 1, 8, 12, HeaderSize - 1} {
			_, err := Validate(good[:n], size)
			wantErr(t, err, ErrCorrupt, "shorter than")
			_, err = Peek(good[:n])
			wantErr(t, err, ErrCorrupt, "shorter than")
		}
		_, err := Validate(nil, size)
		wantErr(t, err, ErrCorrupt, "shorter than")
	})
	t.Run("magic", func(t *testing.T) {
		b := fresh()
		copy(b, "SHMCHAM\x00")
		reseal(b)
		_, err := Validate(b, size)
		wantErr(t, err, ErrCorrupt, "bad magic")
	})
	t.Run("version", func(t *testing.T) {
		for _, v := range []uint32{0, 1, 3, 1 << 16, ^uint32(0)} {
			b := fresh()
			binary.LittleEndian.PutUint32(b[OffVersion:], v)
			reseal(b)
			_, err := Validate(b, size)
			wantErr(t, err, ErrIncompatible, "layout version")
			_, err = Peek(b)
			wantErr(t, err, ErrIncompatible, "layout version")
		}
	})
	t.Run("checksum", func(t *testing.T) {
		b := fresh()
		b[OffChecksum] ^= 1
		_, err := Validate(b, size)
		wantErr(t, err, ErrCorrupt, "header checksum")
		b = fresh()
		binary.LittleEndian.PutUint32(b[OffMaxMsg:], 99) // valid value, not resealed
		_, err = Validate(b, size)
		wantErr(t, err, ErrCorrupt, "header checksum")
	})

	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	put64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[off:], v) }
	}
	spsc := func(b []byte) { // testHeader with one sender entry and mode SPSC
		binary.LittleEndian.PutUint32(b[OffMode:], uint32(ModeSPSC))
	}
	params := []struct {
		name  string
		edit  []func([]byte)
		check string
	}{
		{"mode 7", []func([]byte){put32(OffMode, 7)}, "mode 7"},
		{"mode 4", []func([]byte){put32(OffMode, 4)}, "mode 4"},
		{"wait 9", []func([]byte){put32(OffWait, 9)}, "wait mode 9"},
		{"wait 3", []func([]byte){put32(OffWait, 3)}, "wait mode 3"},
		{"capacity 0", []func([]byte){put64(OffCapacity, 0)}, "capacity 0 is not"},
		{"capacity 3", []func([]byte){put64(OffCapacity, 3)}, "capacity 3 is not"},
		{"capacity 1<<31", []func([]byte){put64(OffCapacity, 1<<31)}, "capacity 2147483648 is not"},
		{"capacity 1<<63", []func([]byte){put64(OffCapacity, 1<<63)}, "is not a power of two"},
		{"capacity max", []func([]byte){put64(OffCapacity, ^uint64(0))}, "is not a power of two"},
		{"maxMsg 0", []func([]byte){put32(OffMaxMsg, 0)}, "max message size 0 not"},
		{"maxMsg > MaxMsg", []func([]byte){put32(OffMaxMsg, MaxMsg+1)}, "max message size 1073741825 not"},
		{"maxMsg max", []func([]byte){put32(OffMaxMsg, ^uint32(0))}, "max message size"},
		{"SPSC producers 2", []func([]byte){spsc, put32(OffProducers, 2)}, "SPSC region with 2 sender entries"},
		{"SPSC producers 0", []func([]byte){spsc, put32(OffProducers, 0)}, "SPSC region with 0 sender entries"},
		{"MPSC producers 0", []func([]byte){put32(OffProducers, 0)}, "0 sender entries not in"},
		{"MPSC producers > max", []func([]byte){put32(OffProducers, MaxProducers+1)}, "4097 sender entries not in"},
		{"MPSC producers huge", []func([]byte){put32(OffProducers, ^uint32(0))}, "sender entries not in"},
		{"flags 4", []func([]byte){put32(OffFlags, 4)}, "unknown flags 0x4"},
		{"multi flag in MPSC", []func([]byte){put32(OffFlags, uint32(FlagMulti))}, "multi-producer flag in a mpsc region"},
		{"consumers in MPSC", []func([]byte){put32(OffConsumers, 1)}, "mpsc region with 1 consumer entries"},
		{"overflow in MPSC", []func([]byte){put32(OffOverflow, 1)}, "overflow policy 1 in a mpsc region"},
		{"work queue without consumers", []func([]byte){put32(OffMode, uint32(ModeWorkQueue))}, "0 consumer entries not in"},
		{"broadcast consumers > max", []func([]byte){put32(OffMode, uint32(ModeBroadcast)), put32(OffConsumers, MaxConsumers+1)}, "4097 consumer entries not in"},
		{"broadcast overflow 2", []func([]byte){put32(OffMode, uint32(ModeBroadcast)), put32(OffConsumers, 2), put32(OffOverflow, 2)}, "overflow policy 2"},
		{"flags high", []func([]byte){put32(OffFlags, uint32(FlagRaw)|1<<31)}, "unknown flags 0x80000001"},
		{"slot size +8", []func([]byte){put32(OffSlotSize, uint32(h0.SlotSize+8))}, "slot size"},
		{"slot size 0", []func([]byte){put32(OffSlotSize, 0)}, "slot size"},
		{"data offset +64", []func([]byte){put32(OffDataOffset, h0.DataOffset+64)}, "data offset"},
		{"data offset 0", []func([]byte){put32(OffDataOffset, 0)}, "data offset"},
		{"total size +1", []func([]byte){put64(OffTotalSize, h0.TotalSize+1)}, "total size"},
		{"total size -1", []func([]byte){put64(OffTotalSize, h0.TotalSize-1)}, "total size"},
		{"total size huge", []func([]byte){put64(OffTotalSize, ^uint64(0))}, "total size"},
		// A valid parameter whose derived sizes were not updated.
		{"capacity 16, total stale", []func([]byte){put64(OffCapacity, 16)}, "total size"},
		{"maxMsg 200, slot stale", []func([]byte){put32(OffMaxMsg, 200)}, "slot size"},
		{"producers 4, data offset stale", []func([]byte){put32(OffProducers, 4)}, "data offset"},
		// Sizes beyond the region limit.
		{"too large", []func([]byte){put64(OffCapacity, MaxCapacity), put32(OffMaxMsg, MaxMsg)}, "exceed the"},
	}
	for _, p := range params {
		t.Run(p.name, func(t *testing.T) {
			b := fresh()
			for _, e := range p.edit {
				e(b)
			}
			reseal(b)
			h, err := Validate(b, size)
			wantErr(t, err, ErrCorrupt, p.check)
			if h != (Header{}) {
				t.Errorf("Validate returned %+v with its error", h)
			}
			_, err = Peek(b[:HeaderSize])
			wantErr(t, err, ErrCorrupt, p.check)
		})
	}

	t.Run("file smaller than header claims", func(t *testing.T) {
		for _, fs := range []int64{0, HeaderSize, size - 1, -1, -size} {
			h, err := Validate(good, fs)
			wantErr(t, err, ErrCorrupt, "file is")
			if h != (Header{}) {
				t.Errorf("Validate returned %+v with its error", h)
			}
		}
		// Peek does not look at sizes.
		if _, err := Peek(good[:HeaderSize]); err != nil {
			t.Errorf("Peek: %v", err)
		}
	})
	t.Run("mapping smaller than header claims", func(t *testing.T) {
		for _, n := range []int64{HeaderSize, size - 1} {
			_, err := Validate(good[:n], size)
			wantErr(t, err, ErrCorrupt, "file is")
			_, err = Validate(good[:n], 1<<40)
			wantErr(t, err, ErrCorrupt, "file is")
		}
	})
	t.Run("exact sizes", func(t *testing.T) {
		if _, err := Validate(good, size); err != nil {
			t.Errorf("Validate(exact size): %v", err)
		}
	})
}

// TestByteFlips flips every bit pattern of interest in each header byte and
// checks that exactly the expected check rejects it.
func TestByteFlips(t *testing.T) {
	for _, src := range []Header{testHeader(), {Mode: ModeSPSC, Capacity: 1, MaxMsg: 1, Producers: 1}} {
		_, good := encode(t, src)
		for i := range HeaderSize {
			for _, x := range []byte{0xFF, 0x01, 0x80} {
				b := bytes.Clone(good)
				b[i] ^= x
				h, err := Validate(b, int64(len(b)))
				switch {
				case err == nil:
					t.Fatalf("byte %d ^ %#x accepted: %+v", i, x, h)
				case i < OffVersion:
					wantErr(t, err, ErrCorrupt, "bad magic")
				case i < OffVersion+4:
					wantErr(t, err, ErrIncompatible, "layout version")
				default:
					wantErr(t, err, ErrCorrupt, "header checksum")
				}
			}
		}
	}
}

func TestGarbage(t *testing.T) {
	for _, n := range []int{0, 1, HeaderSize - 1, HeaderSize, 4096, 1 << 16} {
		b := make([]byte, n)
		_, err := Validate(b, int64(n))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d zero bytes: %v, want ErrCorrupt", n, err)
		}
		_, err = Peek(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("Peek(%d zero bytes): %v, want ErrCorrupt", n, err)
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, rng.IntN(2048))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		fs := int64(len(b))
		if i%3 == 0 {
			fs = rng.Int64() - rng.Int64()
		}
		if _, err := Validate(b, fs); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("random bytes %d: %v, want ErrCorrupt", i, err)
		}
		if len(b) < HeaderSize {
			continue
		}
		// With the magic and version right, the checksum catches it.
		copy(b, Magic)
		binary.LittleEndian.PutUint32(b[OffVersion:], Version)
		if _, err := Validate(b, fs); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("random header %d with magic and version: %v, want a checksum ErrCorrupt", i, err)
		}
		// With a valid checksum too, the parameters do.
		reseal(b)
		if _, err := Validate(b, fs); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("random sealed header %d: %v, want ErrCorrupt", i, err)
		}
	}
}

func TestGeometryLimits(t *testing.T) {
	// The largest region the format allows: exactly MaxTotalSize bytes.
	// DataOffsetFor(118) = 8192 and 1024 slots of 2^30-8 bytes.
	h := Header{Mode: ModeMPSC, Capacity: 1024, MaxMsg: 1<<30 - 16, Producers: 118}
	if err := h.Geometry(); err != nil {
		t.Fatalf("Geometry at the limit: %v", err)
	}
	if h.TotalSize != MaxTotalSize {
		t.Fatalf("TotalSize = %d, want exactly %d", h.TotalSize, uint64(MaxTotalSize))
	}
	// One more byte of payload rounds the slot up by 8: over the limit.
	h.MaxMsg++
	wantErr(t, h.Geometry(), ErrCorrupt, "exceed the")

	for _, c := range []struct {
		capacity uint64
		maxMsg   uint32
	}{
		{MaxCapacity, MaxMsg},
		{1 << 20, 1 << 20},
		{1 << 30, 1 << 10},
		{1 << 10, 1 << 30},
	} {
		h := Header{Mode: ModeSPSC, Capacity: c.capacity, MaxMsg: c.maxMsg, Producers: 1}
		wantErr(t, h.Geometry(), ErrCorrupt, "exceed the")
		if h.TotalSize != 0 {
			t.Errorf("failed Geometry set TotalSize %d", h.TotalSize)
		}
	}
}

// TestGeometryProperty checks Geometry against an arbitrary-precision model
// of the rules over random parameters, many of them out of range.
func TestGeometryProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	u32 := func(limit uint32) uint32 {
		switch rng.IntN(4) {
		case 0:
			return rng.Uint32()
		case 1:
			return rng.Uint32N(4)
		default:
			return rng.Uint32N(limit + 2)
		}
	}
	u64 := func() uint64 {
		switch rng.IntN(5) {
		case 0:
			return rng.Uint64()
		case 1:
			return rng.Uint64N(5)
		case 2:
			return rng.Uint64N(MaxCapacity + 2)
		default:
			return 1 << rng.IntN(64)
		}
	}
	valid := 0
	for range 200000 {
		h := Header{
			Mode:      Mode(u32(2)),
			Wait:      Wait(u32(3)),
			Capacity:  u64(),
			MaxMsg:    u32(MaxMsg),
			Producers: u32(MaxProducers),
			Flags:     Flags(u32(2)),
		}
		if rng.IntN(3) == 0 {
			h.MaxMsg = rng.Uint32N(1 << 12)
		}
		in := h
		err := h.Geometry()

		ok := (h.Mode == ModeSPSC || h.Mode == ModeMPSC) &&
			h.Wait <= WaitSpin &&
			h.Capacity >= 1 && h.Capacity <= MaxCapacity && h.Capacity&(h.Capacity-1) == 0 &&
			h.MaxMsg >= 1 && h.MaxMsg <= MaxMsg &&
			h.Producers >= 1 && h.Producers <= MaxProducers &&
			(h.Mode != ModeSPSC || h.Producers == 1) &&
			h.Flags&^FlagRaw == 0
		var total *big.Int
		if ok {
			slot := (8 + uint64(h.MaxMsg) + 7) &^ 7
			data := uint64(576 + 64*(1+h.Producers))
			total = new(big.Int).Mul(new(big.Int).SetUint64(h.Capacity), new(big.Int).SetUint64(slot))
			total.Add(total, new(big.Int).SetUint64(data))
			ok = total.Cmp(big.NewInt(MaxTotalSize)) <= 0
		}
		if ok != (err == nil) {
			t.Fatalf("Geometry(%+v) = %v, model says valid=%v", in, err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Geometry(%+v) = %v, want ErrCorrupt", in, err)
			}
			continue
		}
		valid++
		if h.TotalSize > MaxTotalSize || !total.IsUint64() || total.Uint64() != h.TotalSize {
			t.Fatalf("Geometry(%+v): TotalSize %d, model %v", in, h.TotalSize, total)
		}
		if h.SlotSize%8 != 0 || h.DataOffset%LineSize != 0 || h.SlotSize < SlotHeaderSize+h.MaxMsg {
			t.Fatalf("Geometry(%+v): SlotSize %d, DataOffset %d", in, h.SlotSize, h.DataOffset)
		}
		// Every slot, and every slot's payload, lies inside the region.
		last := uint64(h.DataOffset) + (h.Capacity-1)*uint64(h.SlotSize)
		if last+SlotHeaderSize+uint64(h.MaxMsg) > h.TotalSize {
			t.Fatalf("Geometry(%+v): last slot's payload ends past %d", in, h.TotalSize)
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d valid parameter sets drawn; the generator is too harsh", valid)
	}
}

// TestFormatDoc checks every offset table in FORMAT.md against the
// constants, so the document cannot drift from the code.
func TestFormatDoc(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	// | offset | size | type | `Name` | ...   (offset may be written +N)
	row := regexp.MustCompile("^\\|\\s*\\+?(\\d+)\\s*\\|\\s*(\\d+)\\s*\\|[^|]*\\|\\s*`(\\w+)`\\s*\\|")
	known := map[string]field{}
	for _, fs := range append([][]field{headerFields, roleFields, slotFields}, mutableLines...) {
		for _, f := range fs {
			known[f.name] = f
		}
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(doc), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		off, _ := strconv.Atoi(m[1])
		size, _ := strconv.Atoi(m[2])
		f, ok := known[m[3]]
		if !ok {
			t.Errorf("FORMAT.md:%d documents unknown field %s", i+1, m[3])
			continue
		}
		if seen[f.name] {
			t.Errorf("FORMAT.md:%d documents %s twice", i+1, f.name)
		}
		seen[f.name] = true
		if off != f.got || size != f.size {
			t.Errorf("FORMAT.md:%d puts %s at %d (%d bytes), the code at %d (%d bytes)", i+1, f.name, off, size, f.got, f.size)
		}
	}
	for name := range known {
		if !seen[name] {
			t.Errorf("FORMAT.md does not document %s", name)
		}
	}
}

// TestFormatC compiles the C sketch in FORMAT.md with static assertions that
// its offsets equal the Go constants. It is skipped without a C compiler.
func TestFormatC(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```c\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("FORMAT.md has no ```c block")
	}
	var src strings.Builder
	src.WriteString("#include <stddef.h>\n#include <stdint.h>\n")
	src.Write(m[1])
	check := func(expr string, v int) {
		fmt.Fprintf(&src, "_Static_assert(%s == %d, \"%s\");\n", expr, v, strings.ReplaceAll(expr, "\"", ""))
	}
	hdr := map[string]string{
		"OffMagic": "magic", "OffVersion": "version", "OffDataOffset": "data_offset",
		"OffMode": "mode", "OffWait": "wait", "OffCapacity": "capacity", "OffSlotSize": "slot_size",
		"OffMaxMsg": "max_msg", "OffProducers": "producers", "OffFlags": "flags",
		"OffFingerprint": "fingerprint", "OffTotalSize": "total_size", "OffCreatorPID": "creator_pid",
		"OffCreatorUID": "creator_uid", "OffCreated": "created_ns", "OffCodecName": "codec_name",
		"OffConsumers": "consumers", "OffOverflow": "overflow", "OffTypeName": "type_name", "OffChecksum": "checksum",
	}
	for _, f := range headerFields {
		check(fmt.Sprintf("offsetof(struct shmchan_header, %s)", hdr[f.name]), f.got)
		check(fmt.Sprintf("sizeof(((struct shmchan_header *)0)->%s)", hdr[f.name]), f.size)
	}
	check("sizeof(struct shmchan_header)", HeaderSize)
	mut := map[string]string{
		"OffReady": "ready", "OffTail": "tail", "OffSenderWakes": "sender_wakes",
		"OffHead": "head", "OffAbandoned": "abandoned", "OffReceiverWakes": "receiver_wakes", "OffClaimHead": "claim_head", "OffLagged": "lagged",
		"OffRecvSeq": "recv_seq", "OffRecvWaiting": "recv_waiting", "OffRecvSleeps": "recv_sleeps",
		"OffSendSeq": "send_seq", "OffSendWaiters": "send_waiters", "OffSendSleeps": "send_sleeps",
	}
	for _, line := range mutableLines {
		for _, f := range line {
			check(fmt.Sprintf("offsetof(struct shmchan_region, %s)", mut[f.name]), f.got)
			check(fmt.Sprintf("sizeof(((struct shmchan_region *)0)->%s)", mut[f.name]), f.size)
		}
	}
	check("offsetof(struct shmchan_region, roles)", OffRoles)
	check("sizeof(struct shmchan_region)", OffRoles)
	role := map[string]string{
		"RolePID": "pid", "RoleFlags": "flags", "RoleStart": "start_ticks", "RoleSince": "since_ns",
		"RoleClaimLo": "claim_lo", "RoleClaimHi": "claim_hi", "RoleSent": "sent", "RoleTakeovers": "takeovers",
	}
	for _, f := range roleFields {
		check(fmt.Sprintf("offsetof(struct shmchan_role, %s)", role[f.name]), f.got)
		check(fmt.Sprintf("sizeof(((struct shmchan_role *)0)->%s)", role[f.name]), f.size)
	}
	check("sizeof(struct shmchan_role)", LineSize)
	check("offsetof(struct shmchan_slot, seq)", SlotSeq)
	check("offsetof(struct shmchan_slot, len)", SlotLen)
	check("offsetof(struct shmchan_slot, payload)", SlotHeaderSize)
	check("SHMCHAN_VERSION", Version)
	check("SHMCHAN_READY", ReadyValue)
	check("SHMCHAN_MODE_MPSC", int(ModeMPSC))
	check("SHMCHAN_WAIT_SPIN", int(WaitSpin))
	check("SHMCHAN_FLAG_RAW", int(FlagRaw))
	check("SHMCHAN_MAX_PRODUCERS", MaxProducers)
	fmt.Fprintf(&src, "_Static_assert(SHMCHAN_CLOSED == %#xull, \"closed\");\n", ClosedBit)
	fmt.Fprintf(&src, "_Static_assert(SHMCHAN_SLOT_SKIP == %#xu, \"skip\");\n", SlotSkip)
	fmt.Fprintf(&src, "_Static_assert(SHMCHAN_MAX_MSG == %#xu, \"maxmsg\");\n", uint32(MaxMsg))
	fmt.Fprintf(&src, "_Static_assert(SHMCHAN_MAX_CAPACITY == %#xull, \"maxcap\");\n", uint64(MaxCapacity))
	fmt.Fprintf(&src, "_Static_assert(SHMCHAN_MAX_TOTAL == %#xull, \"maxtotal\");\n", uint64(MaxTotalSize))
	fmt.Fprintf(&src, "_Static_assert(sizeof SHMCHAN_MAGIC - 1 == 8, \"magic\");\n")

	dir := t.TempDir()
	file := filepath.Join(dir, "format.c")
	if err := os.WriteFile(file, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cc, "-std=c11", "-Wall", "-Werror", "-fsyntax-only", file).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s\n--- source ---\n%s", cc, err, out, src.String())
	}
}
