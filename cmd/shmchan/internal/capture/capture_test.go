package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func testHeader(raw bool) Header {
	h := Header{Codec: "json", Type: "main.Order", Channel: "orders", Fingerprint: 0x1122334455667788, MaxMsg: 64, Capacity: 1024, Started: 1_700_000_000_000_000_000}
	if raw {
		h.Codec, h.Raw, h.ValueSize, h.MaxMsg = "raw", true, 16, 16
	}
	return h
}

// build writes a recording of n values (value i is 16 bytes, or i%20 bytes
// for a recording that is not raw) and returns its bytes and the offset of
// each record.
func build(t testing.TB, raw bool, n int) ([]byte, []int64) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testHeader(raw))
	if err != nil {
		t.Fatal(err)
	}
	offs := []int64{w.Size()}
	for i := range n {
		v := value(raw, i)
		if err := w.Write(int64(1_700_000_000_000_000_000+i*1000), v); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, w.Size())
	}
	if err := w.Close(1_700_000_001_000_000_000); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != w.Size() {
		t.Fatalf("Size %d, wrote %d", w.Size(), buf.Len())
	}
	return buf.Bytes(), offs // offs[n] is the end record's offset
}

func value(raw bool, i int) []byte {
	n := 16
	if !raw {
		n = i % 20
	}
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(i*7 + j)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(fmt.Sprint("raw=", raw), func(t *testing.T) {
			const n = 1000
			b, offs := build(t, raw, n)
			r, err := NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.Header(), testHeader(raw); got != want {
				t.Errorf("header %+v, want %+v", got, want)
			}
			for i := range n {
				rec, err := r.Next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if rec.Index != int64(i) || rec.Offset != offs[i] || rec.Time != int64(1_700_000_000_000_000_000+i*1000) || !bytes.Equal(rec.Data, value(raw, i)) {
					t.Fatalf("record %d: %+v", i, rec)
				}
			}
			for range 2 {
				if _, err := r.Next(); err != io.EOF {
					t.Fatalf("after the last record: %v, want io.EOF", err)
				}
			}
			if r.Ended != 1_700_000_001_000_000_000 {
				t.Errorf("end time %d", r.Ended)
			}
			s, err := Scan(bytes.NewReader(b))
			if err != nil || s.Count != n || s.Bytes != int64(len(b)) || s.First != 1_700_000_000_000_000_000 || s.Last != 1_700_000_000_000_000_000+(n-1)*1000 {
				t.Errorf("Scan: %+v, %v", s, err)
			}
		})
	}
}

// recordAt returns the index of the record holding byte off (-1: the
// header; n: the end record).
func recordAt(offs []int64, off int64) int64 {
	if off < offs[0] {
		return -1
	}
	for i := len(offs) - 1; i >= 0; i-- {
		if off >= offs[i] {
			return int64(i)
		}
	}
	return -1
}

// Every cut of a small file is ErrTruncated at the record it cuts.
func TestTruncatedEverywhere(t *testing.T) {
	for _, raw := range []bool{true, false} {
		b, offs := build(t, raw, 5)
		for cut := 1; cut < len(b); cut++ {
			s, err := Scan(bytes.NewReader(b[:cut]))
			var de *DamageError
			if !errors.As(err, &de) || !errors.Is(err, ErrTruncated) {
				t.Fatalf("raw %v, cut at %d of %d: %v, want a truncation", raw, cut, len(b), err)
			}
			want := recordAt(offs, int64(cut))
			if want >= 0 && int64(cut) == offs[want] {
				// A cut on a boundary: the missing record is named, and
				// everything before it is intact.
				if de.Record != want || s.Count != min(want, 5) {
					t.Fatalf("cut at the boundary %d: record %d, %d intact, want %d: %v", cut, de.Record, s.Count, want, err)
				}
				continue
			}
			if de.Record != want || de.At != int64(cut) {
				t.Fatalf("cut at %d: record %d at %d, want record %d at %d: %v", cut, de.Record, de.At, want, cut, err)
			}
		}
	}
}

// Every flipped byte of a small file is an error at the record holding it.
func TestFlippedEverywhere(t *testing.T) {
	for _, raw := range []bool{true, false} {
		b, offs := build(t, raw, 5)
		for off := range b {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				d := bytes.Clone(b)
				d[off] ^= mask
				_, err := Scan(bytes.NewReader(d))
				var de *DamageError
				if !errors.As(err, &de) {
					t.Fatalf("raw %v, byte %d ^ %#x: %v, want a DamageError", raw, off, mask, err)
				}
				if want := recordAt(offs, int64(off)); de.Record != want {
					t.Fatalf("byte %d ^ %#x: record %d, want %d: %v", off, mask, de.Record, want, err)
				}
				if !strings.Contains(err.Error(), "byte offset") {
					t.Fatalf("error without an offset: %v", err)
				}
			}
		}
	}
}

func TestDamageMessages(t *testing.T) {
	b, offs := build(t, true, 10)
	d := bytes.Clone(b)
	d[offs[7]+30] ^= 4 // a data byte of record 7
	_, err := Scan(bytes.NewReader(d))
	want := fmt.Sprintf("recording damaged: record 7 (starting at byte offset %d): checksum", offs[7])
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrDamaged) {
		t.Errorf("flipped data byte: %v, want prefix %q", err, want)
	}
	_, err = Scan(bytes.NewReader(b[:offs[4]+10]))
	want = fmt.Sprintf("recording truncated: record 4 (starting at byte offset %d): the file ends 10 bytes into the record's 24-byte head (at byte offset %d)", offs[4], offs[4]+10)
	if err == nil || err.Error() != want {
		t.Errorf("cut record:\n got %v\nwant %s", err, want)
	}
	// Two records swapped: both intact, but in the wrong place.
	d = append(bytes.Clone(b[:offs[2]]), b[offs[3]:offs[4]]...)
	d = append(d, b[offs[2]:offs[3]]...)
	d = append(d, b[offs[4]:]...)
	if _, err := Scan(bytes.NewReader(d)); err == nil || !strings.Contains(err.Error(), "record 2 ") {
		t.Errorf("swapped records: %v", err)
	}
	// A doubled record.
	d = append(bytes.Clone(b[:offs[3]]), b[offs[2]:]...)
	if _, err := Scan(bytes.NewReader(d)); err == nil || !strings.Contains(err.Error(), "record 3 ") {
		t.Errorf("doubled record: %v", err)
	}
	if _, err := Scan(bytes.NewReader(append(bytes.Clone(b), 0))); err == nil || !strings.Contains(err.Error(), "bytes after the end record") {
		t.Errorf("trailing byte: %v", err)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{{"", ErrNotRecording}, {"hello, world, this is not it", ErrNotRecording}, {"SHMC", ErrTruncated}} {
		if _, err := NewReader(strings.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("NewReader(%q): %v, want %v", tc.in, err, tc.want)
		}
	}
	v2 := bytes.Clone(b)
	v2[8] = 2
	if _, err := NewReader(bytes.NewReader(v2)); !errors.Is(err, ErrNotRecording) || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
}

// A damaged length must not make the reader allocate what it claims.
func TestHugeLengthBounded(t *testing.T) {
	h := testHeader(false)
	h.MaxMsg = MaxMsg
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	b := buf.Bytes()
	le.PutUint32(b[len(b)-25:], MaxMsg) // the record's length field
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	if !errors.Is(err, ErrTruncated) || cap(r.buf) > 2*chunk {
		t.Errorf("huge length: %v, buffer of %d bytes", err, cap(r.buf))
	}
}

func TestWriterRefuses(t *testing.T) {
	for _, h := range []Header{
		{Codec: "", MaxMsg: 1},
		{Codec: strings.Repeat("c", 17), MaxMsg: 1},
		{Codec: "raw", MaxMsg: 0},
		{Codec: "raw", Raw: true, ValueSize: 9, MaxMsg: 8},
		{Codec: "json", ValueSize: 4, MaxMsg: 8},
		{Codec: "json", MaxMsg: 8, Channel: strings.Repeat("n", 256)},
	} {
		if _, err := NewWriter(io.Discard, h); err == nil {
			t.Errorf("NewWriter(%+v) accepted", h)
		}
	}
	w, err := NewWriter(io.Discard, testHeader(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(0, make([]byte, 15)); err == nil {
		t.Error("a 15-byte value in a 16-byte raw recording was accepted")
	}
	if err := w.Close(0); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(0, make([]byte, 16)); err == nil {
		t.Error("Write after Close was accepted")
	}
}
