package layout

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkResult is what every fuzz target demands of Validate and Peek: an
// error that is ErrCorrupt or ErrIncompatible (not both) with a zero Header,
// or a Header whose geometry is self-consistent and that encodes back to a
// header that validates to the same value.
func checkResult(t *testing.T, h Header, err error) {
	t.Helper()
	if err != nil {
		c, i := errors.Is(err, ErrCorrupt), errors.Is(err, ErrIncompatible)
		if c == i {
			t.Fatalf("error %q: ErrCorrupt %v, ErrIncompatible %v; want exactly one", err, c, i)
		}
		if h != (Header{}) {
			t.Fatalf("error %q came with a non-zero Header %+v", err, h)
		}
		return
	}
	g := h
	if gerr := g.Geometry(); gerr != nil || g != h {
		t.Fatalf("accepted Header %+v fails its own Geometry: %+v, %v", h, g, gerr)
	}
	if h.TotalSize > MaxTotalSize || h.TotalSize != uint64(h.DataOffset)+h.Capacity*uint64(h.SlotSize) {
		t.Fatalf("accepted Header %+v has inconsistent sizes", h)
	}
	if int(h.DataOffset) < RoleOffset(int(h.Producers)+1) || h.SlotSize < SlotHeaderSize+h.MaxMsg {
		t.Fatalf("accepted Header %+v: roles or payload do not fit", h)
	}
	if len(h.CodecName) > CodecNameLen || len(h.TypeName) > TypeNameLen ||
		strings.IndexByte(h.CodecName, 0) >= 0 || strings.IndexByte(h.TypeName, 0) >= 0 {
		t.Fatalf("accepted Header %+v: bad names", h)
	}
	b := make([]byte, HeaderSize)
	h.Encode(b)
	if h2, err := Peek(b); err != nil || h2 != h {
		t.Fatalf("re-encoded %+v peeks as %+v, %v", h, h2, err)
	}
}

// seedRegion is a small valid region, for the seed corpora.
func seedRegion() []byte {
	h := Header{Mode: ModeSPSC, Wait: WaitFutex, Capacity: 2, MaxMsg: 8, Producers: 1, Flags: FlagRaw, CodecName: "raw", TypeName: "int64"}
	if err := h.Geometry(); err != nil {
		panic(err)
	}
	b := make([]byte, h.TotalSize)
	h.Encode(b)
	return b
}

func FuzzValidate(f *testing.F) {
	good := seedRegion()
	f.Add(good, int64(len(good)))
	f.Add(good, int64(len(good)-1))
	f.Add(good[:HeaderSize], int64(len(good)))
	f.Add(good[:100], int64(len(good)))
	f.Add([]byte{}, int64(0))
	bad := bytes.Clone(good)
	bad[OffVersion] = 2
	f.Add(bad, int64(len(bad)))
	f.Fuzz(func(t *testing.T, data []byte, fileSize int64) {
		h, err := Validate(data, fileSize)
		checkResult(t, h, err)
		if err != nil {
			return
		}
		if fileSize < 0 || h.TotalSize > uint64(fileSize) || h.TotalSize > uint64(len(data)) {
			t.Fatalf("accepted %d-byte region of a %d-byte file, %d mapped", h.TotalSize, fileSize, len(data))
		}
		if p, err := Peek(data); err != nil || p != h {
			t.Fatalf("Validate accepted %+v, Peek says %+v, %v", h, p, err)
		}
	})
}

func FuzzPeek(f *testing.F) {
	good := seedRegion()
	f.Add(good[:HeaderSize])
	f.Add(good[:HeaderSize-1])
	f.Add(make([]byte, HeaderSize))
	bad := bytes.Clone(good[:HeaderSize])
	bad[OffVersion] ^= 0xFF
	f.Add(bad)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Peek(data)
		checkResult(t, h, err)
		if err != nil {
			return
		}
		if len(data) < HeaderSize {
			t.Fatalf("Peek accepted %d bytes", len(data))
		}
		// Validate agrees once the whole region is there.
		full := data // too big to materialise: Validate must refuse the short mapping
		if h.TotalSize <= 1<<24 {
			full = make([]byte, max(h.TotalSize, uint64(len(data))))
			copy(full, data)
		}
		v, err := Validate(full, int64(h.TotalSize))
		if uint64(len(full)) >= h.TotalSize {
			if err != nil || v != h {
				t.Fatalf("Peek accepted %+v, Validate says %+v, %v", h, v, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Validate of a %d-byte mapping of a %d-byte region: %v", len(full), h.TotalSize, err)
		}
	})
}

// FuzzValidateSealed fixes the magic and version and recomputes the checksum
// of whatever the fuzzer wrote, so it explores the parameter and size checks
// that a plain FuzzValidate input almost never reaches past the checksum.
func FuzzValidateSealed(f *testing.F) {
	good := seedRegion()
	f.Add(good, int64(len(good)))
	f.Add(good[:HeaderSize], int64(len(good)))
	mpsc := bytes.Clone(good)
	binary.LittleEndian.PutUint32(mpsc[OffMode:], uint32(ModeMPSC))
	f.Add(mpsc, int64(len(mpsc)))
	f.Fuzz(func(t *testing.T, data []byte, fileSize int64) {
		if len(data) < HeaderSize {
			return
		}
		b := bytes.Clone(data)
		copy(b, Magic)
		binary.LittleEndian.PutUint32(b[OffVersion:], Version)
		reseal(b)
		h, err := Validate(b, fileSize)
		checkResult(t, h, err)
		if errors.Is(err, ErrIncompatible) {
			t.Fatalf("sealed header with the right version: %v", err)
		}
		if err == nil && (h.TotalSize > uint64(fileSize) || h.TotalSize > uint64(len(b))) {
			t.Fatalf("accepted %d-byte region of a %d-byte file, %d mapped", h.TotalSize, fileSize, len(b))
		}
	})
}

// wantStored is what a name field holds after Encode: cut to n bytes before a
// rune start (or the end), then up to the first NUL.
func wantStored(s string, n int) string {
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

func FuzzEncodeValidate(f *testing.F) {
	f.Add(uint32(ModeSPSC), uint32(WaitFutex), uint64(1), uint32(1), uint32(1), uint32(0), uint64(0), uint32(1), uint32(0), int64(0), "", "")
	f.Add(uint32(ModeMPSC), uint32(WaitMQ), uint64(1024), uint32(4096), uint32(8), uint32(FlagRaw), uint64(0xfeedface), uint32(77), uint32(1000), int64(-5), "json", "map[string]日本語")
	f.Add(uint32(ModeMPSC), uint32(WaitSpin), uint64(1024), uint32(1<<30-16), uint32(118), uint32(0), uint64(1), uint32(1), uint32(1), int64(1), strings.Repeat("é", 40), strings.Repeat("🚀", 40))
	f.Add(uint32(ModeSPSC), uint32(WaitFutex), uint64(MaxCapacity), uint32(MaxMsg), uint32(1), uint32(0), uint64(0), uint32(0), uint32(0), int64(0), "a\x00b", "\xff\xfe")
	f.Fuzz(func(t *testing.T, mode, wait uint32, capacity uint64, maxMsg, producers, flags uint32,
		fingerprint uint64, pid, uid uint32, created int64, codecName, typeName string) {
		h := Header{
			Mode: Mode(mode), Wait: Wait(wait), Capacity: capacity, MaxMsg: maxMsg, Producers: producers, Flags: Flags(flags),
			Fingerprint: fingerprint, CreatorPID: pid, CreatorUID: uid, Created: created,
			CodecName: codecName, TypeName: typeName,
		}
		if err := h.Geometry(); err != nil {
			if !errors.Is(err, ErrCorrupt) || h.TotalSize != 0 {
				t.Fatalf("Geometry: %v (TotalSize %d)", err, h.TotalSize)
			}
			return
		}
		if h.TotalSize > MaxTotalSize {
			t.Fatalf("TotalSize %d over the limit", h.TotalSize)
		}
		want := h
		want.CodecName = wantStored(codecName, CodecNameLen)
		want.TypeName = wantStored(typeName, TypeNameLen)
		if utf8.ValidString(codecName) && !utf8.ValidString(want.CodecName) ||
			utf8.ValidString(typeName) && !utf8.ValidString(want.TypeName) {
			t.Fatalf("truncation split a rune: %q, %q", want.CodecName, want.TypeName)
		}

		if h.TotalSize > 1<<24 {
			// Too big to materialise: check the header alone, and that a
			// short mapping is refused.
			b := make([]byte, HeaderSize)
			h.Encode(b)
			want.Checksum = Checksum(b)
			got, err := Peek(b)
			if err != nil || got != want {
				t.Fatalf("Peek = %+v, %v; want %+v", got, err, want)
			}
			if _, err := Validate(b, int64(h.TotalSize)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Validate of a header-only mapping: %v", err)
			}
			return
		}
		b := make([]byte, h.TotalSize)
		h.Encode(b)
		want.Checksum = Checksum(b)
		got, err := Validate(b, int64(len(b)))
		if err != nil || got != want {
			t.Fatalf("Validate = %+v, %v; want %+v", got, err, want)
		}
		if _, err := Validate(b[:len(b)-1], int64(len(b))); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Validate one byte short: %v", err)
		}
		if _, err := Validate(b, int64(len(b))-1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Validate of a file one byte short: %v", err)
		}
	})
}
